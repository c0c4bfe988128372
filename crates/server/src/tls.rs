//! TLS served by `serve` itself, from a certificate chain and its key in PEM
//! files (`serve.tls_cert`, `serve.tls_key`). The files are looked at again
//! at most every few seconds: a renewed certificate (certbot, an internal CA's
//! rotation) is used for new connections without a restart, and a renewal
//! that cannot be read keeps the certificate in use and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the files are looked at for a renewal.
const RECHECK: Duration = Duration::from_secs(5);

/// The certificate and key from `cert` and `key`, checked to belong together.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read serve.tls_cert {}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("serve.tls_cert {}: not PEM certificates ({e})", cert.display()))?;
    if chain.is_empty() {
        bail!("serve.tls_cert {}: holds no certificate (PEM, the server's first, then its CA chain)", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        anyhow!("serve.tls_key {}: no private key in PEM (PKCS#8, PKCS#1 or SEC1) could be read: {e}", key.display())
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
        anyhow!(
            "serve.tls_cert {} and serve.tls_key {} do not make a certificate to serve: {e}",
            cert.display(),
            key.display()
        )
    })
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The files' modification times, which tell a renewal.
type Stamp = (Option<SystemTime>, Option<SystemTime>);

#[derive(Debug)]
struct Current {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
}

/// Serves the certificate in the files, reloading it when they change.
#[derive(Debug)]
pub struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Current>,
}

impl Reloading {
    pub fn open(cert: &Path, key: &Path) -> Result<Reloading> {
        let stamp = (modified(cert), modified(key));
        let loaded = load(cert, key)?;
        Ok(Reloading {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Mutex::new(Current { key: Arc::new(loaded), stamp, checked: Instant::now() }),
        })
    }

    fn key(&self) -> Arc<CertifiedKey> {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.checked.elapsed() >= RECHECK {
            current.checked = Instant::now();
            let stamp = (modified(&self.cert), modified(&self.key));
            if stamp != current.stamp {
                match load(&self.cert, &self.key) {
                    Ok(renewed) => {
                        current.key = Arc::new(renewed);
                        current.stamp = stamp;
                        tracing::info!(cert = %self.cert.display(), "serving the renewed TLS certificate");
                    }
                    // A renewal half written (the certificate before its key) is read again next time.
                    Err(e) => tracing::warn!("keeping the TLS certificate in use: {e:#}"),
                }
            }
        }
        current.key.clone()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key())
    }
}

/// An acceptor for `serve`: TLS 1.2 and 1.3, HTTP/1.1.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    let resolver = Reloading::open(cert, key)?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow!("cannot set up TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
