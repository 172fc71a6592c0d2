//! The service's configuration: a TOML file, `PEAT_…` environment variables
//! and command-line flags, in that order of precedence (a later source wins
//! field by field), resolved into one checked [`Settings`].
//!
//! ```toml
//! data_dir = "/var/lib/peat"
//! formation = "alpha"
//! secret_file = "/run/secrets/formation"   # 64 hex digits or 32 raw bytes
//! listen = "0.0.0.0:4433"
//! peers = ["NODEID@10.0.0.2:4433"]
//! mdns = false
//! log_level = "info"
//!
//! [policies.default]                      # collection policies (see peat_mesh::policy)
//! priority = "normal"
//! [policies.collections.orders]
//! signatures = "reject"
//!
//! [http]
//! bind = "0.0.0.0:8080"
//! ready_needs_peer = true
//! tls_cert_file = "/etc/peat/tls.crt"   # HTTPS (optional): PEM chain and key
//! tls_key_file = "/etc/peat/tls.key"
//! cors_origins = ["https://console.example"]   # CORS (optional; off by default)
//! [[http.tokens]]
//! name = "ops"
//! sha256 = "…64 hex digits…"     # peat-mesh-node hash-token < token-file
//! scopes = ["read", "write"]
//!
//! [kubernetes]                   # discovery in a cluster (see kube_settings)
//! enabled = true
//! ```
//!
//! The formation secret never sits in the file: it comes from `secret_file`
//! (a Kubernetes Secret mounted as a file, say) or from `PEAT_SECRET`. Bearer
//! tokens are stored as SHA-256 hashes. [`Settings::redacted`] prints the
//! effective settings with the secret replaced.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::{Scope, Token};

/// A configuration value that cannot be used: one line saying which and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// One source of settings (file, environment or flags): every field optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub data_dir: Option<PathBuf>,
    pub formation: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub peers: Option<Vec<String>>,
    pub mdns: Option<bool>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    #[serde(default)]
    pub http: HttpLayer,
    #[serde(default)]
    pub kubernetes: crate::kube_settings::KubernetesLayer,
    /// Collection policies, in the form of [`peat_mesh::Policies::from_json`].
    pub policies: Option<toml::Table>,
    /// Only from `PEAT_SECRET` (never from a file or flag).
    #[serde(skip)]
    pub secret_hex: Option<Zeroizing<String>>,
}

/// The `[http]` table of a [`Layer`].
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpLayer {
    pub bind: Option<String>,
    pub ready_needs_peer: Option<bool>,
    pub tokens: Option<Vec<TokenLayer>>,
    /// HTTPS: a PEM certificate chain (leaf first) and its PEM key.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Origins a browser page may call the API from (CORS); none by default.
    pub cors_origins: Option<Vec<String>>,
}

/// A bearer token as configured: its SHA-256 (hex) and scopes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenLayer {
    pub name: String,
    pub sha256: String,
    pub scopes: Vec<String>,
}

impl Layer {
    /// Reads a TOML file's text. Unknown keys are an error.
    /// Errors name the line, never quote it (it may hold a secret).
    pub fn from_toml(text: &str) -> Result<Layer, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map(|l| format!(" line {l}:")).unwrap_or_default();
            bad(format!("config file:{at} {}", one_line(e.message())))
        })
    }

    /// Reads the `PEAT_…` variables of `vars` (name, value).
    pub fn from_env<I: IntoIterator<Item = (String, String)>>(
        vars: I,
    ) -> Result<Layer, ConfigError> {
        let mut l = Layer::default();
        for (k, v) in vars {
            let list = |v: &str| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            };
            match k.as_str() {
                "PEAT_DATA_DIR" => l.data_dir = Some(v.into()),
                "PEAT_FORMATION" => l.formation = Some(v),
                "PEAT_SECRET_FILE" => l.secret_file = Some(v.into()),
                "PEAT_SECRET" => l.secret_hex = Some(Zeroizing::new(v)),
                "PEAT_LISTEN" => l.listen = Some(v),
                "PEAT_PEERS" => l.peers = Some(list(&v)),
                "PEAT_MDNS" => l.mdns = Some(parse_bool(&k, &v)?),
                "PEAT_LOG_LEVEL" => l.log_level = Some(v),
                "PEAT_LOG_FORMAT" => l.log_format = Some(v),
                "PEAT_HTTP_BIND" => l.http.bind = Some(v),
                "PEAT_HTTP_READY_NEEDS_PEER" => l.http.ready_needs_peer = Some(parse_bool(&k, &v)?),
                "PEAT_HTTP_TLS_CERT_FILE" => l.http.tls_cert_file = Some(v.into()),
                "PEAT_HTTP_TLS_KEY_FILE" => l.http.tls_key_file = Some(v.into()),
                "PEAT_HTTP_CORS_ORIGINS" => l.http.cors_origins = Some(list(&v)),
                _ => {
                    l.kubernetes.set_env(&k, v)?;
                }
            }
        }
        Ok(l)
    }

    /// `over`'s set fields replace this layer's.
    pub fn merge(mut self, over: Layer) -> Layer {
        macro_rules! take {
            ($($f:ident).+) => {
                if over.$($f).+.is_some() {
                    self.$($f).+ = over.$($f).+;
                }
            };
        }
        take!(data_dir);
        take!(formation);
        take!(secret_file);
        take!(secret_hex);
        take!(listen);
        take!(peers);
        take!(mdns);
        take!(log_level);
        take!(log_format);
        take!(policies);
        take!(http.bind);
        take!(http.ready_needs_peer);
        take!(http.tokens);
        take!(http.tls_cert_file);
        take!(http.tls_key_file);
        take!(http.cors_origins);
        self.kubernetes = self.kubernetes.merge(over.kubernetes);
        self
    }
}

