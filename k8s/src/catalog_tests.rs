use super::*;
use proptest::prelude::*;
use serde_json::json;

/// A valid node id per `n` (not every 32 bytes are an Ed25519 point, so
/// the first valid one of a fixed sequence).
fn id(n: u8) -> NodeId {
    (0..=255u8)
        .find_map(|i| {
            let mut b = [0u8; 32];
            b[0] = n;
            b[1] = i;
            NodeId::from_bytes(&b).ok()
        })
        .expect("a valid point among 256 candidates")
}

/// The id's hex form, as a node writes it into its Pod's annotation.
fn iroh_key(n: u8) -> String {
    id(n).to_string()
}

fn slice(name: &str, ports: serde_json::Value, endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": { "name": name },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .expect("a slice")
}

fn ports() -> serde_json::Value {
    // The HTTP port first: discovery must pick the named one.
    json!([
        { "name": "http", "protocol": "TCP", "port": 8080 },
        { "name": "quic", "protocol": "UDP", "port": 4433 },
    ])
}

fn endpoint(ip: &str, pod: &str, ready: Option<bool>) -> serde_json::Value {
    let mut e = json!({
        "addresses": [ip],
        "targetRef": { "kind": "Pod", "name": pod, "namespace": "mesh" },
    });
    if let Some(r) = ready {
        e["conditions"] = json!({ "ready": r });
    }
    e
}

#[test]
fn a_ready_endpoint_with_an_announced_id_is_wanted_at_the_named_port() {
    let mut c = Catalog::new("quic");
    c.apply_slice(&slice(
        "mesh-abc",
        ports(),
        json!([
            endpoint("192.0.2.1", "peat-0", Some(true)),
            endpoint("192.0.2.2", "peat-1", None),
            endpoint("192.0.2.3", "peat-2", Some(false)),
        ]),
    ));
    c.apply_pod("peat-0", Some(&iroh_key(0)));
    c.apply_pod("peat-1", Some(&iroh_key(1)));
    c.apply_pod("peat-2", Some(&iroh_key(2)));
    let w = c.wanted(&id(0));
    let expect: BTreeMap<NodeId, Vec<SocketAddr>> =
        [(id(1), vec!["192.0.2.2:4433".parse().unwrap()])].into();
    assert_eq!(
        w.peers, expect,
        "self and the unready endpoint are left out"
    );
    assert_eq!(
        w.counts,
        Counts {
            slices: 1,
            slices_without_port: 0,
            ready: 2,
            not_ready: 1,
            unidentified: 0,
            over_limit: 0,
        }
    );
}

#[test]
fn readiness_changes_and_deletions_change_the_wanted_set() {
    let mut c = Catalog::new("quic");
    c.apply_pod("peat-1", Some(&iroh_key(1)));
    c.apply_slice(&slice(
        "s",
        ports(),
        json!([endpoint("192.0.2.2", "peat-1", Some(false))]),
    ));
    assert!(c.wanted(&id(0)).peers.is_empty());
    c.apply_slice(&slice(
        "s",
        ports(),
        json!([endpoint("192.0.2.2", "peat-1", Some(true))]),
    ));
    assert_eq!(c.wanted(&id(0)).peers.len(), 1);
    c.delete_pod("peat-1");
    let w = c.wanted(&id(0));
    assert!(w.peers.is_empty());
    assert_eq!(
        w.counts.unidentified, 1,
        "a ready pod without an id is counted"
    );
    c.apply_pod("peat-1", Some(&iroh_key(1)));
    c.delete_slice("s");
    assert!(c.wanted(&id(0)).peers.is_empty());
}

#[test]
fn a_slice_without_a_udp_port_of_the_name_is_not_dialled() {
    let mut c = Catalog::new("quic");
    c.apply_pod("peat-1", Some(&iroh_key(1)));
    for (name, ports) in [
        (
            "tcp",
            json!([{ "name": "quic", "protocol": "TCP", "port": 4433 }]),
        ),
        ("default-proto", json!([{ "name": "quic", "port": 4433 }])),
        (
            "other-name",
            json!([{ "name": "peer", "protocol": "UDP", "port": 4433 }]),
        ),
        ("none", json!(null)),
        (
            "zero",
            json!([{ "name": "quic", "protocol": "UDP", "port": 0 }]),
        ),
        (
            "huge",
            json!([{ "name": "quic", "protocol": "UDP", "port": 70000 }]),
        ),
    ] {
        c.apply_slice(&slice(
            name,
            ports,
            json!([endpoint("192.0.2.2", "peat-1", Some(true))]),
        ));
    }
    let w = c.wanted(&id(0));
    assert!(w.peers.is_empty());
    assert_eq!(w.counts.slices_without_port, 6);
}

