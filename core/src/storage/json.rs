//! JSON ↔ Automerge: how documents are written from and read as JSON.
//!
//! Written by hand because the mapping is ours to choose: objects become Automerge
//! maps (updated key by key, so concurrent edits of different fields merge),
//! arrays become lists (replaced when they differ), strings are scalar strings
//! (last writer wins), numbers are `Int`, `Uint` or `F64`. Reading also accepts
//! what other Automerge implementations write: text objects read as strings,
//! counters and timestamps as numbers, bytes as arrays of numbers.
//!
//! Limits, the same on every path that builds or walks a document: objects and
//! lists nest at most [`MAX_NESTING`] levels below the root (writing refuses a
//! deeper value; a stored or received document that is deeper is refused by the
//! store), and integers must fit in 64 bits ([`parse_document`] refuses larger
//! ones rather than turning them into floats). Every walk is bounded by the
//! nesting limit, so no document can exhaust a thread's stack.

use automerge::legacy::OpType;
use automerge::transaction::Transactable;
use automerge::{Automerge, Change, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use serde_json::{Map, Number, Value as Json};

use crate::error::{Error, Result};

/// Root key that marks a deleted document (a tombstone that syncs like any edit).
pub(crate) const TOMBSTONE_KEY: &str = "__peat_deleted";

/// Deepest nesting of objects and lists below a document's root object (the
/// root's fields are at depth 1). Chosen below serde_json's own parse limit
/// (128), so every document renders to JSON that every binding can parse back.
pub const MAX_NESTING: usize = 100;

fn too_deep() -> Error {
    Error::InvalidArgument(format!(
        "document nests objects or lists deeper than {MAX_NESTING} levels"
    ))
}

/// Parses a document body from JSON text: an object, at most [`MAX_NESTING`]
/// levels deep, with every integer inside 64 bits (`i64` or `u64`). A larger
/// integer would silently become a float, so it is refused instead.
pub fn parse_document(text: &str) -> Result<Json> {
    check_integer_literals(text)?;
    let v: Json =
        serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("not JSON: {e}")))?;
    check_object(&v)?;
    Ok(v)
}

/// Refuses integer literals (no fraction, no exponent) outside `i64`/`u64`.
/// Written by hand: serde_json reports such numbers only as `f64`, after the
/// digits are gone (its `arbitrary_precision` feature would change number
/// handling for every crate in the build).
fn check_integer_literals(text: &str) -> Result<()> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Skip the string, honouring escapes.
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                let mut integral = true;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    if matches!(b[i], b'.' | b'e' | b'E') {
                        integral = false;
                    }
                    i += 1;
                }
                let lit = &text[start..i];
                if integral && lit.parse::<i64>().is_err() && lit.parse::<u64>().is_err() {
                    return Err(Error::InvalidArgument(format!(
                        "integer {lit} does not fit in 64 bits (store it as a string)"
                    )));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Rejects JSON that cannot be a document body.
pub(crate) fn check_object(value: &Json) -> Result<&Map<String, Json>> {
    let obj = value
        .as_object()
        .ok_or_else(|| Error::InvalidArgument("a document must be a JSON object".into()))?;
    if obj.contains_key(TOMBSTONE_KEY) {
        return Err(Error::InvalidArgument(format!(
            "{TOMBSTONE_KEY} is a reserved key"
        )));
    }
    Ok(obj)
}

fn scalar(v: &Json) -> Option<ScalarValue> {
    Some(match v {
        Json::Null => ScalarValue::Null,
        Json::Bool(b) => ScalarValue::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                ScalarValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                ScalarValue::Uint(u)
            } else {
                ScalarValue::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => ScalarValue::Str(s.as_str().into()),
        Json::Array(_) | Json::Object(_) => return None,
    })
}

/// Makes the map `obj` equal to `value`: sets changed keys, deletes absent ones.
pub(crate) fn put_map<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    value: &Map<String, Json>,
) -> Result<()> {
    put_map_at(tx, obj, value, 0)
}

fn put_map_at<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    value: &Map<String, Json>,
    depth: usize,
) -> Result<()> {
    let existing: Vec<String> = tx.keys(obj).collect();
    for k in existing {
        if !value.contains_key(&k) && k != TOMBSTONE_KEY {
            tx.delete(obj, k.as_str())?;
        }
    }
    if obj == &ROOT && tx.get(obj, TOMBSTONE_KEY)?.is_some() {
        tx.delete(obj, TOMBSTONE_KEY)?;
    }
    for (k, v) in value {
        set_key(tx, obj, k, v, depth + 1)?;
    }
    Ok(())
}

