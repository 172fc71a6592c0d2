//! Node tests that need crate internals.

use super::*;

mod basics {
    use super::*;
    use crate::security::Formation;
    use crate::{Event, PeerEvent};

    /// A raw peer that passes admission and then sends `bytes` as sync traffic.
    async fn misbehave(bytes: &[u8]) -> (Vec<PeerEvent>, u64) {
        let formation = Formation::new("f", [3; 32]);
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(
            NodeConfig::new(dir.path(), formation.clone()).listen("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let events = node.subscribe_peers();
        let (ep, _conn, mut send, _recv) =
            super::test_support::raw_admitted(&node, &formation).await;
        send.write_all(bytes).await.unwrap();
        let mut seen = Vec::new();
        while let Ok(Some(Event::Item(e))) = events.next_timeout(Duration::from_secs(10)).await {
            let done = matches!(e, PeerEvent::Disconnected { .. });
            seen.push(e);
            if done {
                break;
            }
        }
        let count = node.document_count().unwrap();
        node.close(Duration::from_secs(5)).await.unwrap();
        ep.close().await;
        (seen, count)
    }

    fn disconnect_reason(events: &[PeerEvent]) -> String {
        match events.last() {
            Some(PeerEvent::Disconnected { reason, .. }) => reason.clone(),
            other => panic!("expected a disconnect, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_frame_after_admission_closes_and_stores_nothing() {
        let (events, count) = misbehave(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
        assert!(matches!(events[0], PeerEvent::Connected { .. }));
        assert!(
            disconnect_reason(&events).contains("malformed"),
            "{events:?}"
        );
        assert_eq!(count, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_frame_after_admission_closes() {
        let (events, count) = misbehave(&[0x7f, 0xff, 0xff, 0xff, 1]).await;
        assert!(disconnect_reason(&events).contains("exceeds"), "{events:?}");
        assert_eq!(count, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn out_of_order_and_bad_changes_close_and_store_nothing() {
        // an admission frame after admission
        let hello = crate::wire::encode(&crate::wire::Frame::Welcome).unwrap();
        let (events, _) = misbehave(&hello).await;
        assert!(
            disconnect_reason(&events).contains("unexpected"),
            "{events:?}"
        );
        // a Changes frame whose change bytes are garbage
        let bad = crate::wire::encode(&crate::wire::Frame::Changes {
            collection: "c".into(),
            id: "d".into(),
            changes: vec![vec![1, 2, 3]],
            heads: vec![],
        })
        .unwrap();
        let (events, count) = misbehave(&bad).await;
        assert!(
            disconnect_reason(&events).contains("bad change"),
            "{events:?}"
        );
        assert_eq!(count, 0);
    }
}

mod blob_request_tests {
    use super::*;
    use crate::blobs::BlobHash;
    use crate::security::Formation;

    /// Malformed blob requests from an admitted peer get a clear refusal on
    /// their own stream; the connection, the node and good requests carry on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_blob_requests_are_refused_and_harm_nothing() {
        let formation = Formation::new("f", [6; 32]);
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(
            NodeConfig::new(dir.path(), formation.clone()).listen("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let info = node.blobs().add_bytes(data.clone()).await.unwrap();
        let (ep, conn, send, recv) = super::test_support::raw_admitted(&node, &formation).await;

        let garbage: [&[u8]; 4] = [
            &[0, 0, 0, 3, 0xff, 0xff, 0xff], // not a request
            &[0x7f, 0xff, 0xff, 0xff],       // header too large
            &[0, 0, 0, 10, 1, 2],            // cut short
            &[],                             // nothing at all
        ];
        for g in garbage {
            let (mut s, mut r) = crate::transport::router::open_stream(&conn, "blobs", &[1])
                .await
                .unwrap();
            s.write_all(g).await.unwrap();
            s.finish().unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(1 << 20)).await;
            let Ok(got) = got else {
                panic!("provider left a bad request hanging")
            };
            if let Ok(bytes) = got {
                assert!(bytes.is_empty(), "answered garbage with data");
            }
        }
        // A hand-made Get request on a fresh stream; returns the whole reply.
        let get = |ranges: Vec<(u64, u64)>| {
            let conn = conn.clone();
            async move {
                let (mut s, mut r) = crate::transport::router::open_stream(&conn, "blobs", &[1])
                    .await
                    .unwrap();
                let req = postcard::to_allocvec(&crate::blobs::protocol_request_for_tests(
                    info.hash, ranges,
                ))
                .unwrap();
                s.write_all(&(req.len() as u32).to_be_bytes())
                    .await
                    .unwrap();
                s.write_all(&req).await.unwrap();
                s.finish().unwrap();
                r.read_to_end(1 << 20).await.unwrap()
            }
        };
        // Ranges outside the blob are refused with a reason.
        let reply = get(vec![(0, 99)]).await;
        assert!(String::from_utf8_lossy(&reply).contains("past the"));
        // The connection is still admitted and a good request is served.
        let reply = get(vec![(0, 4)]).await;
        assert!(reply.ends_with(&data[..]), "served bytes differ");
        assert_eq!(node.connected_peers(), 1);
        assert!(BlobHash::of(&data) == info.hash);
        node.close(Duration::from_secs(5)).await.unwrap();
        drop((send, recv, conn));
        ep.close().await;
    }
}

mod stuck_peer_tests {
    use super::*;
    use crate::security::Formation;

    /// A peer that is admitted and then never reads must not slow the writer or
    /// the other peers: its live queue is bounded and coalesces.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stuck_peer_does_not_stall_writes_or_other_peers() {
        let formation = Formation::new("f", [4; 32]);
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut cfg =
            NodeConfig::new(da.path(), formation.clone()).listen("127.0.0.1:0".parse().unwrap());
        cfg.peer_queue_capacity = 8;
        let a = Node::open(cfg).await.unwrap();
        let b = Node::open(
            NodeConfig::new(db.path(), formation.clone()).listen("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();

        // the stuck peer: admitted, then reads nothing (its receive window fills)
        let (ep, conn, send, recv) = super::test_support::raw_admitted(&a, &formation).await;

        b.connect(&a.peer_addr()).await.unwrap();
        // b's connect returns once b is admitted; a registers its side just after
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.connected_peers() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(a.connected_peers(), 2);

        let t = Instant::now();
        let pad = "z".repeat(2000);
        for i in 0..1500 {
            a.put(
                "bulk",
                &format!("d{}", i % 50),
                &serde_json::json!({"i": i, "pad": pad}),
            )
            .await
            .unwrap();
        }
        let wrote = t.elapsed();
        let want = a.get("bulk", "d49").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.get("bulk", "d49").unwrap() != want {
            assert!(Instant::now() < deadline, "B fell behind while C was stuck");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(wrote < Duration::from_secs(20), "writes stalled: {wrote:?}");
        // the stuck peer is still connected: nothing was torn down to cope
        assert_eq!(a.connected_peers(), 2);
        a.close(Duration::from_secs(5)).await.unwrap();
        b.close(Duration::from_secs(5)).await.unwrap();
        drop((send, recv, conn));
        ep.close().await;
    }
}
