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
#[path = "json_tests.rs"]
mod tests;
