//! The membership gate: what admission checks beyond the formation secret,
//! and the revocations a node knows.
//!
//! A node without trust settings has a gate in [`AdmissionMode::Secret`]
//! that checks nothing more. With [`TrustConfig`] the gate holds the
//! formation's genesis, this node's certificate chain and the checked
//! revocations (persisted in `trust.redb`, at most
//! [`crate::trust::MAX_REVOCATIONS`]); it judges a peer's chain at admission
//! and tells the revocation protocol and the enforcer what it learns.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::broadcast;

use super::enrollment::{DeviceState, Enrollment};
use super::trust_store::TrustStore;
use super::{Formation, NodeId};
use crate::clock::unix_ms;
use crate::error::{Error, Result};
use crate::locks::{LockExt, RwLockExt};
use crate::trust::{
    decode_chain, encode_chain, validate_chain, AdmissionMode, Certificate, EnrollmentToken,
    Genesis, MembershipStatus, Permissions, RevocationRecord, Revocations, Tier, TrustConfig,
    TrustError, Verified,
};

/// What a peer's chain said at admission.
#[derive(Debug, Clone)]
pub(crate) struct PeerMembership {
    pub verified: Verified,
    pub chain: Vec<Certificate>,
}

/// A revocation the node just learnt, and from whom (`None`: this node).
#[derive(Clone)]
pub(crate) struct News {
    pub record: Arc<RevocationRecord>,
    pub from: Option<NodeId>,
}

/// Revocations learnt and not yet passed on by a slow listener before it
/// lags (a lagging listener passes on everything it holds instead).
const NEWS_CAPACITY: usize = 1024;

#[derive(Default)]
struct Known {
    list: Revocations,
    /// Each record and the peer it came from first (`None`: this node).
    records: HashMap<[u8; 32], (Arc<RevocationRecord>, Option<NodeId>)>,
}

/// See the module docs.
pub(crate) struct Gate {
    mode: AdmissionMode,
    genesis: Option<Genesis>,
    me: NodeId,
    chain: RwLock<Vec<Certificate>>,
    known: Mutex<Known>,
    /// Taken at close (the database file is released with the node).
    store: Mutex<Option<Arc<TrustStore>>>,
    news: broadcast::Sender<News>,
    /// Revocations from peers that did not check out.
    refused: AtomicU64,
    /// Enrollment, both roles (none without trust settings).
    enrollment: Option<Enrollment>,
}

fn trust_err(e: TrustError) -> Error {
    Error::InvalidArgument(e.to_string())
}

impl Gate {
    /// A gate that checks the secret only.
    pub fn secret_only(me: NodeId) -> Gate {
        Gate {
            mode: AdmissionMode::Secret,
            genesis: None,
            me,
            chain: RwLock::new(Vec::new()),
            known: Mutex::new(Known::default()),
            store: Mutex::new(None),
            news: broadcast::channel(1).0,
            refused: AtomicU64::new(0),
            enrollment: None,
        }
    }

