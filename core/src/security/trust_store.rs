//! What a node keeps of trust across restarts, in `trust.redb` in its data
//! dir: its own certificate chain, the revocations it has learnt (each
//! checked when learnt, with its revoker's chain, so it can be passed on) and,
//! on an enroller, its enrollment tokens (hashes only, so a used token stays
//! used across restarts).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Error, Result};
use crate::trust::{decode_chain, encode_chain, Certificate, RevocationRecord, TokenStore};

const REVOCATIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("revocations");
const MEMBERSHIP: TableDefinition<&str, &[u8]> = TableDefinition::new("membership");
const CHAIN_KEY: &str = "chain";
const TOKENS_KEY: &str = "tokens";

/// The trust database.
pub(crate) struct TrustStore {
    db: Database,
}

/// What the store held at open.
pub(crate) struct Loaded {
    pub chain: Vec<Certificate>,
    pub records: Vec<RevocationRecord>,
    pub tokens: TokenStore,
}

fn db_err(e: impl Into<redb::Error>) -> Error {
    Error::Database(e.into())
}

impl TrustStore {
    /// Opens (or creates) the store and reads it. A record that no longer
    /// decodes is logged and skipped (never a reason not to open).
    pub fn open(dir: &Path) -> Result<(TrustStore, Loaded)> {
        let db = Database::create(dir.join("trust.redb")).map_err(db_err)?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(REVOCATIONS).map_err(db_err)?;
        tx.open_table(MEMBERSHIP).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        let mut loaded = Loaded {
            chain: Vec::new(),
            records: Vec::new(),
            tokens: TokenStore::default(),
        };
        let rx = db.begin_read().map_err(db_err)?;
        let membership = rx.open_table(MEMBERSHIP).map_err(db_err)?;
        if let Some(raw) = membership.get(CHAIN_KEY).map_err(db_err)? {
            match postcard::from_bytes::<Vec<Vec<u8>>>(raw.value())
                .map_err(|e| e.to_string())
                .and_then(|c| decode_chain(&c).map_err(|e| e.to_string()))
            {
                Ok(chain) => loaded.chain = chain,
                Err(e) => {
                    tracing::warn!(error = %e, "stored certificate chain unreadable; ignored")
                }
            }
        }
        if let Some(raw) = membership.get(TOKENS_KEY).map_err(db_err)? {
            match TokenStore::from_bytes(raw.value()) {
                Ok(t) => loaded.tokens = t,
                // Refusing every token is safe; accepting a used one is not.
                Err(e) => {
                    tracing::warn!(error = %e, "stored enrollment tokens unreadable; none kept")
                }
            }
        }
        let revs = rx.open_table(REVOCATIONS).map_err(db_err)?;
        for row in revs.iter().map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            match RevocationRecord::from_bytes(v.value()) {
                Ok(r) => loaded.records.push(r),
                Err(e) => tracing::warn!(error = %e, "stored revocation unreadable; skipped"),
            }
        }
        drop((membership, revs));
        Ok((TrustStore { db }, loaded))
    }

    /// Stores this node's chain (replacing the one before).
    pub fn save_chain(&self, chain: &[Certificate]) -> Result<()> {
        let raw = postcard::to_allocvec(&encode_chain(chain))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let tx = self.db.begin_write().map_err(db_err)?;
        tx.open_table(MEMBERSHIP)
            .map_err(db_err)?
            .insert(CHAIN_KEY, raw.as_slice())
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    /// Stores the enroller's tokens (their hashes and state).
    pub fn save_tokens(&self, tokens: &TokenStore) -> Result<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        tx.open_table(MEMBERSHIP)
            .map_err(db_err)?
            .insert(TOKENS_KEY, tokens.to_bytes().as_slice())
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    /// Stores a checked revocation.
    pub fn save_record(&self, record: &RevocationRecord) -> Result<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        tx.open_table(REVOCATIONS)
            .map_err(db_err)?
            .insert(
                &record.revocation.certificate(),
                record.to_bytes().as_slice(),
            )
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    /// Forgets revocations of certificates that have expired.
    pub fn forget(&self, ids: &[[u8; 32]]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(REVOCATIONS).map_err(db_err)?;
            for id in ids {
                t.remove(id).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }
}
