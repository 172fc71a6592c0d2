//! Network namespaces joined by a bridge, and `peat-mesh-node run --control`
//! processes inside them. Shared by `node/tests/netns.rs` and `peat-bench`'s
//! `discover`/`reconnect` scenarios. Needs root (CI runs as root); without it
//! [`Net::new`] fails and says why.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// `n` namespaces, each with one veth into a bridge in a namespace of its own,
/// addresses 10.77.0.1.. /24. Everything is deleted on drop.
pub struct Net {
    tag: String,
    bridge: String,
    pub nodes: Vec<String>,
}

impl Net {
    pub fn new(n: usize) -> Result<Net> {
        if !is_root() {
            bail!(
                "network namespace tests need root (CAP_NET_ADMIN); run them as root, as CI does"
            );
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n_net = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Unique per process and per Net; interface names must stay under 16 bytes.
        let tag = format!("{:x}{n_net}", std::process::id() % 0xffff);
        let bridge = format!("pmb{tag}");
        let mut net = Net {
            tag: tag.clone(),
            bridge: bridge.clone(),
            nodes: Vec::new(),
        };
        ip(&["netns", "add", &bridge])?;
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &bridge,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
        for i in 0..n {
            let ns = format!("pmn{tag}x{i}");
            ip(&["netns", "add", &ns])?;
            net.nodes.push(ns.clone());
            let (inner, outer) = (format!("pv{tag}x{i}"), net.port(i));
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "netns", &bridge])?;
            ip(&["-n", &bridge, "link", "set", &outer, "master", "br0"])?;
            ip(&["-n", &bridge, "link", "set", &outer, "up"])?;
            let addr = format!("10.77.0.{}/24", i + 1);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            // mDNS sends to 224.0.0.251: route multicast out of the veth.
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", &inner])?;
        }
        Ok(net)
    }

    fn port(&self, i: usize) -> String {
        format!("pb{}x{i}", self.tag)
    }

    /// Cuts node `i` off the bridge, or reconnects it.
    pub fn link(&self, i: usize, up: bool) -> Result<()> {
        ip(&[
            "-n",
            &self.bridge,
            "link",
            "set",
            &self.port(i),
            if up { "up" } else { "down" },
        ])
    }

    /// A command run inside node `i`'s namespace.
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.nodes[i], program]);
        c
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain(std::iter::once(&self.bridge)) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Where [`NodeProc`]s run: numbered network namespaces.
pub trait Namespaces {
    /// A command run inside namespace `i`.
    fn command(&self, i: usize, program: &str) -> Command;
}

impl Namespaces for Net {
    fn command(&self, i: usize, program: &str) -> Command {
        Net::command(self, i, program)
    }
}

/// Two namespaces joined directly by two veth pairs, as two links of a field
/// node: `lan` (10.78.1.1 and .2 /24) and `radio` (10.78.2.1 and .2 /24),
/// the radio shaped both ways by `tc tbf` to a radio-like rate. Deleted on
/// drop.
pub struct LinkPair {
    tag: String,
    pub nodes: [String; 2],
}

impl LinkPair {
    /// `radio_rate` as `tc` takes it, e.g. `96kbit`; the radio's queue holds
    /// 400 ms of it.
    pub fn new(radio_rate: &str) -> Result<LinkPair> {
        LinkPair::shaped(radio_rate, "400ms")
    }