#[test]
fn fqdn_slices_bad_addresses_bad_annotations_and_other_kinds_are_skipped() {
    let mut c = Catalog::new("quic");
    let mut s = slice(
        "fqdn",
        ports(),
        json!([endpoint("peat-1.example", "peat-1", Some(true))]),
    );
    s.address_type = "FQDN".into();
    c.apply_slice(&s);
    c.apply_slice(&slice(
        "mixed",
        ports(),
        json!([
            endpoint("not-an-ip", "peat-1", Some(true)),
            { "addresses": ["192.0.2.9"], "targetRef": { "kind": "Node", "name": "peat-1" } },
            endpoint("192.0.2.4", "peat-bad", Some(true)),
        ]),
    ));
    c.apply_pod("peat-1", Some(&iroh_key(1)));
    c.apply_pod("peat-bad", Some("zz-not-hex"));
    let w = c.wanted(&id(0));
    // peat-1 is wanted through the mixed slice but has no usable address.
    assert_eq!(w.peers.get(&id(1)).map(Vec::len), Some(0));
    assert_eq!(w.counts.slices_without_port, 1, "the FQDN slice");
    assert_eq!(
        w.counts.unidentified, 2,
        "the Node ref and the bad annotation"
    );
}

#[test]
fn the_bounds_hold_and_what_is_left_out_is_counted() {
    let mut c = Catalog::new("quic");
    for i in 0..MAX_SLICES + 3 {
        c.apply_slice(&slice(&format!("s{i}"), ports(), json!([])));
    }
    let w = c.wanted(&id(0));
    assert_eq!(w.counts.slices, MAX_SLICES);
    assert_eq!(w.counts.over_limit, 3);
    // A known slice can still be replaced at the bound.
    c.apply_slice(&slice(
        "s0",
        ports(),
        json!([endpoint("192.0.2.2", "peat-1", Some(true))]),
    ));
    assert_eq!(c.wanted(&id(0)).counts.ready, 1);

    let mut c = Catalog::new("quic");
    let many: Vec<_> = (0..MAX_ENDPOINTS_PER_SLICE + 5)
        .map(|i| {
            endpoint(
                &format!("192.0.2.{}", i % 250 + 1),
                &format!("p{i}"),
                Some(true),
            )
        })
        .collect();
    c.apply_slice(&slice("big", ports(), json!(many)));
    assert_eq!(c.wanted(&id(0)).counts.over_limit, 5);

    let mut c = Catalog::new("quic");
    for i in 0..MAX_PODS + 2 {
        c.apply_pod(&format!("p{i}"), None);
    }
    assert_eq!(c.wanted(&id(0)).counts.over_limit, 2);
    c.clear_pods();
    assert_eq!(c.wanted(&id(0)).counts.over_limit, 0);
}

fn arb_endpoint() -> impl Strategy<Value = serde_json::Value> {
    (
        prop_oneof![
            Just("192.0.2.1".to_string()),
            Just("192.0.2.2".to_string()),
            Just("2001:db8::1".to_string()),
            "[ -~]{0,20}",
        ],
        0usize..4,
        proptest::option::of(any::<bool>()),
        proptest::option::of("[A-Za-z]{0,6}"),
    )
        .prop_map(|(ip, pod, ready, kind)| {
            let mut e = endpoint(&ip, &format!("peat-{pod}"), ready);
            if let Some(k) = kind {
                e["targetRef"]["kind"] = json!(k);
            }
            e
        })
}

proptest! {
    /// Whatever the API server sends, the wanted set never holds this node,
    /// an unready endpoint's pod alone, or another port than the named one.
    #[test]
    fn wanted_peers_are_ready_identified_others_at_the_named_port(
        eps in proptest::collection::vec(arb_endpoint(), 0..12),
        port in proptest::option::of(0i64..70_000),
        annotated in proptest::collection::vec(proptest::option::of(0u8..3), 4),
    ) {
        let mut c = Catalog::new("quic");
        let ports = match port {
            Some(p) => json!([{ "name": "quic", "protocol": "UDP", "port": p }]),
            None => json!([]),
        };
        let Ok(s) = serde_json::from_value::<EndpointSlice>(json!({
            "metadata": { "name": "s" }, "addressType": "IPv4", "ports": ports, "endpoints": eps,
        })) else {
            return Ok(()); // k8s-openapi refused it (a port out of i32 range, say)
        };
        c.apply_slice(&s);
        for (i, a) in annotated.iter().enumerate() {
            c.apply_pod(&format!("peat-{i}"), a.map(iroh_key).as_deref());
        }
        let me = id(0);
        let w = c.wanted(&me);
        prop_assert!(!w.peers.contains_key(&me));
        prop_assert!(w.peers.len() <= peat_mesh::MAX_KUBERNETES_PEERS);
        for addrs in w.peers.values() {
            for a in addrs {
                prop_assert_eq!(Some(a.port() as i64), port);
            }
        }
        let counted = w.counts.ready + w.counts.not_ready;
        prop_assert!(counted <= s.endpoints.len());
    }
}