    /// The gate of a node with `config` (blocking: reads `trust.redb`).
    /// Refuses a genesis of another formation and a chain that does not
    /// certify this node or does not lead to the authority; a chain that is
    /// only out of its validity window is kept (peers will say so).
    pub fn open(
        key: &iroh::SecretKey,
        formation: &Formation,
        config: Option<&TrustConfig>,
        dir: &Path,
    ) -> Result<Gate> {
        let me = NodeId(key.public());
        let Some(config) = config else {
            return Ok(Gate::secret_only(me));
        };
        if config.genesis.formation != formation.id() {
            return Err(Error::InvalidArgument(format!(
                "the genesis is of formation {:?}, the node's is {:?}",
                config.genesis.formation,
                formation.id()
            )));
        }
        let (store, loaded) = TrustStore::open(dir)?;
        let chain = if config.chain.is_empty() {
            // A stored chain that no longer fits (the key was rotated, the
            // genesis changed) is dropped: the node needs a new certificate.
            match check_own_chain(&config.genesis, &me, &loaded.chain) {
                Ok(()) => loaded.chain,
                Err(e) => {
                    tracing::warn!(error = %e, "the stored certificate chain does not fit this node any more; dropped");
                    store.save_chain(&[])?;
                    Vec::new()
                }
            }
        } else {
            check_own_chain(&config.genesis, &me, &config.chain)?;
            store.save_chain(&config.chain)?;
            config.chain.clone()
        };
        let now = unix_ms();
        let mut known = Known::default();
        for r in loaded.records {
            let id = r.revocation.certificate();
            match known.list.insert(r.revocation.clone(), now) {
                Ok(_) => {
                    known.records.insert(id, (Arc::new(r), None));
                }
                Err(e) => tracing::warn!(error = %e, "stored revocation not loaded"),
            }
        }
        Ok(Gate {
            mode: config.mode,
            genesis: Some(config.genesis.clone()),
            me,
            chain: RwLock::new(chain),
            known: Mutex::new(known),
            store: Mutex::new(Some(Arc::new(store))),
            news: broadcast::channel(NEWS_CAPACITY).0,
            refused: AtomicU64::new(0),
            enrollment: Some(Enrollment::new(key.clone(), loaded.tokens)),
        })
    }

    fn store(&self) -> Option<Arc<TrustStore>> {
        self.store.locked().clone()
    }

    /// Releases the database (at node close; what is learnt afterwards is
    /// kept in memory only).
    pub fn close(&self) {
        self.store.locked().take();
    }

    /// What admission asks of peers.
    pub fn mode(&self) -> AdmissionMode {
        self.mode
    }

    /// The formation's genesis (none without trust settings).
    pub fn genesis(&self) -> Option<&Genesis> {
        self.genesis.as_ref()
    }

    /// This node's chain.
    pub fn chain(&self) -> Vec<Certificate> {
        self.chain.read_locked().clone()
    }

    /// This node's chain as admission sends it.
    pub fn chain_bytes(&self) -> Vec<Vec<u8>> {
        encode_chain(&self.chain.read_locked())
    }

