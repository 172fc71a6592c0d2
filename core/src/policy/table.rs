//! The node's policy set: a default and at most [`MAX_POLICIES`] per-collection
//! policies; and the live table the node's parts read it from.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{CollectionPolicy, MAX_POLICIES};
use crate::error::{Error, Result};
use crate::locks::RwLockExt;
use crate::storage::DocKey;

/// A default policy and per-collection ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    default: CollectionPolicy,
    rules: BTreeMap<String, CollectionPolicy>,
}

impl Policies {
    /// A set with only a default policy (applies to every collection).
    pub fn new(default: CollectionPolicy) -> Policies {
        Policies {
            default,
            rules: BTreeMap::new(),
        }
    }

    /// The policy of `collection`: its own, or the default.
    pub fn for_collection(&self, collection: &str) -> &CollectionPolicy {
        self.rules.get(collection).unwrap_or(&self.default)
    }

    /// The default policy.
    pub fn default_policy(&self) -> &CollectionPolicy {
        &self.default
    }

    /// Sets the default policy.
    pub fn set_default(&mut self, policy: CollectionPolicy) -> Result<()> {
        policy.check()?;
        self.default = policy;
        Ok(())
    }

    /// Sets `collection`'s policy. Refused past [`MAX_POLICIES`] collections.
    pub fn set(&mut self, collection: &str, policy: CollectionPolicy) -> Result<()> {
        DocKey::new(collection, "-")?; // the same rules as document keys
        policy.check()?;
        if self.rules.len() >= MAX_POLICIES && !self.rules.contains_key(collection) {
            return Err(Error::InvalidArgument(format!(
                "at most {MAX_POLICIES} collection policies (set a default instead)"
            )));
        }
        self.rules.insert(collection.to_string(), policy);
        Ok(())
    }

    /// Adds `collection`'s policy (builder form of [`Policies::set`]).
    pub fn with(mut self, collection: &str, policy: CollectionPolicy) -> Result<Policies> {
        self.set(collection, policy)?;
        Ok(self)
    }

    /// Removes `collection`'s own policy (it then follows the default).
    /// False if it had none.
    pub fn remove(&mut self, collection: &str) -> bool {
        self.rules.remove(collection).is_some()
    }

    /// The per-collection policies, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &CollectionPolicy)> {
        self.rules.iter().map(|(c, p)| (c.as_str(), p))
    }
}

/// The live policy set: readers take a snapshot (an `Arc`), a change swaps it.
pub(crate) struct PolicyTable(RwLock<Arc<Policies>>);

impl PolicyTable {
    pub(crate) fn new(p: Policies) -> Self {
        PolicyTable(RwLock::new(Arc::new(p)))
    }

    /// The current set.
    pub(crate) fn get(&self) -> Arc<Policies> {
        self.0.read_locked().clone()
    }

    /// Changes the set with `f` (all or nothing).
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Policies) -> Result<R>) -> Result<R> {
        let mut g = self.0.write_locked();
        let mut next = (**g).clone();
        let r = f(&mut next)?;
        *g = Arc::new(next);
        Ok(r)
    }
}