/// Applies an RFC 7386 JSON merge patch to the map `obj`.
pub(crate) fn merge_patch<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    patch: &Map<String, Json>,
) -> Result<()> {
    merge_patch_at(tx, obj, patch, 0)
}

fn merge_patch_at<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    patch: &Map<String, Json>,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_NESTING {
        return Err(too_deep());
    }
    if obj == &ROOT && tx.get(obj, TOMBSTONE_KEY)?.is_some() {
        tx.delete(obj, TOMBSTONE_KEY)?;
    }
    for (k, v) in patch {
        match v {
            Json::Null => {
                if tx.get(obj, k.as_str())?.is_some() {
                    tx.delete(obj, k.as_str())?;
                }
            }
            Json::Object(inner) => {
                let child = match tx.get(obj, k.as_str())? {
                    Some((Value::Object(ObjType::Map), id)) => id,
                    _ => tx.put_object(obj, k.as_str(), ObjType::Map)?,
                };
                merge_patch_at(tx, &child, inner, depth + 1)?;
            }
            other => set_key(tx, obj, k, other, depth + 1)?,
        }
    }
    Ok(())
}

/// Marks the document deleted: clears every key and sets the tombstone.
pub(crate) fn tombstone<T: Transactable>(tx: &mut T) -> Result<()> {
    let keys: Vec<String> = tx.keys(ROOT).collect();
    for k in keys {
        tx.delete(ROOT, k.as_str())?;
    }
    tx.put(ROOT, TOMBSTONE_KEY, true)?;
    Ok(())
}

/// True if the document carries a tombstone.
pub(crate) fn is_tombstoned<R: ReadDoc>(doc: &R) -> bool {
    matches!(doc.get(ROOT, TOMBSTONE_KEY), Ok(Some(_)))
}

fn set_key<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    v: &Json,
    depth: usize,
) -> Result<()> {
    let current = tx.get(obj, key)?;
    match v {
        Json::Object(inner) => {
            if depth > MAX_NESTING {
                return Err(too_deep());
            }
            let child = match current {
                Some((Value::Object(ObjType::Map), id)) => id,
                _ => tx.put_object(obj, key, ObjType::Map)?,
            };
            put_map_at(tx, &child, inner, depth)
        }
        Json::Array(items) => {
            if depth > MAX_NESTING {
                return Err(too_deep());
            }
            if let Some((Value::Object(ObjType::List), id)) = &current {
                if read_list(&*tx, id, depth)
                    .map(|l| &l == items)
                    .unwrap_or(false)
                {
                    return Ok(());
                }
            }
            let list = tx.put_object(obj, key, ObjType::List)?;
            fill_list(tx, &list, items, depth)
        }
        Json::String(s) => match current {
            // Collaborative text (written by another Automerge client): edit it in
            // place so concurrent edits of other parts of the text survive.
            Some((Value::Object(ObjType::Text), id)) => splice_text(tx, &id, s),
            Some((Value::Scalar(cur), _)) if cur.as_str() == Some(s.as_str()) => Ok(()),
            _ => {
                tx.put(obj, key, s.as_str())?;
                Ok(())
            }
        },
        other => {
            let s =
                scalar(other).ok_or_else(|| Error::Internal("non-scalar in scalar path".into()))?;
            if let Some((Value::Scalar(cur), _)) = &current {
                if cur.as_ref() == &s {
                    return Ok(());
                }
            }
            tx.put(obj, key, s)?;
            Ok(())
        }
    }
}

/// Makes the text object `text` read `want` by one splice of the part that
/// differs (common prefix and suffix stay untouched). Positions are Unicode code
/// points, Automerge's default text indexing.
fn splice_text<T: Transactable>(tx: &mut T, text: &ObjId, want: &str) -> Result<()> {
    let have = tx.text(text)?;
    if have == want {
        return Ok(());
    }
    let a: Vec<char> = have.chars().collect();
    let b: Vec<char> = want.chars().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let del = a.len() - prefix - suffix;
    let ins: String = b[prefix..b.len() - suffix].iter().collect();
    tx.splice_text(text, prefix, del as isize, &ins)?;
    Ok(())
}

