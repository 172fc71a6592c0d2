//! `peat-mesh-node`: run a mesh node, or a local three-node demo.
//!
//! ```text
//! peat-mesh-node demo [--docs N]
//! peat-mesh-node gen-secret
//! peat-mesh-node serve [--config FILE] [FLAGS]   (see `serve_cmds`; --help)
//! peat-mesh-node config check FILE
//! peat-mesh-node hash-token < TOKEN
//! peat-mesh-node healthcheck [ADDR]
//! peat-mesh-node run --data-dir DIR --formation ID [--secret-file PATH] [--listen ADDR]
//!                    [--peer NODEID@ADDR[,ADDR]]... [--no-mdns] [--control]
//!                    [--link NAME=BIND[@LEVEL]]... [--links-only]
//!                    [--pace-probe-ms MS] [--pace-dead-ms MS] [--pace-hold-down-ms MS]
//!                    [--blobs-below-level N] [--collection-below-level NAME=N]...
//!                    [--multicast GROUP:PORT@IFACE_ADDR] [--beacon-preset NAME]
//!                    [--policies FILE.json|FILE.toml] [--no-qos] [--bandwidth JSON]
//!                    [--authority PUBLICKEY [--admission MODE] [--chain HEX,...]]
//! peat-mesh-node authority new|issue|revoke --formation ID --key-file PATH ...
//! peat-mesh-node enroll --data-dir DIR --formation ID --authority PUBLICKEY
//!                       --enroller NODEID@ADDR --token-file PATH
//! ```
//!
//! The trust commands and flags (an offline formation authority, enrollment,
//! admission by certificate, revocation) are in `trust_cmds`.
//!
//! `--link` adds a link besides the UDP socket (a UDP socket of its own on one
//! interface's address, paired with peers' links of the same name) at a PACE
//! level (0 primary); `--links-only` binds no other socket (and so no mDNS).
//! `run` prints `READY NODEID [ADDRS]`, then `ADDR PEERSTRING`: what another
//! node's `--peer` or `add-peer` takes to reach this one over every address
//! and link.
//!
//! The formation secret (64 hex digits; `gen-secret` prints a new random one)
//! comes from `--secret-file PATH` (hex, or the 32 raw bytes), else from the
//! `PEAT_SECRET` environment variable. `--secret HEX64` still works but warns:
//! a command line is visible to every user of the machine (`ps`, `/proc`).
//! An all-zero secret is refused.
//!
//! `run` announces the node and finds others of its formation by mDNS unless
//! `--no-mdns`. With `--control` it reads commands from stdin, one per line
//! (`put COLL ID JSON`, `get COLL ID`, `peers`, `add-peer NODEID@ADDR[,ADDR]`,
//! `links NODEID` (each link's health towards a peer), `silence LINK`,
//! `unsilence LINK`, `quit`; the ephemeral commands in `ephemeral_cmds`, the
//! policy, lifecycle and blob ones in `lifecycle_cmds`), and prints one line per answer and per peer event (`EVENT ...`), for
//! tests and scripts that drive a node in another process or network namespace.

mod ephemeral_cmds;
mod lifecycle_cmds;
mod link_flags;
mod serve_cmds;
mod trust_cmds;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use peat_mesh::{Event, Formation, Node, NodeConfig, PeerAddr, PeerEvent};
use serde_json::json;
use zeroize::Zeroizing;