    /// [`LinkPair::new`] with the radio's queue holding `latency` (as `tc`
    /// takes it, e.g. `50ms`) of traffic; past it, packets are dropped.
    pub fn shaped(radio_rate: &str, latency: &str) -> Result<LinkPair> {
        if !is_root() {
            bail!(
                "network namespace tests need root (CAP_NET_ADMIN); run them as root, as CI does"
            );
        }
        let tag = format!("{:x}", std::process::id() % 0xffff);
        let nodes = [format!("plk{tag}a"), format!("plk{tag}b")];
        let pair = LinkPair {
            tag: tag.clone(),
            nodes: nodes.clone(),
        };
        for ns in &nodes {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        for (k, link) in ["lan", "radio"].iter().enumerate() {
            let (d0, d1) = (pair.dev(0, link), pair.dev(1, link));
            ip(&["link", "add", &d0, "type", "veth", "peer", "name", &d1])?;
            for (i, d) in [(0, &d0), (1, &d1)] {
                ip(&["link", "set", d, "netns", &nodes[i]])?;
                let addr = format!("10.78.{}.{}/24", k + 1, i + 1);
                ip(&["-n", &nodes[i], "addr", "add", &addr, "dev", d])?;
                ip(&["-n", &nodes[i], "link", "set", d, "up"])?;
                if *link == "radio" {
                    let out = Command::new("tc")
                        .args(["-n", &nodes[i], "qdisc", "add", "dev", d, "root", "tbf"])
                        .args(["rate", radio_rate, "burst", "4kb", "latency", latency])
                        .output()
                        .context("running `tc` (iproute2)")?;
                    if !out.status.success() {
                        bail!("tc tbf: {}", String::from_utf8_lossy(&out.stderr).trim());
                    }
                }
            }
        }
        Ok(pair)
    }

    /// Node `i`'s end of `link` (`lan` or `radio`).
    pub fn dev(&self, i: usize, link: &str) -> String {
        format!("p{}{}{i}", &link[..1], self.tag)
    }

    /// Takes node `i`'s end of `link` down (`ip link set down`), or up.
    pub fn set(&self, i: usize, link: &str, up: bool) -> Result<()> {
        let dev = self.dev(i, link);
        ip(&[
            "-n",
            &self.nodes[i],
            "link",
            "set",
            &dev,
            if up { "up" } else { "down" },
        ])
    }
}

impl Namespaces for LinkPair {
    fn command(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.nodes[i], program]);
        c
    }
}

impl Drop for LinkPair {
    fn drop(&mut self) {
        for ns in &self.nodes {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A `peat-mesh-node run --control` process and its output lines.
pub struct NodeProc {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    pub id: String,
    pub seen: Vec<String>,
}

impl NodeProc {
    /// Starts a node in namespace `i` of `net`, formation `formation`, data in `dir`.
    pub fn start(
        net: &dyn Namespaces,
        i: usize,
        bin: &str,
        dir: &std::path::Path,
        formation: &str,
        extra: &[&str],
    ) -> Result<NodeProc> {
        let mut cmd = net.command(i, bin);
        cmd.args(["run", "--data-dir"])
            .arg(dir)
            .args(["--formation", formation])
            .env("PEAT_SECRET", "42".repeat(32)) // never on a command line
            .args(["--listen", "0.0.0.0:7400", "--control"])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().context("starting peat-mesh-node")?;
        let stdin = child.stdin.take().context("stdin")?;
        let out = child.stdout.take().context("stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = NodeProc {
            child,
            stdin,
            lines,
            id: String::new(),
            seen: Vec::new(),
        };
        let ready = p.wait_for(Duration::from_secs(20), |l| l.starts_with("READY "))?;
        p.id = ready
            .split_whitespace()
            .nth(1)
            .context("READY line")?
            .to_string();
        Ok(p)
    }

    /// Sends one control command.
    pub fn send(&mut self, cmd: &str) -> Result<()> {
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Like [`NodeProc::wait_for`], but a matching line already seen counts too.
    pub fn wait_seen(&mut self, timeout: Duration, f: impl Fn(&str) -> bool) -> Result<String> {
        self.drain();
        if let Some(l) = self.seen.iter().find(|l| f(l)) {
            return Ok(l.clone());
        }
        self.wait_for(timeout, f)
    }

    /// Waits for a new output line matching `f` (every line is kept in `seen`).
    pub fn wait_for(&mut self, timeout: Duration, f: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if f(&l) {
                        return Ok(l);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(anyhow!(
                        "no matching line within {timeout:?}; saw {:?}",
                        self.seen
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(anyhow!("node exited; saw {:?}", self.seen))
                }
            }
        }
    }

    /// Polls `get` until the document is there; returns its JSON.
    pub fn wait_doc(&mut self, coll: &str, id: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.send(&format!("get {coll} {id}"))?;
            let prefix = format!("DOC {coll} {id} ");
            let l = self.wait_for(Duration::from_secs(5), |l| l.starts_with(&prefix))?;
            let js = l[prefix.len()..].to_string();
            if js != "null" {
                return Ok(js);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("{coll}/{id} did not arrive within {timeout:?}")
    }

    /// Drains lines already printed, without waiting.
    pub fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.send("quit");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `len` letters from a xorshift generator (`state` moves on): incompressible
/// text for documents that must really take their size on a link (Automerge
/// compresses repeated characters away).
pub fn random_text(state: &mut u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            char::from(b'a' + (*state % 26) as u8)
        })
        .collect()
}
