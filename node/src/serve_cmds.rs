//! `serve`: the node as a service (configuration from a TOML file, `PEAT_…`
//! environment variables and flags, in that order of precedence; the HTTP
//! API; SIGTERM drains), `config check FILE` (validate and print the
//! effective settings, secrets redacted) and `hash-token` (the SHA-256 a
//! config stores for a bearer token read from stdin).
//!
//! A bad value gives one line on stderr and exit code 2, never a panic.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser};
use peat_mesh_service::{ConfigError, Layer, Service, Settings};

/// Exit code of a configuration or usage error.
const CONFIG_ERROR: u8 = 2;

/// Runs a peat-mesh node as a service: its HTTP API under /api/v1.
///
/// Settings come from the TOML file given with --config, then from PEAT_…
/// environment variables, then from these flags: a later source wins. The
/// formation secret comes from a file (secret_file, PEAT_SECRET_FILE,
/// --secret-file) or from PEAT_SECRET, never from a flag.
#[derive(Parser, Debug)]
#[command(name = "peat-mesh-node serve", version)]
struct ServeArgs {
    /// TOML configuration file (every key optional; unknown keys are an error).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    over: Flags,
    /// Seconds SIGTERM or Ctrl-C waits for requests and sessions to finish.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    grace_secs: u64,
}

/// Flags that override the file and the environment.
#[derive(Args, Debug, Default)]
struct Flags {
    /// Directory of the node's data (created owner-only) [PEAT_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Formation id: only nodes of the same formation and secret admit each
    /// other [PEAT_FORMATION].
    #[arg(long, value_name = "ID")]
    formation: Option<String>,
    /// File holding the formation secret: 64 hex digits or 32 raw bytes
    /// [PEAT_SECRET_FILE; or the secret itself in PEAT_SECRET].
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// UDP address the mesh endpoint binds (default 0.0.0.0:0) [PEAT_LISTEN].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// A static peer, NODEID@ADDR[,ADDR]; repeat for more [PEAT_PEERS, comma-separated].
    #[arg(long = "peer", value_name = "NODEID@ADDR")]
    peers: Vec<String>,
    /// Announce and find peers by mDNS on the local network (default off) [PEAT_MDNS].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    mdns: Option<bool>,
    /// error, warn, info, debug or trace (default info) [PEAT_LOG_LEVEL].
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// text or json (default text) [PEAT_LOG_FORMAT].
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// TCP address of the HTTP API (default 127.0.0.1:8080); any other than
    /// loopback needs tokens in the config file [PEAT_HTTP_BIND].
    #[arg(long, value_name = "ADDR")]
    http_bind: Option<String>,
    /// Report ready only once a first peer is admitted [PEAT_HTTP_READY_NEEDS_PEER].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    ready_needs_peer: Option<bool>,
    /// Serve HTTPS with this PEM certificate chain, leaf first (with
    /// --http-tls-key-file) [PEAT_HTTP_TLS_CERT_FILE].
    #[arg(long, value_name = "FILE")]
    http_tls_cert_file: Option<PathBuf>,
    /// The PEM private key of --http-tls-cert-file [PEAT_HTTP_TLS_KEY_FILE].
    #[arg(long, value_name = "FILE")]
    http_tls_key_file: Option<PathBuf>,
    /// A browser origin allowed to call the API (CORS), like
    /// https://console.example; repeat for more; none by default
    /// [PEAT_HTTP_CORS_ORIGINS, comma-separated].
    #[arg(long = "http-cors-origin", value_name = "ORIGIN")]
    http_cors_origins: Vec<String>,
    /// Find the other pods of the formation through the Kubernetes API
    /// (EndpointSlices of the headless Service, node ids from pod
    /// annotations); the other settings are in the [kubernetes] table and
    /// PEAT_KUBERNETES_… variables [PEAT_KUBERNETES].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    kubernetes: Option<bool>,
    /// This node's pod (default $POD_NAME, then $HOSTNAME) [PEAT_KUBERNETES_POD_NAME].
    #[arg(long, value_name = "NAME")]
    kubernetes_pod_name: Option<String>,
    /// Namespace to watch (default the service account's) [PEAT_KUBERNETES_NAMESPACE].
    #[arg(long, value_name = "NAME")]
    kubernetes_namespace: Option<String>,
}

