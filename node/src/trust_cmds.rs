//! Trust from the command line: the formation authority's offline
//! operations, enrollment of this node, the trust flags of `run` and its
//! `--control` commands.
//!
//! ```text
//! authority new --formation ID --key-file PATH       a new authority key, written owner-only
//!                                                    (never over an existing file); prints
//!                                                    `AUTHORITY PUBLICKEY`
//! authority issue --formation ID --key-file PATH --subject NODEID --tier TIER
//!                 [--permissions relay,enroll,admin] [--valid-days N]
//!                                                    prints `CERT HEX` (default 30 days)
//! authority revoke --formation ID --key-file PATH --certificate HEX
//!                                                    prints `REVOCATION HEX`
//! enroll --data-dir DIR --formation ID --authority PUBLICKEY --enroller NODEID@ADDR
//!        --token-file PATH [--listen ADDR]          enrolls the node of DIR (closed) with
//!                                                    the enroller; prints `CHAIN HEX,...`
//! run ... --authority PUBLICKEY [--admission certificate|both|secret] [--chain HEX,...]
//! membership                                         `MEMBERSHIP STATE [TIER]`
//! chain                                              `CHAIN HEX,...`
//! set-chain HEX,...                                  replace this node's chain (stored)
//! token TIER PERMISSIONS TTL_SECS                    `TOKEN HEX` (a secret: hand it over
//!                                                    out of band)
//! revoke CERTHEX / add-revocation RECORDHEX         `OK revoke NEW` / `OK add-revocation NEW`
//! ```
//!
//! Secrets (the authority key, enrollment tokens) come from files, never the
//! command line (other users see it); a key file open to other users is
//! refused.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use peat_mesh::trust::{
    authority_from_hex, chain_from_text, chain_to_text, AdmissionMode, Authority, Certificate,
    EnrollmentToken, Genesis, Grant, MembershipStatus, Permissions, RevocationRecord, Tier,
    TrustConfig,
};
use peat_mesh::{Node, NodeConfig};
use zeroize::Zeroizing;

use crate::flag;

fn need<'a>(args: &'a [String], name: &str) -> Result<&'a str> {
    flag(args, name).ok_or_else(|| anyhow!("{name} is required"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads a secret file (64 hex digits, or 32 raw bytes), refusing one other
/// users may read.
fn read_secret_file(path: &str, what: &str) -> Result<Zeroizing<[u8; 32]>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("{what} {path}"))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{what} {path} is open to other users (mode {:o}): chmod 600 it",
                mode & 0o777
            );
        }
    }
    let bytes = Zeroizing::new(std::fs::read(path).with_context(|| format!("{what} {path}"))?);
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(Zeroizing::new(raw));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("{what} {path}: not 64 hex digits nor 32 bytes"))?;
    crate::parse_secret(text, &format!("{what} {path}"))
}

fn permissions(list: Option<&str>) -> Result<Permissions> {
    let mut p = Permissions::NONE;
    for name in list.unwrap_or("").split(',').filter(|s| !s.is_empty()) {
        p = p | match name.trim() {
            "relay" => Permissions::RELAY,
            "enroll" => Permissions::ENROLL,
            "admin" => Permissions::ADMIN,
            other => bail!("permission {other:?} (relay, enroll or admin)"),
        };
    }
    Ok(p)
}

fn tier(name: &str) -> Result<Tier> {
    Tier::from_name(name)
        .ok_or_else(|| anyhow!("tier {name:?} (enterprise, regional, tactical or edge)"))
}

/// `authority new|issue|revoke ...`.
pub fn authority(args: &[String]) -> Result<()> {
    let formation = need(args, "--formation")?;
    let key_file = need(args, "--key-file")?;
    match args.first().map(String::as_str) {
        Some("new") => {
            let secret = Zeroizing::new(peat_mesh::Formation::generate_secret());
            let a = Authority::from_secret(formation, *secret)?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            use std::io::Write;
            let mut f = opts.open(key_file).with_context(|| {
                format!("--key-file {key_file} (an existing file is never replaced)")
            })?;
            f.write_all(Zeroizing::new(crate::hex(&*secret)).as_bytes())?;
            f.sync_all()?;
            println!("AUTHORITY {}", a.genesis().authority);
        }
        Some("issue") => {
            let a = Authority::from_secret(formation, *read_secret_file(key_file, "--key-file")?)?;
            let days: u64 = flag(args, "--valid-days")
                .unwrap_or("30")
                .parse()
                .context("--valid-days")?;
            if days == 0 {
                bail!("--valid-days must be at least 1");
            }
            let cert = a.issue(&Grant {
                subject: need(args, "--subject")?.parse().context("--subject")?,
                tier: tier(need(args, "--tier")?)?,
                permissions: permissions(flag(args, "--permissions"))?,
                not_before_ms: now_ms(),
                valid_for: Duration::from_secs(days * 86_400),
            })?;
            println!("CERT {}", cert.to_hex());
        }
        Some("revoke") => {
            let a = Authority::from_secret(formation, *read_secret_file(key_file, "--key-file")?)?;
            let cert =
                Certificate::from_hex(need(args, "--certificate")?).context("--certificate")?;
            let record = RevocationRecord {
                revocation: a.revoke(&cert, now_ms()),
                revoker_chain: Vec::new(),
            };
            println!("REVOCATION {}", record.to_hex());
        }
        _ => bail!("authority new|issue|revoke"),
    }
    Ok(())
}