    #[cfg(test)]
    pub fn chain_for_tests(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Certificate>> {
        self.chain.write_locked()
    }

    /// Replaces this node's chain (checked as at open) and stores it.
    pub fn set_chain(&self, chain: Vec<Certificate>) -> Result<()> {
        let (Some(g), Some(store)) = (&self.genesis, self.store()) else {
            return Err(Error::InvalidArgument(
                "the node has no trust settings (open it with a genesis)".into(),
            ));
        };
        check_own_chain(g, &self.me, &chain)?;
        store.save_chain(&chain)?;
        *self.chain.write_locked() = chain;
        Ok(())
    }

    /// Judges the chain `peer` presented: it must certify `peer`'s key (as
    /// authenticated by QUIC), lead to the authority, be in its validity
    /// window and not be revoked. The error is the refusal's reason.
    pub fn check_peer(
        &self,
        peer: &NodeId,
        raw: &[Vec<u8>],
    ) -> std::result::Result<PeerMembership, String> {
        let Some(genesis) = &self.genesis else {
            return Err("this node has no genesis to check certificates against".into());
        };
        let chain = decode_chain(raw).map_err(|e| e.to_string())?;
        let verified = validate_chain(genesis, &chain, unix_ms()).map_err(|e| e.to_string())?;
        if verified.subject != *peer {
            return Err("the certificate is for another key than the peer's".into());
        }
        let m = PeerMembership { verified, chain };
        match self.revoked(&m) {
            Some(reason) => Err(reason),
            None => Ok(m),
        }
    }

    /// Why a peer admitted with `m` may no longer stay: its chain revoked,
    /// or expired (past the clock skew).
    pub fn revoked(&self, m: &PeerMembership) -> Option<String> {
        if let Some(r) = self.known.locked().list.revoking(&m.verified, &m.chain) {
            return Some(format!(
                "certificate revoked (at {} Unix ms)",
                r.revoked_at_ms()
            ));
        }
        let genesis = self.genesis.as_ref()?;
        validate_chain(genesis, &m.chain, unix_ms())
            .err()
            .map(|e| e.to_string())
    }

    /// Where this node stands.
    pub fn status(&self) -> MembershipStatus {
        let Some(genesis) = &self.genesis else {
            return MembershipStatus::SecretOnly;
        };
        let chain = self.chain();
        if chain.is_empty() {
            return match self.enrollment.as_ref().map(|e| e.state.locked().clone()) {
                Some(DeviceState::Pending(..)) => MembershipStatus::Pending,
                Some(DeviceState::Denied(reason)) => MembershipStatus::Denied { reason },
                _ => MembershipStatus::NoCertificate,
            };
        }
        match validate_chain(genesis, &chain, unix_ms()) {
            Ok(v) => match self.known.locked().list.revoking(&v, &chain) {
                Some(r) => MembershipStatus::Revoked {
                    revoked_at_ms: r.revoked_at_ms(),
                },
                None => MembershipStatus::Valid(v),
            },
            Err(e) => MembershipStatus::Invalid {
                reason: e.to_string(),
            },
        }
    }

    fn enrollment(&self) -> Result<(&Genesis, &Enrollment)> {
        match (&self.genesis, &self.enrollment) {
            (Some(g), Some(e)) => Ok((g, e)),
            _ => Err(Error::InvalidArgument(
                "the node has no trust settings (open it with a genesis)".into(),
            )),
        }
    }

    /// A one-time enrollment token for `tier` and `permissions`, redeemable
    /// for `ttl`, kept (hashed) across restarts.
    pub fn create_token(
        &self,
        tier: Tier,
        permissions: Permissions,
        ttl: std::time::Duration,
    ) -> Result<EnrollmentToken> {
        let (g, e) = self.enrollment()?;
        let token = e
            .create_token(g, &self.chain(), tier, permissions, ttl)
            .map_err(Error::InvalidArgument)?;
        if let Some(store) = self.store() {
            store.save_tokens(&e.tokens.locked())?;
        }
        Ok(token)
    }

    /// Sends `token` with this node's next admission with `enroller`.
    pub fn start_enrollment(&self, token: EnrollmentToken, enroller: NodeId) -> Result<()> {
        let (_, e) = self.enrollment()?;
        if !self.mode.certificates() {
            return Err(Error::InvalidArgument(
                "enrollment needs admission by certificate (mode certificate or both)".into(),
            ));
        }
        *e.state.locked() = DeviceState::Pending(token, enroller);
        Ok(())
    }

    /// Records why the enroller refused (or could not be reached).
    pub fn enrollment_failed(&self, reason: String) {
        if let Some(e) = &self.enrollment {
            let mut s = e.state.locked();
            if matches!(*s, DeviceState::Pending(..)) {
                *s = DeviceState::Denied(reason);
            }
        }
    }

    /// The request admission sends to `peer` in place of a chain, when
    /// enrolling with it.
    pub fn enrollment_request(&self, peer: &NodeId) -> Option<Vec<u8>> {
        let (g, e) = self.enrollment().ok()?;
        e.request(&g.formation, peer)
    }

    /// Answers a peer's enrollment request with its chain (as admission
    /// sends it), or the reason it is refused.
    pub fn answer_enrollment(
        &self,
        peer: &NodeId,
        request: &[u8],
    ) -> std::result::Result<Vec<Vec<u8>>, String> {
        let (g, e) = self.enrollment().map_err(|e| e.to_string())?;
        let store = self.store();
        let chain = e.answer(g, &self.chain(), peer, request, |tokens| match &store {
            Some(s) => s.save_tokens(tokens),
            None => Ok(()),
        })?;
        tracing::info!(peer = %peer.short(), "enrolled a device");
        Ok(encode_chain(&chain))
    }

    /// Keeps the chain an enroller answered with (checked as at open).
    pub fn accept_enrolled(&self, raw: &[Vec<u8>]) -> std::result::Result<(), String> {
        let chain = decode_chain(raw).map_err(|e| e.to_string())?;
        self.set_chain(chain).map_err(|e| e.to_string())?;
        if let Some(e) = &self.enrollment {
            *e.state.locked() = DeviceState::Idle;
        }
        tracing::info!("enrolled: certificate chain received and stored");
        Ok(())
    }

    /// Checks and keeps a revocation; true if it is new (then stored and
    /// announced to the revocation protocol and the enforcer).
    pub async fn learn(&self, record: RevocationRecord, from: Option<NodeId>) -> Result<bool> {
        let Some(genesis) = &self.genesis else {
            return Err(Error::InvalidArgument(
                "the node has no trust settings (open it with a genesis)".into(),
            ));
        };
        let now = unix_ms();
        if let Err(e) = record.check(genesis, now) {
            if from.is_some() {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            return Err(trust_err(e));
        }
        let id = record.revocation.certificate();
        let record = Arc::new(record);
        {
            let mut k = self.known.locked();
            if !k
                .list
                .insert(record.revocation.clone(), now)
                .map_err(trust_err)?
            {
                return Ok(false);
            }
            k.records.insert(id, (record.clone(), from));
        }
        if let Some(store) = self.store() {
            let r = record.clone();
            let saved = tokio::task::spawn_blocking(move || store.save_record(&r))
                .await
                .map_err(|e| Error::Internal(e.to_string()))
                .and_then(|r| r);
            // Kept and enforced in memory even if the disk refused it.
            if let Err(e) = saved {
                tracing::warn!(error = %e, "revocation not stored (kept in memory)");
            }
        }
        tracing::info!(certificate = %crate::hex::hex(&id[..8]), "revocation learnt");
        let _ = self.news.send(News { record, from });
        Ok(true)
    }

    /// Forgets revocations of certificates that have expired anyway.
    pub fn forget_expired(&self) {
        let now = unix_ms();
        let gone: Vec<[u8; 32]> = {
            let mut k = self.known.locked();
            k.list.forget_expired(now);
            let Known { list, records } = &mut *k;
            let gone = records
                .keys()
                .filter(|id| !list.contains(id))
                .copied()
                .collect::<Vec<_>>();
            for id in &gone {
                records.remove(id);
            }
            gone
        };
        if let Some(store) = self.store() {
            if let Err(e) = store.forget(&gone) {
                tracing::warn!(error = %e, "expired revocations not forgotten on disk");
            }
        }
    }

    /// Ids of the certificates whose revocations this node holds.
    pub fn revoked_ids(&self) -> Vec<[u8; 32]> {
        self.known.locked().records.keys().copied().collect()
    }

    /// The revocation of certificate `id`, if held, and the peer it came
    /// from first.
    pub fn record(&self, id: &[u8; 32]) -> Option<(Arc<RevocationRecord>, Option<NodeId>)> {
        self.known.locked().records.get(id).cloned()
    }

    /// Revocations held.
    pub fn revocation_count(&self) -> usize {
        self.known.locked().records.len()
    }

    /// Counts a revocation from a peer that did not decode.
    pub fn note_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Revocations from peers that did not check out, since open.
    pub fn refused_revocations(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// What this node learns from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<News> {
        self.news.subscribe()
    }
}

/// A node's own chain must certify its key and lead to the authority (being
/// out of its window is only logged: the node may still open its data).
fn check_own_chain(genesis: &Genesis, me: &NodeId, chain: &[Certificate]) -> Result<()> {
    if chain.is_empty() {
        return Ok(());
    }
    match validate_chain(genesis, chain, unix_ms()) {
        Ok(v) if v.subject != *me => Err(Error::InvalidArgument(
            "the certificate chain is for another node's key".into(),
        )),
        Ok(_) => Ok(()),
        Err(e @ (TrustError::Expired { .. } | TrustError::NotYetValid { .. })) => {
            tracing::warn!(error = %e, "this node's certificate is outside its validity window");
            Ok(())
        }
        Err(e) => Err(Error::InvalidArgument(format!(
            "this node's certificate chain: {e}"
        ))),
    }
}
