//! The policy, lifecycle and blob flags and `--control` commands of `run`:
//!
//! ```text
//! --policies FILE            collection policies, JSON or TOML (by the file's extension):
//!                            {"default": {...}, "collections": {"NAME": {...}}}; each policy's
//!                            fields: priority, sync, window_secs, ttl_secs, tombstone_ttl_secs,
//!                            max_documents, max_bytes, eager_blobs, delete, keep_until_delivered
//! --no-qos                   send every class alike, blobs at the documents' priority
//!                            (to measure what the classes do)
//! --bandwidth JSON           bandwidth budgets in bytes/s: {"per_peer": N, "links": {"NAME": N}}
//!                            ("socket" is the UDP socket)
//! bandwidth JSON             replace the bandwidth budgets at runtime
//! bandwidth-stats            print `BWSTATS` with the budgets' counters
//! policy COLL JSON           set a collection's policy at runtime
//! gc                         collect garbage now; print `GC EXPIRED TOMBSTONES EVICTED BLOBS`
//! storage-stats              print `SSTATS` with the storage counters
//! doc-subscribe COLL         print `EVENT doc COLL ID` for each change of the collection
//! blob-add-random BYTES      add a blob of random bytes; print `BLOB HASH SIZE`
//! blob-present HASH          print `PRESENT HASH BYTES`: verified bytes of it here
//! blob-fetch HASH            fetch a blob from the peers; print `EVENT blob_done HASH` (or
//!                            `EVENT blob_failed HASH REASON`) when it ends
//! ```

use anyhow::{Context, Result};
use peat_mesh::blobs::FetchOptions;
use peat_mesh::{Bandwidth, CollectionPolicy, Event, Node, NodeConfig, Policies};

/// Applies `--policies FILE`, `--no-qos` and `--bandwidth JSON`.
pub fn apply(args: &[String], mut cfg: NodeConfig) -> Result<NodeConfig> {
    if args.iter().any(|a| a == "--no-qos") {
        cfg.qos = false;
    }
    if let Some(json) = crate::flag(args, "--bandwidth") {
        cfg = cfg.bandwidth(Bandwidth::from_json(json).context("--bandwidth")?);
    }
    let Some(path) = crate::flag(args, "--policies") else {
        return Ok(cfg);
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading --policies {path}"))?;
    Ok(cfg.policies(policies_from(path, &text)?))
}

/// Policies from a file's text: TOML for a `.toml` file, JSON otherwise.
fn policies_from(path: &str, text: &str) -> Result<Policies> {
    let json = if path.ends_with(".toml") {
        let v: serde_json::Value =
            toml::from_str(text).with_context(|| format!("--policies {path} is not TOML"))?;
        v.to_string()
    } else {
        text.to_string()
    };
    Policies::from_json(&json).with_context(|| format!("--policies {path}"))
}

/// Runs a lifecycle or blob command; `None` if `cmd` is not one.
pub async fn command(node: &Node, cmd: &str, rest: &str) -> Option<Result<String>> {
    Some(match cmd {
        "policy" => set_policy(node, rest),
        "bandwidth" => Bandwidth::from_json(rest.trim())
            .and_then(|b| node.set_bandwidth(b))
            .map(|()| "OK bandwidth".to_string())
            .map_err(Into::into),
        "bandwidth-stats" => Ok(format!("BWSTATS {:?}", node.bandwidth_stats())),
        "gc" => gc(node).await,
        "storage-stats" => node
            .storage_stats()
            .await
            .map(|s| format!("SSTATS {s:?}"))
            .map_err(Into::into),
        "doc-subscribe" => doc_subscribe(node, rest.trim()),
        "blob-add-random" => blob_add_random(node, rest.trim()).await,
        "blob-fetch" => blob_fetch(node, rest.trim()),
        "blob-present" => blob_present(node, rest.trim()),
        _ => return None,
    })
}

fn set_policy(node: &Node, rest: &str) -> Result<String> {
    let (coll, json) = rest.split_once(' ').context("policy COLL JSON")?;
    node.set_policy(coll, CollectionPolicy::from_json(json)?)?;
    Ok(format!("OK policy {coll}"))
}

async fn gc(node: &Node) -> Result<String> {
    let r = node.collect_garbage().await?;
    Ok(format!(
        "GC {} {} {} {}",
        r.expired_documents, r.purged_tombstones, r.evicted_documents, r.removed_blobs
    ))
}

fn doc_subscribe(node: &Node, coll: &str) -> Result<String> {
    let sub = node.subscribe(coll, None, false)?;
    tokio::spawn(async move {
        while let Some(ev) = sub.next().await {
            match ev {
                Event::Item(d) => println!("EVENT doc {} {}", d.key.collection(), d.key.id()),
                Event::Lagged(n) => println!("EVENT doc_lagged {n}"),
            }
        }
    });
    Ok(format!("OK doc-subscribe {coll}"))
}

async fn blob_add_random(node: &Node, size: &str) -> Result<String> {
    let n: usize = size.parse().context("blob-add-random BYTES")?;
    let mut bytes = vec![0u8; n];
    // Random content: a blob of zeros would compress on no link, but differs
    // from a real file only in being easy to recognise.
    let mut x: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64
        | 1;
    for b in bytes.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let info = node.blobs().add_bytes(bytes).await?;
    Ok(format!("BLOB {} {}", info.hash, info.size))
}

fn blob_present(node: &Node, hash: &str) -> Result<String> {
    use peat_mesh::blobs::BlobStatus;
    let h = hash.parse().context("blob-present HASH")?;
    let present = match node.blobs().status(h)? {
        BlobStatus::Missing => 0,
        BlobStatus::Partial { present, .. } => present,
        BlobStatus::Complete(info) => info.size,
    };
    Ok(format!("PRESENT {hash} {present}"))
}

fn blob_fetch(node: &Node, hash: &str) -> Result<String> {
    let h = hash.parse().context("blob-fetch HASH")?;
    let transfer = node.blobs().fetch(h, FetchOptions::default());
    let hash = hash.to_string();
    let out = format!("OK blob-fetch {hash}");
    tokio::spawn(async move {
        match transfer.wait().await {
            Ok(_) => println!("EVENT blob_done {hash}"),
            Err(e) => println!("EVENT blob_failed {hash} {e}"),
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_from_json_and_toml_alike() {
        let json = r#"{"collections": {"alerts": {"priority": "critical", "ttl_secs": 600}}}"#;
        let toml = "[collections.alerts]\npriority = \"critical\"\nttl_secs = 600\n";
        let a = policies_from("p.json", json).unwrap();
        let b = policies_from("p.toml", toml).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.for_collection("alerts").priority,
            peat_mesh::Priority::Critical
        );
        let e =
            policies_from("p.toml", "[collections.alerts]\npriority = \"urgent\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("urgent"), "{e:#}");
        assert!(policies_from("p.toml", "not = [toml").is_err());
    }
}