pub(crate) fn parse_bool(what: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(format!(
            "{what}: {v:?} is not a boolean (true or false)"
        ))),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The checked settings the service runs with.
pub struct Settings {
    pub data_dir: PathBuf,
    pub formation: String,
    pub secret: Zeroizing<[u8; 32]>,
    /// Where the secret came from, for the printed settings.
    pub secret_source: String,
    pub listen: SocketAddr,
    pub peers: Vec<peat_mesh::PeerAddr>,
    pub mdns: bool,
    pub log_level: String,
    pub log_format: LogFormat,
    pub http_bind: SocketAddr,
    pub ready_needs_peer: bool,
    pub tokens: Vec<Token>,
    pub policies: peat_mesh::Policies,
    /// HTTPS, when configured (the files checked and loaded).
    pub tls: Option<Tls>,
    /// Origins allowed by CORS (none: CORS off).
    pub cors_origins: Vec<String>,
    /// Kubernetes discovery, when enabled.
    pub kubernetes: Option<peat_mesh_k8s::KubernetesConfig>,
}

/// HTTPS settings: the files and the server configuration made from them.
#[derive(Clone)]
pub struct Tls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub config: std::sync::Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

impl Settings {
    /// Checks a merged layer: every value parsed, the secret read.
    pub fn resolve(l: Layer) -> Result<Settings, ConfigError> {
        let data_dir = l
            .data_dir
            .ok_or_else(|| bad("data_dir is required (PEAT_DATA_DIR, --data-dir)"))?;
        let formation = l
            .formation
            .ok_or_else(|| bad("formation is required (PEAT_FORMATION, --formation)"))?;
        if formation.is_empty() || formation.len() > 64 || !formation.is_ascii() {
            return Err(bad(format!(
                "formation {formation:?}: 1 to 64 ASCII characters"
            )));
        }
        let (secret, secret_source) = match (&l.secret_file, &l.secret_hex) {
            (Some(path), _) => (read_secret_file(path)?, format!("file {}", path.display())),
            (None, Some(hex)) => (parse_hex_secret(hex, "PEAT_SECRET")?, "PEAT_SECRET".to_string()),
            (None, None) => return Err(bad("the formation secret is required: secret_file (PEAT_SECRET_FILE, --secret-file) or PEAT_SECRET")),
        };
        let addr =
            |what: &str, v: Option<String>, default: &str| -> Result<SocketAddr, ConfigError> {
                let v = v.unwrap_or_else(|| default.to_string());
                v.parse()
                    .map_err(|_| bad(format!("{what} {v:?} is not an address like 0.0.0.0:4433")))
            };
        let listen = addr("listen", l.listen, "0.0.0.0:0")?;
        let http_bind = addr("http.bind", l.http.bind, "127.0.0.1:8080")?;
        let peers = l
            .peers
            .unwrap_or_default()
            .iter()
            .map(|p| p.parse().map_err(|e| bad(format!("peer {p:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let log_level = l.log_level.unwrap_or_else(|| "info".into());
        if !LOG_LEVELS.contains(&log_level.as_str()) {
            return Err(bad(format!(
                "log_level {log_level:?}: one of error, warn, info, debug, trace"
            )));
        }
        let log_format = match l.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            f => return Err(bad(format!("log_format {f:?}: text or json"))),
        };
        let tokens = l
            .http
            .tokens
            .unwrap_or_default()
            .into_iter()
            .map(token)
            .collect::<Result<Vec<_>, _>>()?;
        let policies = match l.policies {
            None => peat_mesh::Policies::default(),
            Some(t) => {
                let json = serde_json::to_string(&t).map_err(|e| bad(format!("policies: {e}")))?;
                peat_mesh::Policies::from_json(&json).map_err(|e| bad(e.to_string()))?
            }
        };
        let tls = match (l.http.tls_cert_file, l.http.tls_key_file) {
            (None, None) => None,
            (Some(cert_file), Some(key_file)) => Some(Tls {
                config: crate::tls::server_config(&cert_file, &key_file)?,
                cert_file,
                key_file,
            }),
            _ => {
                return Err(bad(
                    "http.tls_cert_file and http.tls_key_file go together: set both or neither",
                ))
            }
        };
        let kubernetes = l.kubernetes.resolve()?;
        let cors_origins = l.http.cors_origins.unwrap_or_default();
        for o in &cors_origins {
            check_origin(o)?;
        }
        if !http_bind.ip().is_loopback() && tokens.is_empty() {
            return Err(bad(format!(
                "http.bind {http_bind} is not loopback: configure at least one token ([[http.tokens]])"
            )));
        }
        Ok(Settings {
            data_dir,
            formation,
            secret,
            secret_source,
            listen,
            peers,
            mdns: l.mdns.unwrap_or(false),
            log_level,
            log_format,
            http_bind,
            ready_needs_peer: l.http.ready_needs_peer.unwrap_or(false),
            tokens,
            policies,
            tls,
            cors_origins,
            kubernetes,
        })
    }

    /// The effective settings as TOML, the secret replaced by where it came from.
    pub fn redacted(&self) -> String {
        let mut out = String::new();
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        out += &format!("data_dir = {}\n", q(&self.data_dir.display().to_string()));
        out += &format!("formation = {}\n", q(&self.formation));
        out += &format!(
            "secret = {}\n",
            q(&format!("<redacted: from {}>", self.secret_source))
        );
        out += &format!("listen = {}\n", q(&self.listen.to_string()));
        let peers: Vec<String> = self.peers.iter().map(|p| q(&p.to_string())).collect();
        out += &format!("peers = [{}]\n", peers.join(", "));
        out += &format!("mdns = {}\n", self.mdns);
        out += &format!("log_level = {}\n", q(&self.log_level));
        let f = match self.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        out += &format!("log_format = {}\n\n[http]\n", q(f));
        let mut tail = String::new();
        if let Ok(t) = self.policies.to_json().parse::<serde_json::Value>() {
            if let Ok(text) = toml::to_string(&serde_json::json!({ "policies": t })) {
                tail = format!("\n{text}");
            }
        }
        out += &format!("bind = {}\n", q(&self.http_bind.to_string()));
        out += &format!("ready_needs_peer = {}\n", self.ready_needs_peer);
        if let Some(t) = &self.tls {
            out += &format!(
                "tls_cert_file = {}\ntls_key_file = {}\n",
                q(&t.cert_file.display().to_string()),
                q(&t.key_file.display().to_string())
            );
        }
        let origins: Vec<String> = self.cors_origins.iter().map(|o| q(o)).collect();
        out += &format!("cors_origins = [{}]\n", origins.join(", "));
        for t in &self.tokens {
            let scopes: Vec<String> = t.scopes.iter().map(|s| q(s.name())).collect();
            out += &format!(
                "\n[[http.tokens]]\nname = {}\nsha256 = \"<redacted>\"\nscopes = [{}]\n",
                q(&t.name),
                scopes.join(", ")
            );
        }
        out + &crate::kube_settings::redacted(&self.kubernetes) + &tail
    }
}

/// An origin as browsers send it: `http://` or `https://`, a host, an
/// optional port, nothing after.
fn check_origin(o: &str) -> Result<(), ConfigError> {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    let ok = rest.is_some_and(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "http.cors_origins: {o:?} is not an origin like https://console.example:8443"
        )))
    }
}

