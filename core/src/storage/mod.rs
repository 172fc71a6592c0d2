//! Durable document storage: Automerge documents persisted in redb.
//!
//! Each document is stored as a compressed Automerge snapshot plus the changes made
//! since it (one row per commit). Once there are at least [`COMPACT_AFTER`] rows
//! and they hold as many bytes as the snapshot, the document is re-saved as one
//! snapshot and the rows are dropped. So a load reads at most about twice the
//! snapshot's size, and the cost of saving is amortised to a constant per byte. Automerge keeps the full
//! change history (it is what lets any two replicas merge), compressed in the
//! snapshot's columnar format; history is never truncated.
//!
//! Writes are group-committed by one writer thread: every commit is durable
//! (`redb::Durability::Immediate`) before the write is acknowledged, and all writes
//! waiting at that moment share the commit.

mod changes;
mod chunks;
mod deletes;
mod json;
mod key;
mod latest;
mod maintenance;
mod meta;
mod purge;
mod queries;
mod reads;
mod ready;
mod signatures;
mod store;
mod writer;

pub(crate) use changes::{
    changes_since_hashed, heads_to_wire, parse_changes, unknown_hashes, version_id,
};
pub(crate) use chunks::check_automerge_bytes;
pub(crate) use deletes::{edited_concurrently_with_delete, lift_tombstone};
pub(crate) use json::{check_object, is_tombstoned, merge_patch, put_map, read_doc, tombstone};
pub use json::{parse_document, MAX_NESTING};
pub(crate) use key::check_collection;
pub use key::DocKey;
pub(crate) use latest::{base_time, compacted, judge, next_write_time, Incoming};
pub(crate) use meta::Meta;

pub(crate) use ready::causally_ready;
pub(crate) use signatures::SigRow;
pub use store::ListPage;
pub(crate) use store::{Committed, Store, StoreOptions};