const USAGE: &str = "usage:
  peat-mesh-node demo [--docs N]
  peat-mesh-node gen-secret
  peat-mesh-node serve [--config FILE] [FLAGS]     (the node as a service; --help)
  peat-mesh-node config check FILE
  peat-mesh-node hash-token < TOKEN
  peat-mesh-node healthcheck [ADDR]                 (exit 0 if the API at ADDR is healthy)
  peat-mesh-node run --data-dir DIR --formation ID [--secret-file PATH] [--listen ADDR]
                     [--peer NODEID@ADDR[,ADDR]]... [--no-mdns] [--control]
                     [--link NAME=BIND[@LEVEL]]... [--links-only]
                     [--pace-probe-ms MS] [--pace-dead-ms MS] [--pace-hold-down-ms MS]
                     [--blobs-below-level N] [--collection-below-level NAME=N]...
                     [--multicast GROUP:PORT@IFACE_ADDR] [--beacon-preset NAME]
                     [--policies FILE.json|FILE.toml] [--no-qos] [--bandwidth JSON]
                     [--authority PUBLICKEY [--admission certificate|both|secret] [--chain HEX,...]]
  peat-mesh-node authority new --formation ID --key-file PATH
  peat-mesh-node authority issue --formation ID --key-file PATH --subject NODEID --tier TIER
                                 [--permissions relay,enroll,admin] [--valid-days N]
  peat-mesh-node authority revoke --formation ID --key-file PATH --certificate HEX
  peat-mesh-node enroll --data-dir DIR --formation ID --authority PUBLICKEY
                        --enroller NODEID@ADDR --token-file PATH [--listen ADDR]
The formation secret (64 hex digits) comes from --secret-file PATH, else from
the PEAT_SECRET environment variable; make one with `peat-mesh-node gen-secret`.";

/// The environment variable holding the formation secret (64 hex digits).
const SECRET_ENV: &str = "PEAT_SECRET";

fn main() -> Result<std::process::ExitCode> {
    // The service commands set up their own logs from their settings.
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => return Ok(serve_cmds::serve(&args[1..])),
        Some("config") => return Ok(serve_cmds::config(&args[1..])),
        Some("hash-token") => return Ok(serve_cmds::hash_token()),
        Some("healthcheck") => return Ok(serve_cmds::healthcheck(&args[1..])),
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    if args.first().map(String::as_str) == Some("gen-secret") {
        let secret = Zeroizing::new(Formation::generate_secret());
        println!("{}", Zeroizing::new(hex(&*secret)).as_str());
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("peat-node")
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("demo") => rt.block_on(demo(&args[1..])),
        Some("run") => rt.block_on(run(&args[1..])),
        Some("authority") => trust_cmds::authority(&args[1..]),
        Some("enroll") => rt.block_on(trust_cmds::enroll(&args[1..])),
        _ => bail!("{USAGE}"),
    }?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits (surrounding whitespace ignored) as a secret; `what` names
/// the source in errors.
fn parse_secret(text: &str, what: &str) -> Result<Zeroizing<[u8; 32]>> {
    let hex = text.trim();
    // Checked before slicing: a multi-byte character would split a pair.
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{what} must be 64 hex digits (make one with `peat-mesh-node gen-secret`)");
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16)
            .with_context(|| format!("{what} is not hex"))?;
    }
    Ok(out)
}

