//! Blob references inside documents.

use serde_json::{json, Value};

use super::hash::BlobHash;
use super::store::BlobInfo;

/// The key that marks a JSON object as a blob reference.
pub const BLOB_REF_KEY: &str = "$blob";

/// A document's reference to a blob: `{"$blob": "<64 hex>", "size": n}`, with an
/// optional `"name"`. Anywhere in a document, at any depth.
///
/// ```
/// use peat_mesh::blobs::{BlobHash, BlobRef};
/// let r = BlobRef { hash: BlobHash::of(b"tile"), size: 4, name: Some("t.png".into()) };
/// let doc = serde_json::json!({"tiles": [r.to_json()]});
/// assert_eq!(BlobRef::find_all(&doc), vec![r]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// The blob.
    pub hash: BlobHash,
    /// Its size in bytes.
    pub size: u64,
    /// A file name for people.
    pub name: Option<String>,
}

impl BlobRef {
    /// The JSON object to put in a document.
    pub fn to_json(&self) -> Value {
        let mut v = json!({ BLOB_REF_KEY: self.hash.to_hex(), "size": self.size });
        if let Some(n) = &self.name {
            v["name"] = json!(n);
        }
        v
    }

    /// Parses one reference object; `None` if `v` is not one.
    pub fn from_json(v: &Value) -> Option<BlobRef> {
        let o = v.as_object()?;
        let hash = o.get(BLOB_REF_KEY)?.as_str()?.parse().ok()?;
        Some(BlobRef {
            hash,
            size: o.get("size").and_then(Value::as_u64).unwrap_or(0),
            name: o.get("name").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// Every reference in a document, depth first, without duplicates.
    pub fn find_all(doc: &Value) -> Vec<BlobRef> {
        let mut out: Vec<BlobRef> = Vec::new();
        let mut stack = vec![doc];
        while let Some(v) = stack.pop() {
            if let Some(r) = BlobRef::from_json(v) {
                if !out.iter().any(|o| o.hash == r.hash) {
                    out.push(r);
                }
                continue;
            }
            match v {
                Value::Object(o) => stack.extend(o.values().rev()),
                Value::Array(a) => stack.extend(a.iter().rev()),
                _ => {}
            }
        }
        out
    }
}

impl From<&BlobInfo> for BlobRef {
    fn from(i: &BlobInfo) -> Self {
        BlobRef {
            hash: i.hash,
            size: i.size,
            name: None,
        }
    }
}
