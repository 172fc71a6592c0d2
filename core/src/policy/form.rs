//! The plain-data form of policies (JSON here; the node binary reads the same
//! fields from TOML): what the SDKs and config files exchange.
//!
//! ```json
//! {"default": {"priority": "normal"},
//!  "collections": {"positions": {"priority": "critical", "sync": "latest_only",
//!                                "ttl_secs": 600, "max_documents": 5000}}}
//! ```
//! Every field of a policy is optional (absent: the default policy's value,
//! see [`CollectionPolicy::default`]); unknown fields are an error, so a typo
//! never passes silently.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    CollectionPolicy, DeleteRule, Policies, Priority, Retention, SignaturePolicy, SyncMode,
};
use crate::error::{Error, Result};

/// One policy as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyForm {
    /// `critical`, `high`, `normal`, `low` or `bulk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// `full`, `latest_only` or `windowed` (with `window_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone_ttl_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_documents: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eager_blobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_until_delivered: Option<bool>,
    /// `delete_wins` or `update_wins`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
    /// `off`, `accept`, `flag` or `reject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<String>,
}

/// A whole policy set as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PoliciesForm {
    #[serde(default)]
    pub default: PolicyForm,
    #[serde(default)]
    pub collections: BTreeMap<String, PolicyForm>,
}

fn bad(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

impl PolicyForm {
    /// The policy, with absent fields taken from `base`.
    pub fn to_policy(&self, base: &CollectionPolicy) -> Result<CollectionPolicy> {
        let mut p = *base;
        if let Some(s) = &self.priority {
            p.priority = Priority::from_name(s).ok_or_else(|| {
                bad(format!(
                    "priority {s:?}: expected critical, high, normal, low or bulk"
                ))
            })?;
        }
        let window = self.window_secs.map(Duration::from_secs);
        match (self.sync.as_deref(), window) {
            (None, None) => {}
            (Some("full"), None) => p.sync = SyncMode::Full,
            (Some("latest_only"), None) => p.sync = SyncMode::LatestOnly,
            (Some("windowed"), Some(w)) => p.sync = SyncMode::Windowed(w),
            (Some("windowed"), None) => {
                return Err(bad("sync \"windowed\" needs window_secs".into()))
            }
            (None | Some("full" | "latest_only"), Some(_)) => {
                return Err(bad("window_secs is only for sync \"windowed\"".into()))
            }
            (Some(s), _) => {
                return Err(bad(format!(
                    "sync {s:?}: expected full, latest_only or windowed"
                )))
            }
        }
        if let Some(t) = self.ttl_secs {
            p.ttl = Some(Duration::from_secs(t));
        }
        if let Some(t) = self.tombstone_ttl_secs {
            p.tombstone_ttl = Duration::from_secs(t);
        }
        if let Some(n) = self.max_documents {
            p.retention.max_documents = Some(n);
        }
        if let Some(n) = self.max_bytes {
            p.retention.max_bytes = Some(n);
        }
        if let Some(b) = self.eager_blobs {
            p.eager_blobs = b;
        }
        if let Some(b) = self.keep_until_delivered {
            p.keep_until_delivered = b;
        }
        match self.delete.as_deref() {
            None => {}
            Some("delete_wins") => p.delete_rule = DeleteRule::DeleteWins,
            Some("update_wins") => p.delete_rule = DeleteRule::UpdateWins,
            Some(s) => {
                return Err(bad(format!(
                    "delete {s:?}: expected delete_wins or update_wins"
                )))
            }
        }
        if let Some(s) = self.signatures.as_deref() {
            p.signatures = SignaturePolicy::from_name(s).ok_or_else(|| {
                bad(format!(
                    "signatures {s:?}: expected off, accept, flag or reject"
                ))
            })?;
        }
        p.check()?;
        Ok(p)
    }

    /// Every field of `p` written out.
    pub fn from_policy(p: &CollectionPolicy) -> PolicyForm {
        let (sync, window) = match p.sync {
            SyncMode::Full => ("full", None),
            SyncMode::LatestOnly => ("latest_only", None),
            SyncMode::Windowed(w) => ("windowed", Some(w.as_secs())),
        };
        let Retention {
            max_documents,
            max_bytes,
        } = p.retention;
        PolicyForm {
            priority: Some(p.priority.name().into()),
            sync: Some(sync.into()),
            window_secs: window,
            ttl_secs: p.ttl.map(|t| t.as_secs()),
            tombstone_ttl_secs: Some(p.tombstone_ttl.as_secs()),
            max_documents,
            max_bytes,
            eager_blobs: Some(p.eager_blobs),
            keep_until_delivered: Some(p.keep_until_delivered),
            delete: Some(
                match p.delete_rule {
                    DeleteRule::DeleteWins => "delete_wins",
                    DeleteRule::UpdateWins => "update_wins",
                }
                .into(),
            ),
            signatures: Some(p.signatures.name().into()),
        }
    }
}

impl CollectionPolicy {
    /// Reads one policy from JSON text ([`PolicyForm`]); absent fields take
    /// the defaults.
    pub fn from_json(text: &str) -> Result<CollectionPolicy> {
        let form: PolicyForm =
            serde_json::from_str(text).map_err(|e| bad(format!("a collection policy: {e}")))?;
        form.to_policy(&CollectionPolicy::default())
    }

    /// This policy as JSON text, every field written.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&PolicyForm::from_policy(self)).unwrap_or_default()
    }
}

impl Policies {
    /// Reads a policy set from JSON text (see the module docs). A
    /// collection's absent fields take the set's default policy's values.
    pub fn from_json(text: &str) -> Result<Policies> {
        let form: PoliciesForm =
            serde_json::from_str(text).map_err(|e| bad(format!("policies: {e}")))?;
        let default = form.default.to_policy(&CollectionPolicy::default())?;
        let mut set = Policies::new(default);
        for (name, p) in &form.collections {
            set.set(name, p.to_policy(&default)?)?;
        }
        Ok(set)
    }

    /// The set as JSON text, every field of every policy written.
    pub fn to_json(&self) -> String {
        let form = PoliciesForm {
            default: PolicyForm::from_policy(self.default_policy()),
            collections: self
                .iter()
                .map(|(c, p)| (c.to_string(), PolicyForm::from_policy(p)))
                .collect(),
        };
        serde_json::to_string(&form).unwrap_or_default()
    }
}
