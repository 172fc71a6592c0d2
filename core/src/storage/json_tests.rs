//! Tests of `json.rs`.

use super::*;
use automerge::Automerge;
use proptest::prelude::*;
use serde_json::json;

fn put(doc: &mut Automerge, v: &Json) {
    doc.transact::<_, _, Error>(|tx| put_map(tx, &ROOT, check_object(v)?))
        .unwrap();
}

#[test]
fn put_then_read_round_trips() {
    let mut doc = Automerge::new();
    let v = json!({"a": 1, "b": [1, "x", {"c": null}], "d": {"e": true, "f": 1.5}, "g": u64::MAX});
    put(&mut doc, &v);
    assert_eq!(read_doc(&doc).unwrap(), v);
    let v2 = json!({"a": 2, "d": {"e": false}});
    put(&mut doc, &v2);
    assert_eq!(read_doc(&doc).unwrap(), v2);
}

#[test]
fn merge_patch_follows_rfc7386() {
    let mut doc = Automerge::new();
    put(&mut doc, &json!({"a": "b", "c": {"d": "e", "f": "g"}}));
    let patch = json!({"a": "z", "c": {"f": null}, "n": [1]});
    doc.transact::<_, _, Error>(|tx| merge_patch(tx, &ROOT, patch.as_object().unwrap()))
        .unwrap();
    assert_eq!(
        read_doc(&doc).unwrap(),
        json!({"a": "z", "c": {"d": "e"}, "n": [1]})
    );
}

#[test]
fn tombstone_hides_content_and_put_revives() {
    let mut doc = Automerge::new();
    put(&mut doc, &json!({"a": 1}));
    doc.transact::<_, _, Error>(|tx| tombstone(tx)).unwrap();
    assert!(is_tombstoned(&doc));
    assert_eq!(read_doc(&doc).unwrap(), json!({}));
    put(&mut doc, &json!({"b": 2}));
    assert!(!is_tombstoned(&doc));
    assert_eq!(read_doc(&doc).unwrap(), json!({"b": 2}));
}

fn nested(depth: usize) -> Json {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!({ "n": v });
    }
    v
}

#[test]
fn nesting_is_capped_when_writing() {
    let mut doc = Automerge::new();
    // the root plus MAX_NESTING levels of objects is accepted
    let ok = nested(MAX_NESTING + 1);
    put(&mut doc, &ok);
    assert_eq!(read_doc(&doc).unwrap(), ok);
    // one more level is refused, by put and by merge_patch, built in Rust
    // (no parser limit in front of it)
    let deep = nested(1000);
    let err = doc
        .transact::<_, _, Error>(|tx| put_map(tx, &ROOT, deep.as_object().unwrap()))
        .unwrap_err()
        .error;
    assert!(err.to_string().contains("deeper than"), "{err}");
    let err = doc
        .transact::<_, _, Error>(|tx| merge_patch(tx, &ROOT, deep.as_object().unwrap()))
        .unwrap_err()
        .error;
    assert!(err.to_string().contains("deeper than"), "{err}");
    let list = json!({ "l": (0..MAX_NESTING + 1).fold(json!(1), |v, _| json!([v])) });
    let err = doc
        .transact::<_, _, Error>(|tx| put_map(tx, &ROOT, list.as_object().unwrap()))
        .unwrap_err()
        .error;
    assert!(err.to_string().contains("deeper than"), "{err}");
    drop(deep);
}

#[test]
fn reading_a_document_deeper_than_the_cap_is_an_error_not_a_crash() {
    // built with Automerge directly, as another implementation could
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        let mut obj = ROOT;
        for _ in 0..3000 {
            obj = tx.put_object(&obj, "n", ObjType::Map)?;
        }
        Ok(())
    })
    .unwrap();
    let err = read_doc(&doc).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
    // and the store's check finds it among the changes that made it
    let changes = doc.get_changes(&[]);
    assert!(check_new_objects(&doc, &changes).is_err());
    let mut shallow = Automerge::new();
    put(&mut shallow, &nested(10));
    assert!(check_new_objects(&shallow, &shallow.get_changes(&[])).is_ok());
}

#[test]
fn integers_outside_64_bits_are_refused_not_rounded() {
    for text in [
        r#"{"n": 18446744073709551617}"#,
        r#"{"a": [1, -9223372036854775809]}"#,
        r#"{"deep": {"x": 100000000000000000000000}}"#,
    ] {
        let err = parse_document(text).unwrap_err();
        assert!(err.to_string().contains("64 bits"), "{text}: {err}");
    }
    for text in [
        r#"{"n": 18446744073709551615, "m": -9223372036854775808}"#,
        r#"{"f": 1.8446744073709552e19, "g": 1e400, "s": "123456789012345678901234567890"}"#,
        r#"{"esc": "a\"99999999999999999999999\"b"}"#,
    ] {
        // floats and digits inside strings are not integers
        let r = parse_document(text);
        assert!(
            r.is_ok() || !r.unwrap_err().to_string().contains("64 bits"),
            "{text}"
        );
    }
    assert_eq!(
        parse_document(r#"{"n": 18446744073709551615}"#).unwrap()["n"],
        json!(u64::MAX)
    );
    assert!(parse_document("[1]").is_err());
    assert!(parse_document(&format!("{}{}", "{\"a\":".repeat(200), "1")).is_err());
}

#[test]
fn put_keeps_collaborative_text_and_splices_changes_into_it() {
    // a document whose "notes" field is Automerge Text (as a JS client writes it)
    let mut a = Automerge::new();
    a.transact::<_, _, automerge::AutomergeError>(|tx| {
        let t = tx.put_object(ROOT, "notes", ObjType::Text)?;
        tx.splice_text(&t, 0, 0, "hello wörld")?;
        tx.put(ROOT, "n", 1i64)?;
        Ok(())
    })
    .unwrap();
    let mut b = a.fork();
    // a concurrent edit of the text elsewhere
    b.transact::<_, _, automerge::AutomergeError>(|tx| {
        let (_, t) = tx.get(ROOT, "notes")?.unwrap();
        tx.splice_text(&t, 0, 0, ">> ")?;
        Ok(())
    })
    .unwrap();
    // a put with the same text leaves the text object alone...
    put(&mut a, &json!({"notes": "hello wörld", "n": 2}));
    assert!(matches!(
        a.get(ROOT, "notes").unwrap().unwrap().0,
        Value::Object(ObjType::Text)
    ));
    // ...and a put with changed text splices only the difference
    put(&mut a, &json!({"notes": "hello wörld!", "n": 2}));
    a.merge(&mut b).unwrap();
    assert_eq!(read_doc(&a).unwrap()["notes"], json!(">> hello wörld!"));
}

#[test]
fn reserved_and_non_objects_rejected() {
    assert!(check_object(&json!([1])).is_err());
    assert!(check_object(&json!({TOMBSTONE_KEY: 1})).is_err());
}

fn arb_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        "[a-z]{0,8}".prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            proptest::collection::btree_map("[a-e]", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_object_round_trips(m in proptest::collection::btree_map("[a-z]{1,4}", arb_json(), 0..6)) {
        let v = Json::Object(m.into_iter().collect());
        let mut doc = Automerge::new();
        put(&mut doc, &v);
        prop_assert_eq!(read_doc(&doc).unwrap(), v.clone());
        // saved and reloaded bytes read the same
        let reloaded = Automerge::load(&doc.save()).unwrap();
        prop_assert_eq!(read_doc(&reloaded).unwrap(), v);
    }
}
