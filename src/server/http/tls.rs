//! TLS in the binary: rustls with the certificate and key from PEM files, reloaded without dropping a connection.
//!
//! ALPN h2 and http/1.1; the files are read again on SIGHUP or when they change.
//!
//! The acceptor asks a resolver for the certificate on each handshake; a reload swaps the
//! resolver's certificate, so new connections get the new one while open ones go on with the
//! session they have.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use thiserror::Error;
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Why the certificate or key cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read TLS key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS key {key} does not fit certificate {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The server's TLS: the acceptor for new connections and where its certificate comes from.
pub struct Tls {
    acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    /// Reads the certificate chain and key (PEM) and builds the acceptor.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Tls>, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let certified = read_pair(cert, key, &provider)?;
        let resolver = Arc::new(Resolver(RwLock::new(Arc::new(certified))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // Pages over HTTP/2 where the browser offers it; WebSockets come over HTTP/1.1.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            provider,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }))
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Reads both files again; new handshakes get the new certificate. On error the old one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = read_pair(&self.cert, &self.key, &self.provider)?;
        *self.resolver.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
        Ok(())
    }

    /// The end-entity certificate now served (DER).
    pub fn current(&self) -> Option<CertificateDer<'static>> {
        let key = self.resolver.0.read().unwrap_or_else(|e| e.into_inner());
        key.cert.first().cloned()
    }

    /// Reloads on SIGHUP, and when either file's modification time changes (checked every
    /// `every`), until `stop` is cancelled. Failures are logged; the old certificate stays.
    /// SIGHUP is caught from this call on, before the future is first polled.
    pub fn watch(
        self: Arc<Self>,
        every: Duration,
        stop: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        async move {
            let mut seen = self.stamps();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(s) => {
                            s.recv().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<()>();
                let why = tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = hangup => "SIGHUP",
                    _ = tick.tick() => {
                        if self.stamps() == seen {
                            continue;
                        }
                        "files changed"
                    }
                };
                seen = self.stamps();
                match self.reload() {
                    Ok(()) => {
                        tracing::info!(why, cert = %self.cert.display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(why, error = %e, "TLS reload failed; the old certificate stays")
                    }
                }
            }
        }
    }

    fn stamps(&self) -> [Option<SystemTime>; 2] {
        let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        [stamp(&self.cert), stamp(&self.key)]
    }
}

/// The chain in `cert` with the key in `key`, checked to belong together.
fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: cert.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no certificate in the file".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The plain-HTTP redirect: every request to the same host and path over https.
pub fn redirect_router(https_port: u16) -> axum::Router {
    use axum::http::{header, StatusCode, Uri};
    use axum::response::IntoResponse;
    axum::Router::new().fallback(move |uri: Uri, headers: axum::http::HeaderMap| async move {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok());
        let Some(host) = host else {
            return (StatusCode::BAD_REQUEST, "a Host header is needed").into_response();
        };
        let port = match https_port {
            443 => String::new(),
            p => format!(":{p}"),
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let location = format!("https://{}{port}{path}", host.host());
        (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, location)],
            "moved to https\n",
        )
            .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_reload_swaps_the_certificate_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = write_pair(dir.path(), "one.test");
        let tls = Tls::load(&c, &k).unwrap();
        let first = tls.current();
        write_pair(dir.path(), "two.test");
        tls.reload().unwrap();
        let second = tls.current();
        assert_ne!(first, second);
        std::fs::write(&k, "not a key").unwrap();
        assert!(matches!(tls.reload(), Err(TlsError::Key { .. })));
        assert_eq!(tls.current(), second, "the old certificate stays");
        // A key of another certificate is refused.
        let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        std::fs::write(&k, other.signing_key.serialize_pem()).unwrap();
        assert!(matches!(tls.reload(), Err(TlsError::Mismatch { .. })));
    }

    #[test]
    fn missing_files_are_named() {
        let err = Tls::load(Path::new("/nonexistent/cert.pem"), Path::new("/k.pem"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
