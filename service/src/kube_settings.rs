//! The `[kubernetes]` table of the configuration: Kubernetes discovery
//! (`peat-mesh-k8s`), off unless `enabled`.
//!
//! ```toml
//! [kubernetes]
//! enabled = true
//! slice_selector = "kubernetes.io/service-name=peat-mesh"   # the headless Service's slices
//! pod_selector = "app.kubernetes.io/name=peat-mesh"         # the pods whose node ids are read
//! port_name = "quic"                # the Service port (UDP) to dial
//! # namespace = "mesh"              # default: the service account's
//! # pod_name = "peat-mesh-0"        # default: $POD_NAME, then $HOSTNAME
//! # service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
//! # api_server = "https://10.96.0.1:443"   # default: $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
//! # kubeconfig = "/home/me/.kube/config"   # outside a cluster, instead of the service account
//! ```

use std::path::PathBuf;

use peat_mesh_k8s::{ApiAccess, KubernetesConfig, SERVICE_ACCOUNT_DIR};
use serde::Deserialize;

use crate::config::ConfigError;

/// The `[kubernetes]` table of a [`crate::Layer`]: every field optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesLayer {
    pub enabled: Option<bool>,
    pub slice_selector: Option<String>,
    pub pod_selector: Option<String>,
    pub port_name: Option<String>,
    pub namespace: Option<String>,
    pub pod_name: Option<String>,
    pub service_account_dir: Option<PathBuf>,
    pub api_server: Option<String>,
    pub kubeconfig: Option<PathBuf>,
}

impl KubernetesLayer {
    /// Takes one `PEAT_KUBERNETES_…` variable; false if `key` is not one.
    pub(crate) fn set_env(&mut self, key: &str, v: String) -> Result<bool, ConfigError> {
        match key {
            "PEAT_KUBERNETES" => self.enabled = Some(crate::config::parse_bool(key, &v)?),
            "PEAT_KUBERNETES_SLICE_SELECTOR" => self.slice_selector = Some(v),
            "PEAT_KUBERNETES_POD_SELECTOR" => self.pod_selector = Some(v),
            "PEAT_KUBERNETES_PORT_NAME" => self.port_name = Some(v),
            "PEAT_KUBERNETES_NAMESPACE" => self.namespace = Some(v),
            "PEAT_KUBERNETES_POD_NAME" => self.pod_name = Some(v),
            "PEAT_KUBERNETES_SERVICE_ACCOUNT_DIR" => self.service_account_dir = Some(v.into()),
            "PEAT_KUBERNETES_API_SERVER" => self.api_server = Some(v),
            "PEAT_KUBERNETES_KUBECONFIG" => self.kubeconfig = Some(v.into()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `over`'s set fields replace this layer's.
    pub(crate) fn merge(mut self, over: KubernetesLayer) -> KubernetesLayer {
        macro_rules! take {
            ($($f:ident),+) => {$(
                if over.$f.is_some() {
                    self.$f = over.$f;
                }
            )+};
        }
        take!(
            enabled,
            slice_selector,
            pod_selector,
            port_name,
            namespace,
            pod_name,
            service_account_dir,
            api_server,
            kubeconfig
        );
        self
    }

    /// The checked discovery settings, or `None` when discovery is off.
    pub(crate) fn resolve(self) -> Result<Option<KubernetesConfig>, ConfigError> {
        if !self.enabled.unwrap_or(false) {
            return Ok(None);
        }
        let d = KubernetesConfig::default();
        let access = match (self.kubeconfig, self.service_account_dir, self.api_server) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(ConfigError(
                "kubernetes.kubeconfig replaces service_account_dir and api_server: set one way"
                    .into(),
            )),
            (Some(path), None, None) => ApiAccess::Kubeconfig(path),
            (None, dir, server) => ApiAccess::InCluster {
                service_account_dir: dir.unwrap_or_else(|| SERVICE_ACCOUNT_DIR.into()),
                server,
            },
        };
        let c = KubernetesConfig {
            slice_selector: self.slice_selector.unwrap_or(d.slice_selector),
            pod_selector: self.pod_selector.unwrap_or(d.pod_selector),
            port_name: self.port_name.unwrap_or(d.port_name),
            namespace: self.namespace,
            pod_name: self.pod_name,
            access,
        };
        c.check().map_err(ConfigError)?;
        Ok(Some(c))
    }
}

/// The `[kubernetes]` table of the printed settings.
pub(crate) fn redacted(c: &Option<KubernetesConfig>) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let Some(c) = c else {
        return "\n[kubernetes]\nenabled = false\n".into();
    };
    let mut out = format!(
        "\n[kubernetes]\nenabled = true\nslice_selector = {}\npod_selector = {}\nport_name = {}\n",
        q(&c.slice_selector),
        q(&c.pod_selector),
        q(&c.port_name)
    );
    if let Some(n) = &c.namespace {
        out += &format!("namespace = {}\n", q(n));
    }
    if let Some(n) = &c.pod_name {
        out += &format!("pod_name = {}\n", q(n));
    }
    match &c.access {
        ApiAccess::InCluster {
            service_account_dir,
            server,
        } => {
            out += &format!(
                "service_account_dir = {}\n",
                q(&service_account_dir.display().to_string())
            );
            if let Some(s) = server {
                out += &format!("api_server = {}\n", q(s));
            }
        }
        ApiAccess::Kubeconfig(p) => {
            out += &format!("kubeconfig = {}\n", q(&p.display().to_string()))
        }
    }
    out
}