/// The trust flags of `run` (and `enroll`): `--authority PUBLICKEY`,
/// `--admission MODE`, `--chain HEX,...`.
pub fn apply(args: &[String], cfg: NodeConfig) -> Result<NodeConfig> {
    let Some(authority) = flag(args, "--authority") else {
        if flag(args, "--admission").is_some() || flag(args, "--chain").is_some() {
            bail!("--admission and --chain need --authority");
        }
        return Ok(cfg);
    };
    let mode = match flag(args, "--admission") {
        Some(m) => AdmissionMode::from_name(m)
            .ok_or_else(|| anyhow!("--admission {m:?} (secret, certificate or both)"))?,
        None => AdmissionMode::Certificate,
    };
    let genesis = Genesis {
        formation: cfg.formation.id().to_string(),
        authority: authority_from_hex(authority).context("--authority")?,
    };
    let chain = chain_from_text(flag(args, "--chain").unwrap_or("")).context("--chain")?;
    Ok(cfg.trust(TrustConfig::new(genesis, mode).chain(chain)))
}

/// `enroll ...`: opens the node of `--data-dir`, enrolls it, prints its chain.
pub async fn enroll(args: &[String]) -> Result<()> {
    let dir = need(args, "--data-dir")?;
    let fid = need(args, "--formation")?;
    let enroller: peat_mesh::PeerAddr = need(args, "--enroller")?.parse().context("--enroller")?;
    let token_file = need(args, "--token-file")?;
    let token = {
        let text = Zeroizing::new(
            std::fs::read_to_string(token_file)
                .with_context(|| format!("--token-file {token_file}"))?,
        );
        EnrollmentToken::from_hex(&text).context("--token-file")?
    };
    // Certificate mode does not check the formation secret: a fresh one
    // stands in unless one is given.
    let secret = match std::env::var(crate::SECRET_ENV).ok().map(Zeroizing::new) {
        Some(hex) => crate::parse_secret(&hex, crate::SECRET_ENV)?,
        None => Zeroizing::new(peat_mesh::Formation::generate_secret()),
    };
    let listen = flag(args, "--listen").unwrap_or("0.0.0.0:0");
    let cfg = NodeConfig::new(dir, peat_mesh::Formation::try_new(fid, *secret)?)
        .listen(listen.parse().context("--listen")?);
    let cfg = apply(args, cfg)?;
    if cfg.trust.is_none() {
        bail!("--authority is required");
    }
    let node = Node::open(cfg).await?;
    let result = node.enroll(&enroller, token).await;
    node.close(Duration::from_secs(5)).await?;
    println!("CHAIN {}", chain_to_text(&result?));
    Ok(())
}

/// Runs a trust command; `None` if `cmd` is not one.
pub async fn command(node: &Node, cmd: &str, rest: &str) -> Option<Result<String>> {
    Some(match cmd {
        "membership" => Ok(match node.membership() {
            MembershipStatus::Valid(v) => format!("MEMBERSHIP valid {}", v.tier.name()),
            MembershipStatus::Revoked { .. } => "MEMBERSHIP revoked".into(),
            MembershipStatus::Denied { reason } => format!("MEMBERSHIP denied {reason}"),
            MembershipStatus::Invalid { reason } => format!("MEMBERSHIP invalid {reason}"),
            MembershipStatus::Pending => "MEMBERSHIP pending".into(),
            MembershipStatus::NoCertificate => "MEMBERSHIP no_certificate".into(),
            MembershipStatus::SecretOnly => "MEMBERSHIP secret_only".into(),
        }),
        "chain" => Ok(format!(
            "CHAIN {}",
            chain_to_text(&node.certificate_chain())
        )),
        "set-chain" => chain_from_text(rest)
            .map_err(anyhow::Error::from)
            .and_then(|c| node.set_certificate_chain(c).map_err(Into::into))
            .map(|()| "OK set-chain".to_string()),
        "token" => token(node, rest),
        "revoke" => match Certificate::from_hex(rest.trim()) {
            Ok(c) => node
                .revoke(&c)
                .await
                .map(|n| format!("OK revoke {n}"))
                .map_err(Into::into),
            Err(e) => Err(e.into()),
        },
        "add-revocation" => match RevocationRecord::from_hex(rest.trim()) {
            Ok(r) => node
                .add_revocation(r)
                .await
                .map(|n| format!("OK add-revocation {n}"))
                .map_err(Into::into),
            Err(e) => Err(e.into()),
        },
        _ => return None,
    })
}

fn token(node: &Node, rest: &str) -> Result<String> {
    let mut p = rest.split_whitespace();
    let usage = "token TIER PERMISSIONS TTL_SECS";
    let t = tier(p.next().context(usage)?)?;
    let perms = permissions(Some(p.next().context(usage)?).filter(|s| *s != "none"))?;
    let ttl: u64 = p.next().context(usage)?.parse().context(usage)?;
    let token = node.create_enrollment_token(t, perms, Duration::from_secs(ttl))?;
    Ok(format!("TOKEN {}", token.to_hex().as_str()))
}
