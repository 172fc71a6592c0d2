//! JSON ↔ Automerge: how documents are written from and read as JSON.
//!
//! Written by hand because the mapping is ours to choose: objects become Automerge
//! maps (updated key by key, so concurrent edits of different fields merge),
//! arrays become lists (replaced when they differ), strings are scalar strings
//! (last writer wins), numbers are `Int`, `Uint` or `F64`. Reading also accepts
//! what other Automerge implementations write: text objects read as strings,
//! counters and timestamps as numbers, bytes as arrays of numbers.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use serde_json::{Map, Number, Value as Json};

use crate::error::{Error, Result};

/// Root key that marks a deleted document (a tombstone that syncs like any edit).
pub(crate) const TOMBSTONE_KEY: &str = "__peat_deleted";

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
        set_key(tx, obj, k, v)?;
    }
    Ok(())
}

/// Applies an RFC 7386 JSON merge patch to the map `obj`.
pub(crate) fn merge_patch<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    patch: &Map<String, Json>,
) -> Result<()> {
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
                merge_patch(tx, &child, inner)?;
            }
            other => set_key(tx, obj, k, other)?,
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

fn set_key<T: Transactable>(tx: &mut T, obj: &ObjId, key: &str, v: &Json) -> Result<()> {
    let current = tx.get(obj, key)?;
    match v {
        Json::Object(inner) => {
            let child = match current {
                Some((Value::Object(ObjType::Map), id)) => id,
                _ => tx.put_object(obj, key, ObjType::Map)?,
            };
            put_map(tx, &child, inner)
        }
        Json::Array(items) => {
            if let Some((Value::Object(ObjType::List), id)) = &current {
                if &read_list(&*tx, id)? == items {
                    return Ok(());
                }
            }
            let list = tx.put_object(obj, key, ObjType::List)?;
            fill_list(tx, &list, items)
        }
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

fn fill_list<T: Transactable>(tx: &mut T, list: &ObjId, items: &[Json]) -> Result<()> {
    for (i, item) in items.iter().enumerate() {
        match item {
            Json::Object(m) => {
                let child = tx.insert_object(list, i, ObjType::Map)?;
                put_map(tx, &child, m)?;
            }
            Json::Array(a) => {
                let child = tx.insert_object(list, i, ObjType::List)?;
                fill_list(tx, &child, a)?;
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
pub(crate) fn read_doc<R: ReadDoc>(doc: &R) -> Result<Json> {
    read_map(doc, &ROOT)
}

fn read_map<R: ReadDoc>(doc: &R, obj: &ObjId) -> Result<Json> {
    let mut out = Map::new();
    for k in doc.keys(obj) {
        if obj == &ROOT && k == TOMBSTONE_KEY {
            continue;
        }
        if let Some((v, id)) = doc.get(obj, k.as_str())? {
            out.insert(k, read_value(doc, v, &id)?);
        }
    }
    Ok(Json::Object(out))
}

fn read_list<R: ReadDoc>(doc: &R, obj: &ObjId) -> Result<Vec<Json>> {
    let len = doc.length(obj);
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        if let Some((v, id)) = doc.get(obj, i)? {
            out.push(read_value(doc, v, &id)?);
        }
    }
    Ok(out)
}

fn read_value<R: ReadDoc>(doc: &R, v: Value<'_>, id: &ObjId) -> Result<Json> {
    Ok(match v {
        Value::Object(ObjType::Map) | Value::Object(ObjType::Table) => read_map(doc, id)?,
        Value::Object(ObjType::List) => Json::Array(read_list(doc, id)?),
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