/// The formation secret of `run`: `--secret-file PATH` (64 hex digits, or the
/// 32 raw bytes), else `--secret HEX64` (with a warning: command lines are
/// visible to other users), else the `PEAT_SECRET` environment variable.
fn formation_secret(
    args: &[String],
    env: Option<Zeroizing<String>>,
) -> Result<Zeroizing<[u8; 32]>> {
    let file = flag(args, "--secret-file");
    let inline = flag(args, "--secret");
    if file.is_some() && inline.is_some() {
        bail!("give the formation secret once: --secret-file or --secret, not both");
    }
    if let Some(path) = file {
        let data = Zeroizing::new(
            std::fs::read(path).with_context(|| format!("reading --secret-file {path}"))?,
        );
        warn_if_readable_by_others(path);
        if data.len() == 32 && !data.iter().all(|b| b.is_ascii_hexdigit()) {
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(&data);
            return Ok(out);
        }
        let text = std::str::from_utf8(&data)
            .map_err(|_| anyhow!("--secret-file {path}: not 64 hex digits nor 32 bytes"))?;
        return parse_secret(text, &format!("--secret-file {path}"));
    }
    if let Some(hex) = inline {
        eprintln!(
            "warning: --secret puts the formation secret on the command line, which other \
             users of this machine can read (ps, /proc); use --secret-file PATH or {SECRET_ENV}"
        );
        return parse_secret(hex, "--secret");
    }
    match env {
        Some(hex) => parse_secret(&hex, SECRET_ENV),
        None => bail!(
            "no formation secret: set {SECRET_ENV} or pass --secret-file PATH \
             (make one with `peat-mesh-node gen-secret`)\n{USAGE}"
        ),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!("warning: --secret-file {path} is readable by other users (chmod 600 it)");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &str) {}

async fn run(args: &[String]) -> Result<()> {
    let dir = flag(args, "--data-dir").ok_or_else(|| anyhow!("--data-dir is required\n{USAGE}"))?;
    let fid =
        flag(args, "--formation").ok_or_else(|| anyhow!("--formation is required\n{USAGE}"))?;
    let env = std::env::var(SECRET_ENV).ok().map(Zeroizing::new);
    let secret = formation_secret(args, env)?;
    let formation = Formation::try_new(fid, *secret)?;
    let listen: SocketAddr = flag(args, "--listen").unwrap_or("0.0.0.0:0").parse()?;
    let mut cfg = NodeConfig::new(dir, formation).listen(listen);
    for (i, a) in args.iter().enumerate() {
        if a == "--peer" {
            let p = args
                .get(i + 1)
                .ok_or_else(|| anyhow!("--peer needs NODEID@ADDR"))?;
            cfg = cfg.peer(p.parse::<PeerAddr>()?);
        }
    }
    cfg.mdns = !args.iter().any(|a| a == "--no-mdns");
    let cfg = link_flags::apply(args, cfg).await?;
    let cfg = ephemeral_cmds::apply(args, cfg)?;
    let cfg = lifecycle_cmds::apply(args, cfg)?;
    let cfg = trust_cmds::apply(args, cfg)?;
    let control = args.iter().any(|a| a == "--control");
    let node = Node::open(cfg).await?;
    println!("READY {} {:?}", node.id(), node.addrs());
    println!("ADDR {}", node.peer_addr());
    let events = node.subscribe_peers();
    let (tx, mut commands) = tokio::sync::mpsc::channel::<String>(16);
    if control {
        // stdin is read on its own thread: a blocking read must not hold a worker.
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    } else {
        drop(tx);
    }
    let mut stdin_open = control;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            ev = events.next() => match ev {
                Some(Event::Item(e)) => println!("EVENT {}", event_line(&e)),
                Some(Event::Lagged(n)) => println!("EVENT lagged {n}"),
                None => break,
            },
            cmd = commands.recv(), if stdin_open => match cmd {
                Some(line) => {
                    if line.trim() == "quit" {
                        break;
                    }
                    match command(&node, &line).await {
                        Ok(out) => println!("{out}"),
                        Err(e) => println!("ERR {e}"),
                    }
                }
                None => stdin_open = false,
            },
        }
    }
    node.close(Duration::from_secs(5)).await?;
    Ok(())
}

/// One line per peer event: `KIND PEER [DETAIL]`.
fn event_line(e: &PeerEvent) -> String {
    match e {
        PeerEvent::Connected { peer } => format!("connected {peer}"),
        PeerEvent::Disconnected { peer, reason } => format!("disconnected {peer} {reason}"),
        PeerEvent::AdmissionRefused { peer, reason } => format!("refused {peer} {reason}"),
        PeerEvent::Revoked { peer } => format!("revoked {peer}"),
        PeerEvent::Discovered { peer, source } => format!("discovered {peer} {source}"),
        PeerEvent::Lost { peer, source } => format!("lost {peer} {source}"),
        PeerEvent::SeenOtherFormation { peer } => format!("other_formation {peer}"),
        PeerEvent::StorageFailed { reason } => format!("storage_failed {reason}"),
        PeerEvent::StorageEvicted {
            documents,
            stored_bytes,
        } => format!("storage_evicted {documents} {stored_bytes}"),
        PeerEvent::LinkChanged {
            peer,
            from,
            to,
            level,
        } => format!(
            "link_changed {peer} {} {} {}",
            from.as_deref().unwrap_or("-"),
            to.as_deref().unwrap_or("-"),
            level.map_or("-".to_string(), |l| l.to_string())
        ),
    }
}