fn token(t: TokenLayer) -> Result<Token, ConfigError> {
    let hash = hex32(&t.sha256)
        .ok_or_else(|| bad(format!("token {:?}: sha256 must be 64 hex digits", t.name)))?;
    let scopes = t
        .scopes
        .iter()
        .map(|s| {
            Scope::from_name(s).ok_or_else(|| {
                bad(format!(
                    "token {:?}: scope {s:?} is not read, write or admin",
                    t.name
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err(bad(format!(
            "token {:?}: give it at least one scope",
            t.name
        )));
    }
    Ok(Token {
        name: t.name,
        hash,
        scopes,
    })
}

/// 64 hex digits as 32 bytes.
pub fn hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

fn parse_hex_secret(text: &str, what: &str) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let v = hex32(text).ok_or_else(|| {
        bad(format!(
            "{what} must be 64 hex digits (make one with `peat-mesh-node gen-secret`)"
        ))
    })?;
    if v == [0u8; 32] {
        return Err(bad(format!("{what} is all zeros: use a random secret")));
    }
    Ok(Zeroizing::new(v))
}

fn read_secret_file(path: &std::path::Path) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let bytes = Zeroizing::new(
        std::fs::read(path).map_err(|e| bad(format!("secret_file {}: {e}", path.display())))?,
    );
    let what = format!("secret_file {}", path.display());
    if bytes.len() == 32 {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&bytes);
        if *out == [0u8; 32] {
            return Err(bad(format!("{what} is all zeros: use a random secret")));
        }
        return Ok(out);
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| bad(format!("{what}: 64 hex digits or 32 raw bytes")))?;
    parse_hex_secret(text, &what)
}