impl Flags {
    fn layer(self) -> Layer {
        let mut l = Layer {
            data_dir: self.data_dir,
            formation: self.formation,
            secret_file: self.secret_file,
            listen: self.listen,
            peers: (!self.peers.is_empty()).then_some(self.peers),
            mdns: self.mdns,
            log_level: self.log_level,
            log_format: self.log_format,
            ..Layer::default()
        };
        l.http.bind = self.http_bind;
        l.http.ready_needs_peer = self.ready_needs_peer;
        l.http.tls_cert_file = self.http_tls_cert_file;
        l.http.tls_key_file = self.http_tls_key_file;
        l.http.cors_origins =
            (!self.http_cors_origins.is_empty()).then_some(self.http_cors_origins);
        l.kubernetes.enabled = self.kubernetes;
        l.kubernetes.pod_name = self.kubernetes_pod_name;
        l.kubernetes.namespace = self.kubernetes_namespace;
        l
    }
}

/// File, then environment, then flags, resolved.
fn settings(file: Option<&PathBuf>, flags: Layer) -> Result<Settings, ConfigError> {
    let base = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
            Layer::from_toml(&text)?
        }
        None => Layer::default(),
    };
    let env = Layer::from_env(std::env::vars())?;
    Settings::resolve(base.merge(env).merge(flags))
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("peat-mesh-node: {e}");
    ExitCode::from(CONFIG_ERROR)
}

fn init_logs(s: &Settings) {
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,peat_mesh={0},peat_mesh_service={0},peat_mesh_node={0}",
        s.log_level
    ));
    // Logs on stderr: stdout carries the READY and STOPPED lines.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match s.log_format {
        peat_mesh_service::config::LogFormat::Json => b.json().try_init(),
        peat_mesh_service::config::LogFormat::Text => b.try_init(),
    };
}

/// `peat-mesh-node serve [FLAGS]`.
pub fn serve(args: &[String]) -> ExitCode {
    let a = match ServeArgs::try_parse_from(
        std::iter::once("serve".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's first, without its usage block.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            return fail(first.trim_start_matches("error: "));
        }
    };
    let s = match settings(a.config.as_ref(), a.over.layer()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    init_logs(&s);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("peat-service")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    match rt.block_on(run(s, Duration::from_secs(a.grace_secs))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peat-mesh-node: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(s: Settings, grace: Duration) -> anyhow::Result<()> {
    let service = Service::start(&s).await?;
    // Handlers in place before READY, so a SIGTERM right after it drains too.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // stdout may be closed by whoever started us: never a reason to stop.
    let say = |line: String| {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    say(format!(
        "READY {} http={}",
        service.node().id(),
        service.http_addr()
    ));
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: draining"),
    }
    service.shutdown(grace).await?;
    say("STOPPED".into());
    Ok(())
}

/// `peat-mesh-node config check FILE`: validates FILE (with the environment
/// applied) and prints the effective settings, secrets redacted.
pub fn config(args: &[String]) -> ExitCode {
    let [cmd, file] = args else {
        return fail("usage: peat-mesh-node config check FILE");
    };
    if cmd != "check" {
        return fail(format!("unknown config command {cmd:?} (check)"));
    }
    match settings(Some(&PathBuf::from(file)), Layer::default()) {
        Ok(s) => {
            print!("{}", s.redacted());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `peat-mesh-node hash-token < TOKEN`: the SHA-256 (hex) to put in a
/// config's `[[http.tokens]]` for the token on stdin.
pub fn hash_token() -> ExitCode {
    let mut token = zeroize::Zeroizing::new(String::new());
    if let Err(e) = std::io::stdin().read_to_string(&mut token) {
        return fail(e);
    }
    if token.trim().is_empty() {
        return fail("no token on stdin");
    }
    println!("{}", peat_mesh_service::auth::hash_token(&token));
    ExitCode::SUCCESS
}

/// `peat-mesh-node healthcheck [ADDR]`: exit 0 if the HTTP API at ADDR
/// (default 127.0.0.1:8080, or PEAT_HTTP_BIND) answers its health route
/// with 200 within 3 s, else 1. For a container's HEALTHCHECK: the image
/// needs no HTTP client of its own. (Plain HTTP only; behind HTTPS use the
/// orchestrator's own probe.)
pub fn healthcheck(args: &[String]) -> ExitCode {
    let addr = args
        .first()
        .cloned()
        .or_else(|| std::env::var("PEAT_HTTP_BIND").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let Ok(mut addr) = addr.parse::<std::net::SocketAddr>() else {
        return fail(format!(
            "healthcheck: {addr:?} is not an address like 127.0.0.1:8080"
        ));
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    let answer = rt.block_on(async {
        let call = peat_mesh_service::client::call(addr, "GET", "/api/v1/health", None, None);
        tokio::time::timeout(Duration::from_secs(3), call).await
    });
    match answer {
        Ok(Ok(r)) if r.status == 200 => ExitCode::SUCCESS,
        Ok(Ok(r)) => {
            eprintln!("healthcheck: {addr} answered {}", r.status);
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("healthcheck: {addr}: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("healthcheck: {addr} did not answer within 3 s");
            ExitCode::FAILURE
        }
    }
}
