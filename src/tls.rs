//! Optional TLS on the listener: rustls with the *ring* provider, the certificate chain and key read
//! from the PEM files `server.tls_cert_file` and `server.tls_key_file`.
//!
//! The certificate is behind a resolver that a reload can point at a new one, so a renewed
//! certificate takes effect for the next handshake without a restart and without dropping open
//! connections. The files are always read and checked as a whole (chain parsed, key loaded, key
//! matches the certificate) before anything is replaced: a bad new file keeps the running
//! certificate.
//!
//! The handshake itself runs in each connection's task (`server::connection`), bounded by
//! `server.header_timeout`, so a client that never finishes it cannot hold up `accept`.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsFiles;

/// The listener's TLS state: the acceptor (a fixed rustls configuration) and the certificate it
/// presents, which [`Tls::replace`] swaps.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    certificate: Arc<Rotating>,
}

/// A certificate chain with its private key, read and checked by [`Certificate::read`].
pub struct Certificate(Arc<CertifiedKey>);

impl Tls {
    /// Reads the certificate and key and builds the server configuration (TLS 1.2 and 1.3, no
    /// client certificates, ALPN `http/1.1`).
    ///
    /// # Errors
    ///
    /// When a file cannot be read or holds no usable certificate or key, naming the key of the
    /// configuration, the file and the reason.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Tls> {
        let provider = provider();
        let Certificate(first) = Certificate::read_with(files, &provider)?;
        let certificate = Arc::new(Rotating(RwLock::new(first)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("server.tls_cert_file: TLS cannot be set up: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        // The daemon speaks HTTP/1.1 only; a client offering h2 as well then picks HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certificate,
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
            .unwrap_or_else(|e| e.into_inner()) = certificate.0;
    }
}

impl Certificate {
    /// Reads and checks the certificate chain and private key (for a reload: nothing is replaced
    /// until [`Tls::replace`]).
    ///
    /// # Errors
    ///
    /// As [`Tls::load`].
    pub fn read(files: &TlsFiles) -> anyhow::Result<Certificate> {
        Certificate::read_with(files, &provider())
    }

    fn read_with(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<Certificate> {
        let cert_path = &files.cert_file;
        let key_path = &files.key_file;
        let chain = read_chain(cert_path)?;
        let key = read_key(key_path)?;
        let signing_key = provider.key_provider.load_private_key(key).map_err(|e| {
            anyhow::anyhow!(
                "server.tls_key_file: {} holds no usable private key: {e}",
                key_path.display()
            )
        })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // ring reports the public key of every key type it loads, so `Unknown` does not occur;
            // if it did, the handshake would still only succeed with the matching key.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => anyhow::bail!(
                "server.tls_key_file: {} is not the private key of the first certificate in {}",
                key_path.display(),
                cert_path.display()
            ),
            Err(e) => anyhow::bail!(
                "server.tls_cert_file: {}: the first certificate is not valid: {e}",
                cert_path.display()
            ),
        }
        Ok(Certificate(Arc::new(certified)))
    }
}

/// The certificates of the PEM file at `path`, in order (the server's own first).
fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!("server.tls_cert_file: cannot read {}: {e}", path.display())
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow::anyhow!(
                "server.tls_cert_file: {} is not valid PEM: {e}",
                path.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "server.tls_cert_file: {} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(chain)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of the PEM file at `path`.
fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("server.tls_key_file: cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "server.tls_key_file: {} holds no private key (-----BEGIN PRIVATE KEY-----, \
             RSA PRIVATE KEY or EC PRIVATE KEY)",
            path.display()
        ),
        other => anyhow::anyhow!(
            "server.tls_key_file: {} is not valid PEM: {other}",
            path.display()
        ),
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