/// Runs one `--control` command.
async fn command(node: &Node, line: &str) -> Result<String> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    if let Some(out) = ephemeral_cmds::command(node, cmd, rest) {
        return out;
    }
    if let Some(out) = lifecycle_cmds::command(node, cmd, rest).await {
        return out;
    }
    if let Some(out) = trust_cmds::command(node, cmd, rest).await {
        return out;
    }
    let mut parts = line.splitn(4, ' ');
    match parts.next().unwrap_or("") {
        "put" => {
            let (c, id, js) = (
                parts.next().context("put COLL ID JSON")?,
                parts.next().context("put COLL ID JSON")?,
                parts.next().context("put COLL ID JSON")?,
            );
            node.put(c, id, &peat_mesh::storage::parse_document(js)?)
                .await?;
            Ok(format!("OK put {c} {id}"))
        }
        "get" => {
            let (c, id) = (
                parts.next().context("get COLL ID")?,
                parts.next().context("get COLL ID")?,
            );
            let v = node.get(c, id)?;
            Ok(format!(
                "DOC {c} {id} {}",
                v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
            ))
        }
        "peers" => {
            let list: Vec<String> = node
                .peers()
                .iter()
                .map(|p| {
                    let sources: Vec<String> = p.sources.iter().map(|s| s.to_string()).collect();
                    format!("{}:{:?}:{}", p.id, p.state, sources.join("+"))
                })
                .collect();
            Ok(format!("PEERS {}", list.join(" ")))
        }
        "silence" | "unsilence" => {
            let silent = line.starts_with("silence");
            let name = parts.next().context("silence LINK")?;
            node.set_link_silent(name, silent)?;
            Ok(format!(
                "OK {} {name}",
                if silent { "silence" } else { "unsilence" }
            ))
        }
        "links" => {
            let id: peat_mesh::NodeId = parts.next().context("links NODEID")?.parse()?;
            let peer = node.peers().into_iter().find(|p| p.id == id);
            let list: Vec<String> = peer
                .map(|p| p.links)
                .unwrap_or_default()
                .iter()
                .map(|l| {
                    format!(
                        "{}:{:?}:{}:{}",
                        l.name,
                        l.state,
                        if l.in_use { "in_use" } else { "-" },
                        l.rtt.map_or("-".into(), |r| format!("{}us", r.as_micros()))
                    )
                })
                .collect();
            Ok(format!("LINKS {}", list.join(" ")))
        }
        "add-peer" => {
            let p = parts.next().context("add-peer NODEID@ADDR")?;
            let peer: PeerAddr = p.parse()?;
            node.add_peer(peer.clone())?;
            Ok(format!("OK add-peer {}", peer.id))
        }
        other => bail!("unknown command {other:?}"),
    }
}

