//! Bearer tokens: stored as SHA-256 hashes with scopes, checked in constant
//! time. Off only when the API is bound to loopback and no token is
//! configured ([`crate::config::Settings::resolve`] refuses any other bind
//! without tokens).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do: `read` (GET), `write` (changes), `admin`
/// (everything, including what later endpoints reserve for operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn from_name(s: &str) -> Option<Scope> {
        [Scope::Read, Scope::Write, Scope::Admin]
            .into_iter()
            .find(|x| x.name() == s)
    }
}

/// A configured token: its name (for logs), hash and scopes.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    pub hash: [u8; 32],
    pub scopes: Vec<Scope>,
}

impl Token {
    fn allows(&self, need: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&need)
    }
}

/// The SHA-256 of a token, as the config stores it (hex).
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a request was not let through.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No token, or one that matches none: 401.
    Unauthenticated,
    /// A known token without the scope: 403.
    Forbidden,
}

/// The tokens a service checks.
#[derive(Clone)]
pub struct Auth {
    tokens: Vec<Token>,
}

impl Auth {
    pub fn new(tokens: Vec<Token>) -> Auth {
        Auth { tokens }
    }

    /// Checks an `Authorization` header value for `need`. With no tokens
    /// configured (a loopback bind), everything is allowed.
    pub fn check(&self, header: Option<&str>, need: Scope) -> Result<(), Denied> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        let presented = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(Denied::Unauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        // Every token is compared (no early exit), each in constant time.
        let mut found: Option<&Token> = None;
        for t in &self.tokens {
            if bool::from(t.hash.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        match found {
            None => Err(Denied::Unauthenticated),
            Some(t) if t.allows(need) => {
                tracing::debug!(token = %t.name, scope = need.name(), "request allowed");
                Ok(())
            }
            Some(_) => Err(Denied::Forbidden),
        }
    }
}
