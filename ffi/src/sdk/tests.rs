//! The SDK layer's own tests, and what other modules' tests share (a test
//! node's options, one-at-a-time handle counting).

use super::*;
use crate::error::{ErrorCode, SdkResult};
use crate::handles;
use crate::records::{
    CollectionRule, DocEventRecord, LinkOptions, LinkState, NodeOptions, PaceOptions,
    PeerEventRecord, SubEvent,
};
use crate::runtime;

/// The handle registry is process-wide: tests that count handles run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Options for a test node on loopback in `dir`.
pub(crate) fn opts(dir: &std::path::Path) -> NodeOptions {
    NodeOptions {
        data_dir: dir.to_string_lossy().into_owned(),
        formation_id: "t".into(),
        formation_secret: vec![9; 32],
        listen: "127.0.0.1:0".into(),
        peers: vec![],
        mdns: false,
        ..Default::default()
    }
}

/// Called from a plain thread with no tokio context, as every binding does.
#[test]
fn two_nodes_sync_and_handles_are_freed() {
    let _g = serial();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let before = handles::live_handles();
    let a = node_open(&opts(da.path()), 5000, 0).unwrap();
    let b = node_open(&opts(db.path()), 5000, 0).unwrap();
    let sub = subscribe_docs(b, "c", None, true).unwrap();
    connect(b, &node_addrs(a).unwrap()[0], 5000, 0).unwrap();
    put(a, "c", "d", r#"{"x":1}"#).unwrap();
    let ev = loop {
        match next_doc_event(sub, 5000).unwrap() {
            Some(DocEventRecord::Changed { json, .. }) => break json,
            Some(DocEventRecord::Lagged(_)) => continue,
            None => panic!("timed out"),
        }
    };
    assert_eq!(ev.as_deref(), Some(r#"{"x":1}"#));
    assert_eq!(get(b, "c", "d").unwrap().as_deref(), Some(r#"{"x":1}"#));
    // a normal sync refuses nothing (the core's hostile-peer suite covers refusals)
    let st = stats(b).unwrap();
    assert!(st.frames_received > 0 && st.bytes_received > 0, "{st:?}");
    assert_eq!(st.refused_documents, 0);
    assert_eq!(get(a, "c", "nope").unwrap(), None);
    assert_eq!(
        put(a, "c", "d", "not json").unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    unsubscribe(sub).unwrap();
    assert_eq!(unsubscribe(sub).unwrap_err().code, ErrorCode::InvalidHandle);
    node_close(a, 5000).unwrap();
    node_close(b, 5000).unwrap();
    assert_eq!(
        node_close(a, 5000).unwrap_err().code,
        ErrorCode::InvalidHandle
    );
    assert_eq!(get(0, "c", "d").unwrap_err().code, ErrorCode::InvalidHandle);
    assert_eq!(handles::live_handles(), before);
}

#[test]
fn all_zero_secret_is_refused_and_generated_ones_open() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let mut o = opts(d.path());
    o.formation_secret = vec![0; 32];
    let e = node_open(&o, 5000, 0).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
    let s = generate_formation_secret();
    assert_ne!(s, [0; 32]);
    assert_ne!(s, generate_formation_secret());
    o.formation_secret = s.to_vec();
    node_close(node_open(&o, 5000, 0).unwrap(), 5000).unwrap();
}

/// NUL in a collection, id, prefix or cursor is refused by every call:
/// C strings would end there and C or Go would see another id.
#[test]
fn nul_in_names_is_refused_everywhere() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let n = node_open(&opts(d.path()), 5000, 0).unwrap();
    let bad = |r: SdkResult<()>| {
        let e = r.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}");
        assert!(e.message.contains("NUL"), "{e}");
    };
    for (c, i) in [("c", "a\0b"), ("c\0d", "a")] {
        bad(put(n, c, i, "{}"));
        bad(merge_patch(n, c, i, "{}"));
        bad(get(n, c, i).map(drop));
        bad(delete(n, c, i).map(drop));
        bad(export(n, c, i).map(drop));
        bad(import(n, c, i, b"").map(drop));
        bad(subscribe_docs(n, c, Some(i), false).map(drop));
    }
    bad(subscribe_docs(n, "c\0", None, false).map(drop));
    bad(list(n, "c\0", "", None, 10).map(drop));
    bad(list(n, "c", "a\0", None, 10).map(drop));
    bad(list(n, "c", "", Some("a\0"), 10).map(drop));
    put(n, "c", "a b", r#"{"x":1}"#).unwrap(); // a space is fine
    assert!(get(n, "c", "a b").unwrap().is_some());
    node_close(n, 5000).unwrap();
}

#[test]
fn cancel_token_ends_a_waiting_connect() {
    let _g = serial();
    let da = tempfile::tempdir().unwrap();
    let a = node_open(&opts(da.path()), 5000, 0).unwrap();
    // a peer that never answers: a blackhole port on loopback
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ghost = format!(
        "{}@{}",
        "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
        sock.local_addr().unwrap()
    );
    let token = cancel_new();
    // The cancel comes from another thread while `connect` waits on the
    // ghost: the delay only makes it arrive mid-wait (a token cancelled before
    // the call is a different path); the test's assertion is that the call
    // ends long before its 20 s timeout.
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        cancel(token).unwrap();
    });
    let start = std::time::Instant::now();
    let err = connect(a, &ghost, 20_000, token).unwrap_err();
    t.join().unwrap();
    assert_eq!(err.code, ErrorCode::Cancelled, "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    cancel_free(token).unwrap();
    assert_eq!(
        cancel_free(token).unwrap_err().code,
        ErrorCode::InvalidHandle
    );
    node_close(a, 5000).unwrap();
}

#[test]
fn blocking_call_from_runtime_thread_is_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let refused = rt.block_on(async { runtime::block_on(async { 1 }) });
    assert_eq!(refused.unwrap_err().code, ErrorCode::WouldDeadlock);
}

/// Sends every signal of a queued subscription into a channel.
struct Signals(std::sync::Mutex<std::sync::mpsc::Sender<SubEvent>>);

impl crate::dispatch::EventSink for Signals {
    fn on_event(&self, e: &SubEvent) {
        let _ = self.0.lock().unwrap().send(e.clone());
    }
}

/// A slow reader of a queued subscription (it reads only after the writes:
/// each is durable, so the forwarder has long queued the first five): the
/// SDK drops the oldest events past the capacity and says how many; the
/// node's end is signalled and read.
#[test]
fn queued_subscription_bounds_signals_and_ends() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let before = handles::live_handles();
    let n = node_open(&opts(d.path()), 5000, 0).unwrap();
    let (tx, signals) = std::sync::mpsc::channel();
    let sink = Box::new(Signals(std::sync::Mutex::new(tx)));
    let sub = subscribe_docs_queued(n, "c", None, false, 4, sink).unwrap();
    for i in 0..20 {
        put(n, "c", &format!("d{i:02}"), r#"{"x":1}"#).unwrap();
    }
    let (mut lagged, mut ids) = (0, Vec::new());
    while ids.last().map(String::as_str) != Some("d19") {
        let s = signals.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(s.unwrap(), SubEvent::Ready);
        while let Some(ev) = next_doc_event(sub, 0).unwrap() {
            match ev {
                DocEventRecord::Lagged(k) => lagged += k,
                DocEventRecord::Changed { id, .. } => ids.push(id),
            }
        }
    }
    assert!(lagged > 0, "a slow reader is told what it missed");
    assert_eq!(
        lagged as usize + ids.len(),
        20,
        "every event read or counted: {ids:?}"
    );
    assert_eq!(
        next_peer_event(sub, 0).unwrap_err().code,
        ErrorCode::InvalidHandle
    );
    node_close(n, 5000).unwrap();
    let s = signals.recv_timeout(std::time::Duration::from_secs(5));
    assert_eq!(s.unwrap(), SubEvent::Closed);
    assert_eq!(next_doc_event(sub, 0).unwrap_err().code, ErrorCode::Closed);
    unsubscribe(sub).unwrap();
    assert_eq!(handles::live_handles(), before);
}

/// Options for a node on two UDP links of its own on loopback ("primary" at
/// level 0, "alternate" at level 1) and no UDP socket besides.
fn linked_opts(dir: &std::path::Path) -> NodeOptions {
    let link = |name: &str, level| LinkOptions {
        name: name.into(),
        bind: "127.0.0.1:0".into(),
        level,
    };
    NodeOptions {
        links: vec![link("primary", 0), link("alternate", 1)],
        links_only: true,
        pace: PaceOptions {
            probe_interval_ms: 100,
            dead_after_ms: 600,
            hold_down_ms: 1000,
            blobs_below_level: 1,
            collection_rules: vec![CollectionRule {
                collection: "imagery".into(),
                below_level: 1,
            }],
            ..Default::default()
        },
        ..opts(dir)
    }
}

/// Whether document `id` arrives among `sub`'s events within 10 s.
fn arrived(sub: u64, id: &str) -> bool {
    loop {
        match next_doc_event(sub, 10_000).unwrap() {
            Some(DocEventRecord::Changed { id: got, .. }) if got == id => return true,
            Some(_) => continue,
            None => return false,
        }
    }
}

/// The next link change among `sub`'s peer events, as (from, to, level).
fn next_link_change(sub: u64) -> (Option<String>, Option<String>, Option<u32>) {
    loop {
        match next_peer_event(sub, 10_000).unwrap() {
            Some(PeerEventRecord::LinkChanged {
                from: Some(from),
                to,
                level,
                ..
            }) => return (Some(from), to, level),
            Some(_) => continue,
            None => panic!("no link change within 10 s"),
        }
    }
}

#[test]
fn links_pace_health_and_silencing_reach_the_sdk() {
    let _g = serial();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node_open(&linked_opts(da.path()), 5000, 0).unwrap();
    let b = node_open(&linked_opts(db.path()), 5000, 0).unwrap();
    let addrs = node_addrs(a).unwrap();
    assert_eq!(addrs.len(), 1, "links only: one link address {addrs:?}");
    let (ea, eb) = (subscribe_peers(a).unwrap(), subscribe_peers(b).unwrap());
    let docs = subscribe_docs(b, "c", None, false).unwrap();
    connect(b, &addrs[0], 5000, 0).unwrap();
    put(a, "c", "d", r#"{"x":1}"#).unwrap();
    assert!(arrived(docs, "d"));
    let a_id = node_id(a).unwrap();
    let links = || {
        peers(b)
            .unwrap()
            .into_iter()
            .find(|p| p.id == a_id)
            .unwrap()
            .links
    };
    // The primary's probes are answered within a few probe intervals.
    let measured = (0..500).any(|_| {
        let l = links();
        l.len() == 2 && l[0].rtt_us.is_some() && l[0].last_answer_ms.is_some() || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            false
        }
    });
    let l = links();
    assert!(measured, "{l:?}");
    assert!(
        l[0].name == "primary" && l[0].in_use && l[0].level == Some(0),
        "{l:?}"
    );
    assert!(
        l[1].name == "alternate" && !l[1].in_use && l[1].level == Some(1),
        "{l:?}"
    );
    assert!(
        l[0].rtt_us.is_some() && l[0].state != LinkState::Dead,
        "{l:?}"
    );

    assert_eq!(
        set_link_silent(a, "nope", true).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    set_link_silent(a, "primary", true).unwrap();
    set_link_silent(b, "primary", true).unwrap();
    let moved = (Some("primary".into()), Some("alternate".into()), Some(1));
    assert_eq!(next_link_change(ea), moved);
    assert_eq!(next_link_change(eb), moved);
    put(a, "c", "e", r#"{"x":2}"#).unwrap();
    assert!(arrived(docs, "e"));
    assert!(links()[0].silent);
    set_link_silent(a, "primary", false).unwrap();
    set_link_silent(b, "primary", false).unwrap();
    let back = (Some("alternate".into()), Some("primary".into()), Some(0));
    assert_eq!(next_link_change(ea), back);
    assert_eq!(next_link_change(eb), back);

    for o in [
        LinkOptions {
            name: "x".into(),
            bind: "nowhere".into(),
            level: 0,
        },
        LinkOptions {
            name: "x".into(),
            bind: "127.0.0.1:0".into(),
            level: 8,
        },
    ] {
        let d = tempfile::tempdir().unwrap();
        let bad = NodeOptions {
            links: vec![o],
            ..opts(d.path())
        };
        assert_eq!(
            node_open(&bad, 5000, 0).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
    {
        let d = tempfile::tempdir().unwrap();
        let mut bad = linked_opts(d.path());
        bad.pace.blobs_below_level = 9;
        assert_eq!(
            node_open(&bad, 5000, 0).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        for (collection, below_level) in [("imagery", 0), ("imagery", 9), ("", 1), ("a\0b", 1)] {
            let mut bad = linked_opts(d.path());
            bad.pace.collection_rules = vec![CollectionRule {
                collection: collection.into(),
                below_level,
            }];
            assert_eq!(
                node_open(&bad, 5000, 0).unwrap_err().code,
                ErrorCode::InvalidArgument,
                "{collection:?} {below_level}"
            );
        }
    }
    for s in [ea, eb, docs] {
        unsubscribe(s).unwrap();
    }
    node_close(a, 5000).unwrap();
    node_close(b, 5000).unwrap();
}

/// A BLE link (`bind` "ble"): on a machine with a Bluetooth adapter the node
/// opens; on one without (this one, CI) the open fails with a `Network`
/// error that names Bluetooth, and nothing is left open.
#[test]
fn a_ble_link_opens_or_says_what_is_missing() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let before = handles::live_handles();
    let o = NodeOptions {
        links: vec![LinkOptions {
            name: "radio".into(),
            bind: "ble".into(),
            level: 0,
        }],
        ..opts(d.path())
    };
    match node_open(&o, 5000, 0) {
        Ok(n) => node_close(n, 5000).unwrap(),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::Network, "{e}");
            assert!(
                e.message.contains("Bluetooth") && e.message.contains("radio"),
                "{e}"
            );
        }
    }
    assert_eq!(handles::live_handles(), before);
    let bad = NodeOptions {
        links: vec![LinkOptions {
            name: "radio".into(),
            bind: "ble:".into(),
            level: 0,
        }],
        ..opts(d.path())
    };
    assert_eq!(
        node_open(&bad, 5000, 0).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
}
