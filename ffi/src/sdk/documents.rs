//! Documents: JSON writes (durable on return), reads, listing, and raw
//! Automerge bytes in and out.

use peat_mesh::ListOptions;

use super::args::{check_doc, check_name, parse_json};
use crate::error::{SdkError, SdkResult};
use crate::handles;
use crate::records::CollectionRecord;
use crate::runtime;

/// Writes a document (a JSON object). Returns once durable.
pub fn put(node: u64, collection: &str, id: &str, json: &str) -> SdkResult<()> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    let v = parse_json(json)?;
    let (c, i) = (collection.to_string(), id.to_string());
    runtime::block_on(async move { n.put(&c, &i, &v).await.map_err(SdkError::from) })?
}

/// Applies an RFC 7386 JSON merge patch. Returns once durable.
pub fn merge_patch(node: u64, collection: &str, id: &str, json: &str) -> SdkResult<()> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    let v = parse_json(json)?;
    let (c, i) = (collection.to_string(), id.to_string());
    runtime::block_on(async move { n.merge_patch(&c, &i, &v).await.map_err(SdkError::from) })?
}

/// A document as JSON text, or `None`.
pub fn get(node: u64, collection: &str, id: &str) -> SdkResult<Option<String>> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    Ok(n.get_json(collection, id)?.map(|v| v.to_string()))
}

/// Deletes a document; false if there was none.
pub fn delete(node: u64, collection: &str, id: &str) -> SdkResult<bool> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    let (c, i) = (collection.to_string(), id.to_string());
    runtime::block_on(async move { n.delete(&c, &i).await.map_err(SdkError::from) })?
}

/// One page of ids: (ids, cursor for the next page).
pub fn list(
    node: u64,
    collection: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> SdkResult<(Vec<String>, Option<String>)> {
    let n = handles::node(node)?;
    check_doc(collection, None)?;
    check_name("id prefix", prefix)?;
    after.map_or(Ok(()), |a| check_name("cursor", a))?;
    let page = n.list(
        collection,
        &ListOptions {
            prefix: prefix.to_string(),
            after: after.map(str::to_string),
            limit,
        },
    )?;
    Ok((page.ids, page.next))
}

/// Raw Automerge bytes of a document.
pub fn export(node: u64, collection: &str, id: &str) -> SdkResult<Option<Vec<u8>>> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    Ok(n.export(collection, id)?)
}

/// Merges raw Automerge bytes into a document.
pub fn import(node: u64, collection: &str, id: &str, bytes: &[u8]) -> SdkResult<()> {
    let n = handles::node(node)?;
    check_doc(collection, Some(id))?;
    let (c, i, b) = (collection.to_string(), id.to_string(), bytes.to_vec());
    runtime::block_on(async move { n.import(&c, &i, &b).await.map_err(SdkError::from) })?
}

/// Collections holding live documents, in name order, with their counts: at
/// most `limit` (1 to 1,024), after `after` (the last name of the previous
/// page). Walks the documents of the collections it returns.
pub fn collections(
    node: u64,
    after: Option<&str>,
    limit: usize,
) -> SdkResult<Vec<CollectionRecord>> {
    let n = handles::node(node)?;
    after.map_or(Ok(()), |a| check_name("cursor", a))?;
    Ok(n.collections(after, limit)?
        .into_iter()
        .map(CollectionRecord::from)
        .collect())
}
