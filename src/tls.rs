//! Optional TLS on the listener: rustls with the *ring* provider, the certificate chain and key read
//! from the PEM files `server.tls_cert_file` and `server.tls_key_file`.
//!
//! The certificate is behind a resolver that a reload can point at a new one, so a renewed
//! certificate takes effect for the next handshake without a restart and without dropping open
//! connections. The files are always read and checked as a whole (chain parsed, key loaded, key
//! matches the certificate) before anything is replaced: a bad new file keeps the running
//! certificate.
//!
//! The not-after time of the certificate presented is exported (`export_not_after`) as
//! `backlogd_tls_certificate_not_after_timestamp_seconds`, and follows every replacement.
//!
//! The handshake itself runs in each connection's task (`server::connection`), bounded by
//! `server.header_timeout`, so a client that never finishes it cannot hold up `accept`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsFiles;

/// Why the certificate or key cannot be used; each names the configuration key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls_cert_file: cannot read {}: {error}", path.display())]
    ReadCertificate {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("server.tls_cert_file: {} is not valid PEM: {error}", path.display())]
    CertificatePem {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error(
        "server.tls_cert_file: {} holds no certificate (-----BEGIN CERTIFICATE-----)",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error("server.tls_cert_file: {}: the first certificate is not valid: {reason}", path.display())]
    InvalidCertificate { path: PathBuf, reason: String },
    #[error("server.tls_key_file: cannot read {}: {error}", path.display())]
    ReadKey {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "server.tls_key_file: {} holds no private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("server.tls_key_file: {} is not valid PEM: {error}", path.display())]
    KeyPem {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("server.tls_key_file: {} holds no usable private key: {error}", path.display())]
    UnusableKey { path: PathBuf, error: rustls::Error },
    #[error(
        "server.tls_key_file: {} is not the private key of the first certificate in {}",
        key.display(),
        certificate.display()
    )]
    KeyMismatch { key: PathBuf, certificate: PathBuf },
    #[error("server.tls_cert_file: TLS cannot be set up: {0}")]
    Setup(rustls::Error),
}

/// The listener's TLS state: the acceptor (a fixed rustls configuration) and the certificate it
/// presents, which [`Tls::replace`] swaps.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    certificate: Arc<Rotating>,
    /// The presented certificate's not-after time, in seconds since the epoch.
    not_after: AtomicI64,
    /// The gauge that exports `not_after`, once the daemon's telemetry exists.
    not_after_gauge: OnceLock<prometheus::Gauge>,
}

/// A certificate chain with its private key, read and checked by [`Certificate::read`].
pub struct Certificate {
    key: Arc<CertifiedKey>,
    not_after: i64,
}

impl Tls {
    /// Reads the certificate and key and builds the server configuration (TLS 1.2 and 1.3, no
    /// client certificates, ALPN `http/1.1`).
    ///
    /// # Errors
    ///
    /// When a file cannot be read or holds no usable certificate or key, naming the key of the
    /// configuration, the file and the reason.
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let provider = provider();
        let first = Certificate::read_with(files, &provider)?;
        let certificate = Arc::new(Rotating(RwLock::new(first.key)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        // The daemon speaks HTTP/1.1 only; a client offering h2 as well then picks HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certificate,
            not_after: AtomicI64::new(first.not_after),
            not_after_gauge: OnceLock::new(),
        })
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Presents `certificate` from the next handshake on; open connections keep theirs.
    pub fn replace(&self, certificate: Certificate) {
        // A poisoned lock only means a writer panicked while swapping one Arc; the Arc is intact.
        *self
            .certificate
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner()) = certificate.key;
        self.not_after
            .store(certificate.not_after, Ordering::Relaxed);
        if let Some(gauge) = self.not_after_gauge.get() {
            gauge.set(certificate.not_after as f64);
        }
    }

    /// The presented certificate's not-after time, in seconds since the epoch.
    pub fn not_after(&self) -> i64 {
        self.not_after.load(Ordering::Relaxed)
    }

    /// Sets `gauge` to the presented certificate's not-after time now and at every
    /// [`Tls::replace`]. Called once; a second gauge is ignored.
    pub fn export_not_after(&self, gauge: prometheus::Gauge) {
        gauge.set(self.not_after() as f64);
        let _ = self.not_after_gauge.set(gauge);
    }
}

impl Certificate {
    /// Reads and checks the certificate chain and private key (for a reload: nothing is replaced
    /// until [`Tls::replace`]).
    ///
    /// # Errors
    ///
    /// As [`Tls::load`].
    pub fn read(files: &TlsFiles) -> Result<Certificate, TlsError> {
        Certificate::read_with(files, &provider())
    }

    /// The not-after time of the server's certificate (the chain's first), in seconds since the
    /// epoch.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    fn read_with(files: &TlsFiles, provider: &CryptoProvider) -> Result<Certificate, TlsError> {
        let cert_path = &files.cert_file;
        let key_path = &files.key_file;
        let chain = read_chain(cert_path)?;
        let key = read_key(key_path)?;
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|error| TlsError::UnusableKey {
                path: key_path.clone(),
                error,
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // ring reports the public key of every key type it loads, so `Unknown` does not occur;
            // if it did, the handshake would still only succeed with the matching key.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(TlsError::KeyMismatch {
                    key: key_path.clone(),
                    certificate: cert_path.clone(),
                });
            }
            Err(e) => {
                return Err(TlsError::InvalidCertificate {
                    path: cert_path.clone(),
                    reason: e.to_string(),
                });
            }
        }
        let not_after =
            not_after(&certified.cert[0]).map_err(|reason| TlsError::InvalidCertificate {
                path: cert_path.clone(),
                reason,
            })?;
        Ok(Certificate {
            key: Arc::new(certified),
            not_after,
        })
    }
}

/// The not-after time of an X.509 certificate, in seconds since the epoch (x509-cert reads
/// both the UTCTime and the GeneralizedTime form).
fn not_after(certificate: &CertificateDer<'_>) -> Result<i64, String> {
    use x509_cert::der::Decode;
    let parsed =
        x509_cert::Certificate::from_der(certificate.as_ref()).map_err(|e| e.to_string())?;
    let seconds = parsed
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    // A not-after beyond i64 seconds (year 292 billion) cannot be written in X.509's GeneralizedTime.
    i64::try_from(seconds).map_err(|_| format!("not-after {seconds} s is out of range"))
}

/// The certificates of the PEM file at `path`, in order (the server's own first).
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|error| TlsError::ReadCertificate {
        path: path.to_owned(),
        error,
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::CertificatePem {
            path: path.to_owned(),
            error,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of the PEM file at `path`.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|error| TlsError::ReadKey {
        path: path.to_owned(),
        error,
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        error => TlsError::KeyPem {
            path: path.to_owned(),
            error,
        },
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Resolves every handshake to the current certificate, whatever the client asks for (SNI).
#[derive(Debug)]
struct Rotating(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Rotating {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Poisoning: see `Tls::replace`.
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}
