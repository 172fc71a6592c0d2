//! The status page at `/`: one self-contained file (`status.html`: no build
//! step, nothing fetched from elsewhere) that reads the API and follows the
//! WebSocket. Its Content-Security-Policy allows its one inline script and
//! one style block by their SHA-256 and nothing else inline, and lets it
//! talk only to its own origin.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

const PAGE: &str = include_str!("status.html");

/// `'sha256-…'` of the text between `open` and `close` in the page.
fn inline_hash(open: &str, close: &str) -> Option<String> {
    let start = PAGE.find(open)? + open.len();
    let len = PAGE[start..].find(close)?;
    let digest = Sha256::digest(&PAGE.as_bytes()[start..start + len]);
    Some(format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

/// The page's policy (computed once).
pub(crate) fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        // Without its hash, the block stays blocked: the page shows nothing
        // live rather than running unchecked code.
        let none = || "'none'".to_string();
        let script = inline_hash("<script>", "</script>").unwrap_or_else(none);
        let style = inline_hash("<style>", "</style>").unwrap_or_else(none);
        format!(
            "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    })
}

pub(crate) async fn serve() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, csp()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_names_the_inline_blocks_by_hash() {
        let csp = super::csp();
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
    }
}
