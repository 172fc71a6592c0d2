use std::time::Duration;

use proptest::prelude::*;

use super::*;

#[test]
fn json_form_reads_defaults_and_round_trips() {
    let set = Policies::from_json(
        r#"{"default": {"priority": "low", "tombstone_ttl_secs": 3600},
            "collections": {
              "positions": {"priority": "critical", "sync": "latest_only", "ttl_secs": 600, "max_documents": 5000},
              "tiles": {"priority": "bulk", "sync": "windowed", "window_secs": 60, "max_bytes": 1000000, "eager_blobs": true, "delete": "update_wins"}}}"#,
    )
    .unwrap();
    assert_eq!(set.default_policy().priority, Priority::Low);
    let pos = set.for_collection("positions");
    assert_eq!(pos.priority, Priority::Critical);
    assert_eq!(pos.sync, SyncMode::LatestOnly);
    assert_eq!(pos.ttl, Some(Duration::from_secs(600)));
    // absent fields come from the set's default
    assert_eq!(pos.tombstone_ttl, Duration::from_secs(3600));
    assert_eq!(pos.retention.max_documents, Some(5000));
    let tiles = set.for_collection("tiles");
    assert_eq!(tiles.sync, SyncMode::Windowed(Duration::from_secs(60)));
    assert_eq!(tiles.delete_rule, DeleteRule::UpdateWins);
    assert!(tiles.eager_blobs);
    assert_eq!(set.for_collection("other"), set.default_policy());
    assert_eq!(Policies::from_json(&set.to_json()).unwrap(), set);
    let one = CollectionPolicy::from_json(r#"{"priority":"high"}"#).unwrap();
    assert_eq!(one, CollectionPolicy::default().priority(Priority::High));
    assert_eq!(CollectionPolicy::from_json(&one.to_json()).unwrap(), one);
}

#[test]
fn bad_forms_are_refused_with_the_field_named() {
    for (text, needle) in [
        (r#"{"priority": "urgent"}"#, "priority"),
        (r#"{"sync": "windowed"}"#, "window_secs"),
        (r#"{"sync": "full", "window_secs": 5}"#, "window_secs"),
        (r#"{"sync": "sometimes"}"#, "sync"),
        (r#"{"delete": "both"}"#, "delete"),
        (r#"{"ttl_secs": 0}"#, "ttl"),
        (r#"{"ttl_secs": 18446744073709551615}"#, "ttl"),
        (r#"{"tll_secs": 5}"#, "tll_secs"),
        (r#"[1]"#, "policy"),
    ] {
        let e = CollectionPolicy::from_json(text).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{text}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
    assert!(Policies::from_json(r#"{"collections": {"": {}}}"#).is_err());
    assert!(Policies::from_json(r#"{"colections": {}}"#).is_err());
}

#[test]
fn the_set_is_bounded() {
    let mut set = Policies::default();
    for i in 0..MAX_POLICIES {
        set.set(&format!("c{i}"), CollectionPolicy::default())
            .unwrap();
    }
    let e = set
        .set("one-more", CollectionPolicy::default())
        .unwrap_err();
    assert!(e.to_string().contains("at most 1024"), "{e}");
    // replacing an existing one is fine at the bound
    set.set("c0", CollectionPolicy::default().priority(Priority::Bulk))
        .unwrap();
    assert!(set.remove("c1"));
    assert!(!set.remove("c1"));
    set.set("one-more", CollectionPolicy::default()).unwrap();
}

fn policy() -> impl Strategy<Value = CollectionPolicy> {
    (
        0usize..5,
        0u8..3,
        1u64..100_000,
        proptest::option::of(1u64..1_000_000),
        1u64..1_000_000,
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(p, s, w, ttl, tomb, docs, bytes, eager, upd, keep)| {
            let mut c = CollectionPolicy::default()
                .priority(Priority::ALL[p])
                .sync(match s {
                    0 => SyncMode::Full,
                    1 => SyncMode::LatestOnly,
                    _ => SyncMode::Windowed(Duration::from_secs(w)),
                })
                .tombstone_ttl(Duration::from_secs(tomb))
                .eager_blobs(eager)
                .keep_until_delivered(keep)
                .delete_rule(if upd {
                    DeleteRule::UpdateWins
                } else {
                    DeleteRule::DeleteWins
                });
            c.ttl = ttl.map(Duration::from_secs);
            c.retention = Retention {
                max_documents: docs,
                max_bytes: bytes,
            };
            c
        })
}

proptest! {
    #[test]
    fn any_policy_round_trips_through_json(p in policy()) {
        prop_assert_eq!(CollectionPolicy::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn any_text_is_a_policy_or_a_clear_error(text in ".{0,200}") {
        if let Err(e) = Policies::from_json(&text) {
            prop_assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        }
        if let Err(e) = CollectionPolicy::from_json(&text) {
            prop_assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        }
    }
}
