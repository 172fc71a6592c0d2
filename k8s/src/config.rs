//! What Kubernetes discovery needs to know, and how it reaches the API server.

use std::path::PathBuf;

/// Where a pod finds its service account: token, CA bundle and namespace.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The settings of Kubernetes discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    /// Label selector of the EndpointSlices to watch (those of the node's
    /// headless Service: `kubernetes.io/service-name=<service>`).
    pub slice_selector: String,
    /// Label selector of the Pods whose node-id annotations are read.
    pub pod_selector: String,
    /// The name of the Service port that carries QUIC (protocol UDP).
    pub port_name: String,
    /// The namespace; `None` takes the service account's (or, with a
    /// kubeconfig, its context's).
    pub namespace: Option<String>,
    /// This node's Pod, whose annotation it writes; `None` takes `POD_NAME`,
    /// then `HOSTNAME` (a StatefulSet pod's hostname is its name). With
    /// neither, the node announces nothing (and is found by no one).
    pub pod_name: Option<String>,
    /// How the API server is reached.
    pub access: ApiAccess,
}

/// How discovery reaches the API server. Either way, the server's address is
/// one the configuration names: emission control holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAccess {
    /// Inside a pod: the service account's files in `service_account_dir`
    /// (the token file is re-read as the kubelet rotates it) and the API
    /// server at `server`, or else at `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    InCluster {
        service_account_dir: PathBuf,
        server: Option<String>,
    },
    /// Outside a cluster: a kubeconfig file's current context.
    Kubeconfig(PathBuf),
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            slice_selector: "kubernetes.io/service-name=peat-mesh".into(),
            pod_selector: "app.kubernetes.io/name=peat-mesh".into(),
            port_name: "quic".into(),
            namespace: None,
            pod_name: None,
            access: ApiAccess::InCluster {
                service_account_dir: SERVICE_ACCOUNT_DIR.into(),
                server: None,
            },
        }
    }
}

impl KubernetesConfig {
    /// This node's pod name: the configured one, else `POD_NAME`, else
    /// `HOSTNAME`.
    pub fn own_pod(&self) -> Option<String> {
        self.pod_name
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|n| !n.is_empty())
    }

    /// Checks the values that can be checked without the API server: the
    /// selectors' syntax, the port name (an IANA service name, as Kubernetes
    /// requires) and the namespace and pod names (DNS labels/subdomains).
    pub fn check(&self) -> Result<(), String> {
        for (what, sel) in [
            ("slice_selector", &self.slice_selector),
            ("pod_selector", &self.pod_selector),
        ] {
            check_selector(sel).map_err(|e| format!("kubernetes.{what} {sel:?}: {e}"))?;
        }
        let p = &self.port_name;
        let port_ok = !p.is_empty()
            && p.len() <= 15
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && p.bytes().any(|b| b.is_ascii_lowercase())
            && !p.starts_with('-')
            && !p.ends_with('-')
            && !p.contains("--");
        if !port_ok {
            return Err(format!(
                "kubernetes.port_name {p:?}: 1 to 15 lower-case letters, digits and single hyphens, with a letter"
            ));
        }
        for (what, v, max) in [
            ("namespace", &self.namespace, 63),
            ("pod_name", &self.pod_name, 253),
        ] {
            if let Some(v) = v {
                if !dns_name(v, max) {
                    return Err(format!(
                        "kubernetes.{what} {v:?}: lower-case letters, digits, '-' and '.', at most {max}"
                    ));
                }
            }
        }
        if let ApiAccess::InCluster {
            server: Some(s), ..
        } = &self.access
        {
            if !s.starts_with("https://") {
                return Err(format!("kubernetes.api_server {s:?}: an https:// URL"));
            }
        }
        Ok(())
    }
}

/// Checks a label selector's syntax as the API server reads it:
/// requirements joined by commas, each `k`, `!k`, `k=v`, `k==v`, `k!=v`,
/// `k in (v,…)` or `k notin (v,…)`. (kube-rs has no parser for the string
/// form; the API server would refuse a bad one on every watch retry.)
fn check_selector(sel: &str) -> Result<(), String> {
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 316
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
    };
    let value = |s: &str| s.is_empty() || label(s) && !s.contains('/');
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in sel.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err("unbalanced parentheses".into());
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    parts.push(&sel[start..]);
    for p in parts {
        let p = p.trim();
        let ok = if let Some((k, rest)) = p.split_once(" notin ").or_else(|| p.split_once(" in ")) {
            let rest = rest.trim();
            label(k.trim())
                && rest.starts_with('(')
                && rest.ends_with(')')
                && rest[1..rest.len() - 1].split(',').all(|v| value(v.trim()))
        } else if let Some((k, v)) = p
            .split_once("!=")
            .or_else(|| p.split_once("=="))
            .or_else(|| p.split_once('='))
        {
            label(k.trim()) && value(v.trim())
        } else if let Some(k) = p.strip_prefix('!') {
            label(k.trim())
        } else {
            label(p)
        };
        if !ok {
            return Err(format!("{p:?} is not a requirement like key=value"));
        }
    }
    Ok(())
}

fn dns_name(v: &str, max: usize) -> bool {
    !v.is_empty()
        && v.len() <= max
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_check_and_bad_values_say_which() {
        assert_eq!(KubernetesConfig::default().check(), Ok(()));
        for ok in [
            "app=peat,tier!=edge",
            "kubernetes.io/service-name==peat-mesh",
            "env in (a, b),!legacy",
            "x notin (a)",
            "present",
        ] {
            assert_eq!(check_selector(ok), Ok(()), "{ok}");
        }
        type Set = fn(&mut KubernetesConfig);
        let cases: [(&str, Set); 6] = [
            ("slice_selector", |c| c.slice_selector = "a in (b".into()),
            ("pod_selector", |c| c.pod_selector = "=x".into()),
            ("port_name", |c| c.port_name = "QUIC".into()),
            ("port_name", |c| {
                c.port_name = "a-very-long-port-name".into()
            }),
            ("namespace", |c| c.namespace = Some("Mesh".into())),
            ("api_server", |c| {
                c.access = ApiAccess::InCluster {
                    service_account_dir: SERVICE_ACCOUNT_DIR.into(),
                    server: Some("http://10.0.0.1".into()),
                }
            }),
        ];
        for (what, set) in cases {
            let mut c = KubernetesConfig::default();
            set(&mut c);
            let e = c.check().expect_err(what);
            assert!(e.starts_with(&format!("kubernetes.{what} ")), "{e}");
            assert!(!e.contains('\n'));
        }
    }
}