fn fill_list<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    items: &[Json],
    depth: usize,
) -> Result<()> {
    for (i, item) in items.iter().enumerate() {
        match item {
            Json::Object(m) => {
                if depth >= MAX_NESTING {
                    return Err(too_deep());
                }
                let child = tx.insert_object(list, i, ObjType::Map)?;
                put_map_at(tx, &child, m, depth + 1)?;
            }
            Json::Array(a) => {
                if depth >= MAX_NESTING {
                    return Err(too_deep());
                }
                let child = tx.insert_object(list, i, ObjType::List)?;
                fill_list(tx, &child, a, depth + 1)?;
            }
            other => {
                let s =
                    scalar(other).ok_or_else(|| Error::Internal("non-scalar in list".into()))?;
                tx.insert(list, i, s)?;
            }
        }
    }
    Ok(())
}

/// Reads the whole document as a JSON object (without the tombstone key).
/// A document nested deeper than [`MAX_NESTING`] is an error, never a deep walk.
pub(crate) fn read_doc<R: ReadDoc>(doc: &R) -> Result<Json> {
    read_map(doc, &ROOT, 0)
}

fn read_map<R: ReadDoc>(doc: &R, obj: &ObjId, depth: usize) -> Result<Json> {
    if depth > MAX_NESTING {
        return Err(too_deep_stored());
    }
    let mut out = Map::new();
    for k in doc.keys(obj) {
        if obj == &ROOT && k == TOMBSTONE_KEY {
            continue;
        }
        if let Some((v, id)) = doc.get(obj, k.as_str())? {
            out.insert(k, read_value(doc, v, &id, depth + 1)?);
        }
    }
    Ok(Json::Object(out))
}

fn read_list<R: ReadDoc>(doc: &R, obj: &ObjId, depth: usize) -> Result<Vec<Json>> {
    if depth > MAX_NESTING {
        return Err(too_deep_stored());
    }
    let len = doc.length(obj);
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        if let Some((v, id)) = doc.get(obj, i)? {
            out.push(read_value(doc, v, &id, depth + 1)?);
        }
    }
    Ok(out)
}

fn too_deep_stored() -> Error {
    Error::Corrupt(format!(
        "document nests objects or lists deeper than {MAX_NESTING} levels"
    ))
}

fn read_value<R: ReadDoc>(doc: &R, v: Value<'_>, id: &ObjId, depth: usize) -> Result<Json> {
    Ok(match v {
        Value::Object(ObjType::Map) | Value::Object(ObjType::Table) => read_map(doc, id, depth)?,
        Value::Object(ObjType::List) => Json::Array(read_list(doc, id, depth)?),
        Value::Object(ObjType::Text) => Json::String(doc.text(id)?),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Null | ScalarValue::Unknown { .. } => Json::Null,
            ScalarValue::Boolean(b) => Json::Bool(*b),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Json::from(*i),
            ScalarValue::Uint(u) => Json::from(*u),
            ScalarValue::F64(f) => Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
            ScalarValue::Counter(c) => Json::from(i64::from(c)),
            ScalarValue::Str(s) => Json::String(s.to_string()),
            ScalarValue::Bytes(b) => Json::Array(b.iter().map(|x| Json::from(*x)).collect()),
        },
    })
}

/// Checks the objects that `changes` (just applied to `doc`) created: none may
/// sit deeper than [`MAX_NESTING`]. Costs one decode of each change and a walk
/// up from each new object, bounded by the limit.
pub(crate) fn check_new_objects(doc: &Automerge, changes: &[Change]) -> Result<()> {
    for change in changes {
        let expanded = change.decode();
        let actor = expanded.actor_id.to_hex_string();
        let start = expanded.start_op.get();
        for (i, op) in expanded.operations.iter().enumerate() {
            if !matches!(op.action, OpType::Make(_)) {
                continue;
            }
            let Ok(obj) = doc.import_obj(&format!("{}@{actor}", start + i as u64)) else {
                continue; // an object this document no longer has
            };
            let Ok(parents) = doc.parents(&obj) else {
                continue;
            };
            if parents.take(MAX_NESTING + 1).count() > MAX_NESTING {
                return Err(too_deep());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let v =
            json!({"a": 1, "b": [1, "x", {"c": null}], "d": {"e": true, "f": 1.5}, "g": u64::MAX});
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
}
