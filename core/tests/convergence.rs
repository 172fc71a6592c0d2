//! Property: any sequence of document operations, on any nodes of a connected
//! mesh, in any interleaving, converges to identical documents everywhere.

mod common;

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Put {
        node: usize,
        doc: u8,
        field: u8,
        value: i64,
    },
    Patch {
        node: usize,
        doc: u8,
        field: u8,
        value: i64,
    },
    Delete {
        node: usize,
        doc: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..4u8, 0..3u8, any::<i64>()).prop_map(|(node, doc, field, value)| Op::Put {
            node,
            doc,
            field,
            value
        }),
        (0..3usize, 0..4u8, 0..3u8, any::<i64>()).prop_map(|(node, doc, field, value)| Op::Patch {
            node,
            doc,
            field,
            value
        }),
        (0..3usize, 0..4u8).prop_map(|(node, doc)| Op::Delete { node, doc }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_converge(ops in proptest::collection::vec(op(), 1..40), connect_first in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let nodes = [common::open().await, common::open().await, common::open().await];
            let link = |nodes: &[common::TestNode; 3]| {
                let (a, b, c) = (nodes[0].node.clone(), nodes[1].node.clone(), nodes[2].node.clone());
                async move {
                    b.connect(&a.peer_addr()).await.unwrap();
                    c.connect(&b.peer_addr()).await.unwrap();
                }
            };
            if connect_first {
                link(&nodes).await;
            }
            for op in &ops {
                match *op {
                    Op::Put { node, doc, field, value } => {
                        nodes[node].node.put("p", &format!("d{doc}"), &json!({format!("f{field}"): value})).await.unwrap();
                    }
                    Op::Patch { node, doc, field, value } => {
                        nodes[node].node.merge_patch("p", &format!("d{doc}"), &json!({format!("f{field}"): value})).await.unwrap();
                    }
                    Op::Delete { node, doc } => {
                        nodes[node].node.delete("p", &format!("d{doc}")).await.unwrap();
                    }
                }
            }
            if !connect_first {
                link(&nodes).await;
            }
            let snapshot = |n: &common::TestNode| -> Vec<Option<Vec<u8>>> {
                (0..4).map(|d| n.node.export("p", &format!("d{d}")).unwrap().map(|b| {
                    let doc = peat_mesh::automerge::Automerge::load(&b).unwrap();
                    doc.get_heads().iter().flat_map(|h| h.0).collect()
                })).collect()
            };
            let converged = common::eventually(common::WAIT, || {
                let s0 = snapshot(&nodes[0]);
                s0 == snapshot(&nodes[1]) && s0 == snapshot(&nodes[2])
            }).await;
            assert!(converged, "heads differ: {:?}", nodes.iter().map(snapshot).collect::<Vec<_>>());
            for d in 0..4 {
                let id = format!("d{d}");
                let v = nodes[0].node.get("p", &id).unwrap();
                assert_eq!(v, nodes[1].node.get("p", &id).unwrap());
                assert_eq!(v, nodes[2].node.get("p", &id).unwrap());
            }
            for n in &nodes {
                n.node.close(Duration::from_secs(5)).await.unwrap();
            }
        });
    }
}
