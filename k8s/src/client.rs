//! A Kubernetes client for [`ApiAccess`]. In a pod, the service account's
//! files are read from a configurable directory (kube-rs's own in-cluster
//! loader has the standard path built in, which tests cannot provide).

use std::path::Path;
use std::time::Duration;

use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::ApiAccess;
use crate::Error;

/// A client and the namespace its credentials belong to.
pub(crate) async fn connect(access: &ApiAccess) -> Result<(kube::Client, String), Error> {
    let config = match access {
        ApiAccess::InCluster {
            service_account_dir,
            server,
        } => in_cluster(service_account_dir, server.as_deref())?,
        ApiAccess::Kubeconfig(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?
        }
    };
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|e| Error::Api(e.to_string()))?;
    Ok((client, namespace))
}

fn in_cluster(dir: &Path, server: Option<&str>) -> Result<kube::Config, Error> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| {
            Error::Config(format!(
                "service account file {}: {e} (not in a pod? set kubernetes.kubeconfig)",
                p.display()
            ))
        })
    };
    let server = match server {
        Some(s) => s.to_string(),
        None => {
            let var = |n: &str| {
                std::env::var(n).map_err(|_| {
                    Error::Config(format!(
                        "{n} is not set (not in a pod? set kubernetes.api_server or kubernetes.kubeconfig)"
                    ))
                })
            };
            let (host, port) = (
                var("KUBERNETES_SERVICE_HOST")?,
                var("KUBERNETES_SERVICE_PORT")?,
            );
            if host.contains(':') {
                format!("https://[{host}]:{port}")
            } else {
                format!("https://{host}:{port}")
            }
        }
    };
    let url = server
        .parse()
        .map_err(|e| Error::Config(format!("API server {server:?}: {e}")))?;
    let ca = read("ca.crt")?;
    let roots = CertificateDer::pem_slice_iter(&ca)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("{}: {e}", dir.join("ca.crt").display())))?;
    if roots.is_empty() {
        return Err(Error::Config(format!(
            "{}: no certificate",
            dir.join("ca.crt").display()
        )));
    }
    let namespace = String::from_utf8(read("namespace")?)
        .map_err(|_| Error::Config("service account namespace: not UTF-8".into()))?
        .trim()
        .to_string();
    // The token is only checked to exist: kube-rs reads the file itself and
    // re-reads it as the kubelet rotates it, and never logs it.
    read("token")?;
    let mut config = kube::Config::new(url);
    config.default_namespace = namespace;
    config.root_cert = Some(roots);
    config.root_cert_file = Some(dir.join("ca.crt"));
    config.connect_timeout = Some(Duration::from_secs(10));
    config.auth_info = AuthInfo {
        token_file: Some(dir.join("token").display().to_string()),
        ..AuthInfo::default()
    };
    Ok(config)
}