/// Three nodes on 127.0.0.1 in a line A–B–C, each in its own temp data dir.
async fn demo(args: &[String]) -> Result<()> {
    let docs: usize = flag(args, "--docs").unwrap_or("1000").parse()?;
    let formation = Formation::generate("demo");
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    let t = Instant::now();
    for name in ["A", "B", "C"] {
        let dir = tempfile::tempdir()?;
        let node = Node::open(
            NodeConfig::new(dir.path(), formation.clone()).listen("127.0.0.1:0".parse()?),
        )
        .await?;
        println!(
            "node {name}: id {} on {:?}",
            node.id().short(),
            node.addrs()
        );
        dirs.push(dir);
        nodes.push(node);
    }
    println!("opened 3 nodes in {:?}", t.elapsed());

    let t = Instant::now();
    for (i, name) in ["A", "B", "C"].iter().enumerate() {
        let node = nodes[i].clone();
        let mut tasks = Vec::new();
        for w in 0..16 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                for d in (w..docs).step_by(16) {
                    node.put(
                        "tracks",
                        &format!("{name}-{d:05}"),
                        &json!({"by": name, "seq": d, "lat": 59.3 + d as f64 * 1e-4}),
                    )
                    .await?;
                }
                Ok::<(), peat_mesh::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
    }
    println!(
        "wrote {} documents ({} per node, durable) in {:?}",
        docs * 3,
        docs,
        t.elapsed()
    );

    let t = Instant::now();
    let peer_events = nodes[0].subscribe_peers();
    nodes[1].connect(&nodes[0].peer_addr()).await?;
    nodes[2].connect(&nodes[1].peer_addr()).await?;
    if let Some(Event::Item(PeerEvent::Connected { peer })) =
        peer_events.next_timeout(Duration::from_secs(5)).await?
    {
        println!(
            "A admitted {} (formation proof checked both ways)",
            peer.short()
        );
    }
    println!("connected A–B–C in {:?}", t.elapsed());

    let t = Instant::now();
    wait_for(&nodes, docs * 3, Duration::from_secs(60)).await?;
    println!(
        "all 3 nodes hold all {} documents after {:?} (A and C never connect directly)",
        docs * 3,
        t.elapsed()
    );

    // concurrent edits of one document at both ends of the line
    let t = Instant::now();
    nodes[0]
        .merge_patch("missions", "m1", &json!({"status": "planned", "lead": "A"}))
        .await?;
    nodes[2]
        .merge_patch("missions", "m1", &json!({"eta": "10:30", "lead": "C"}))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Vec<_> = nodes
            .iter()
            .map(|n| n.get("missions", "m1"))
            .collect::<peat_mesh::Result<_>>()?;
        if v.iter().all(|x| {
            x.as_ref()
                .is_some_and(|d| d.get("status").is_some() && d.get("eta").is_some())
        }) && v[0] == v[1]
            && v[1] == v[2]
        {
            println!(
                "concurrent edits on A and C merged to {} on every node in {:?}",
                v[0].clone().unwrap_or_default(),
                t.elapsed()
            );
            break;
        }
        if Instant::now() > deadline {
            bail!("concurrent edits did not converge: {v:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (n, name) in nodes.iter().zip(["A", "B", "C"]) {
        let peers = n.peers();
        println!(
            "node {name}: {} documents, peers {:?}",
            n.document_count()?,
            peers
                .iter()
                .map(|p| (p.id.short(), p.rtt))
                .collect::<Vec<_>>()
        );
    }
    for n in &nodes {
        n.close(Duration::from_secs(5)).await?;
    }
    println!("demo ok");
    Ok(())
}

async fn wait_for(nodes: &[Node], n: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let counts: Vec<u64> = nodes
            .iter()
            .map(|x| x.document_count())
            .collect::<peat_mesh::Result<_>>()?;
        if counts.iter().all(|c| *c as usize >= n) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not converged after {timeout:?}: {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

    #[test]
    fn secret_from_file_env_or_flag() {
        let dir = tempfile::tempdir().unwrap();
        let hex_file = dir.path().join("hex");
        std::fs::write(&hex_file, format!("{HEX}\n")).unwrap();
        let raw_file = dir.path().join("raw");
        std::fs::write(&raw_file, [0x5a; 32]).unwrap();
        for f in [&hex_file, &raw_file] {
            let a = args(&["--secret-file", f.to_str().unwrap()]);
            assert_eq!(*formation_secret(&a, None).unwrap(), [0x5a; 32]);
        }
        let env = Some(Zeroizing::new(HEX.to_string()));
        assert_eq!(*formation_secret(&[], env.clone()).unwrap(), [0x5a; 32]);
        // a flag wins over the environment
        let other = "11".repeat(32);
        assert_eq!(
            *formation_secret(&args(&["--secret", &other]), env).unwrap(),
            [0x11; 32]
        );
        assert!(formation_secret(&[], None).is_err());
        assert!(formation_secret(&args(&["--secret", "abc"]), None).is_err());
        let both = args(&["--secret", HEX, "--secret-file", hex_file.to_str().unwrap()]);
        assert!(formation_secret(&both, None).is_err());
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "not a secret").unwrap();
        assert!(formation_secret(&args(&["--secret-file", bad.to_str().unwrap()]), None).is_err());
    }

    #[test]
    fn an_all_zero_secret_is_refused() {
        let zeros = Zeroizing::new("0".repeat(64));
        let s = formation_secret(&[], Some(zeros)).unwrap();
        assert!(Formation::try_new("f", *s).is_err());
    }
}
