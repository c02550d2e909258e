//! The crate's one HTTP client: `backlogd send`, `reload`, `report`, `forecast`, `simulate --url`
//! and `alert-replay`'s Prometheus queries all go through [`Client`].
//!
//! - `http://` and `https://` (HTTP/1.1; TLS 1.2 and 1.3 with rustls and *ring*). The server's
//!   certificate is checked against the system's trusted certificates (as `rustls-native-certs`
//!   finds them; `SSL_CERT_FILE` or `SSL_CERT_DIR` replace them), or with `--ca-file` against
//!   exactly the certificates of that PEM bundle.
//! - The bearer token, when one is given, on every request.
//! - Retries only where retrying can help ([`ClientError::is_retryable`]): a refused connection
//!   (the daemon is restarting) and 503 (it is recovering, or full for now). A bad URL, a name that
//!   does not resolve, a TLS failure and any other answer fail at once, with the reason.
//!
//! Blocking: each client runs its requests on its own current-thread runtime.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// How long one request may take, from connecting to the answer's last byte, unless the command's
/// `--timeout` says otherwise. The daemon answers a batch after its commit, in milliseconds; a
/// minute means it hangs.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request failed. Only [`ClientError::Refused`] and a 503 [`ClientError::Status`] are worth
/// retrying.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be used: not a URL, no host, or a scheme other than http and https.
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
    /// The `--ca-file` bundle cannot be read or holds no usable certificate.
    #[error("--ca-file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    /// No trusted certificate could be loaded from the system (or from `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR`) for an https URL.
    #[error(
        "no trusted certificates for {url}: {reason} (give --ca-file FILE, or SSL_CERT_FILE=FILE)"
    )]
    Roots { url: String, reason: String },
    /// The client's runtime could not be started.
    #[error("cannot start the HTTP client: {0}")]
    Runtime(std::io::Error),
    /// Nothing listens at the address: the daemon is not running, or restarting.
    #[error("cannot connect to {url}: connection refused")]
    Refused { url: String },
    /// The TLS handshake failed: the certificate is not trusted, not valid for the name in the
    /// URL or expired, or the server does not speak TLS.
    #[error("TLS with {url} failed: {error}{hint}")]
    Tls {
        url: String,
        error: Box<rustls::Error>,
        /// What to do about it, when that can be told (empty or starting with "; ").
        hint: &'static str,
    },
    /// The connection could not be made for another reason (the name does not resolve, the
    /// network is unreachable, ...).
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The connection failed after it was made (closed before the answer, not HTTP, ...).
    #[error("{url}: the request failed: {reason}")]
    Transport { url: String, reason: String },
    /// No whole answer within the client's timeout: the server accepted the connection but hangs
    /// (not retried: the request may have been applied).
    #[error("{url}: no answer within {after:?}")]
    TimedOut { url: String, after: Duration },
    /// The server answered, with a status the caller did not expect.
    #[error("{method} {url} answered {status}: {message}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        /// The daemon's `error` sentence, or the whole answer when it has none.
        message: String,
    },
    /// The answer is not the JSON the API promises.
    #[error(transparent)]
    Decode(#[from] crate::api::DecodeError),
    /// A retryable failure lasted through every attempt.
    #[error("giving up after {attempts} attempts: {last}")]
    GaveUp {
        attempts: u32,
        last: Box<ClientError>,
    },
}

impl ClientError {
    /// A refused connection or a 503: the same request may succeed a little later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Refused { .. } => true,
            ClientError::Status { status, .. } => *status == StatusCode::SERVICE_UNAVAILABLE,
            _ => false,
        }
    }
}

/// An answer: its status and whole body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A blocking client of one server (`base`, e.g. `https://backlogd.example:9723`).
pub struct Client {
    runtime: tokio::runtime::Runtime,
    /// The bound on one request, from connecting to the answer's last byte.
    timeout: Duration,
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `url` (`http://` or `https://`, host and port, optionally a path
    /// prefix), trusting the certificates of `ca_file` when given (else the system's), sending
    /// `token` as the bearer token when given. Reads the trusted certificates only for https.
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        token: Option<String>,
    ) -> Result<Client, ClientError> {
        let base = url.trim_end_matches('/').to_owned();
        let bad = |reason: String| ClientError::Url {
            url: url.to_owned(),
            reason,
        };
        let uri: hyper::Uri = base.parse().map_err(|e| bad(format!("not a URL: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => {
                return Err(bad(format!(
                    "the scheme is {other}; expected http:// or https://"
                )));
            }
            None => return Err(bad("no scheme; expected http:// or https://".to_owned())),
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("no host".to_owned()));
        }
        if uri.query().is_some() {
            return Err(bad("a base URL takes no query".to_owned()));
        }
        let roots = match (https, ca_file) {
            (false, _) => rustls::RootCertStore::empty(),
            (true, Some(path)) => roots_from_file(path)?,
            (true, None) => system_roots(url)?,
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        // ring supports the default versions: this cannot fail, but if it did it would say why.
        .map_err(|error| ClientError::Tls {
            url: url.to_owned(),
            error: Box::new(error),
            hint: "",
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        let http = {
            let _guard = runtime.enter();
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector)
        };
        Ok(Client {
            runtime,
            timeout: DEFAULT_TIMEOUT,
            http,
            base,
            token,
        })
    }

    /// The same client, bounding each request by `timeout` instead of [`DEFAULT_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request to `{base}{path_and_query}`, with the bearer token when there is one; any
    /// status is an answer.
    pub fn request(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Response, ClientError> {
        let url = format!("{}{path_and_query}", self.base);
        let uri: hyper::Uri = url.parse().map_err(|e| ClientError::Url {
            url: url.clone(),
            reason: format!("not a URL: {e}"),
        })?;
        let mut request = hyper::Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            request = request.header(hyper::header::CONTENT_TYPE, content_type);
        }
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| ClientError::Url {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| classify(&self.base, &e))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Transport {
                    url: self.base.clone(),
                    reason: chain(&e),
                })?
                .to_bytes();
            Ok(Response { status, body })
        };
        self.runtime.block_on(async {
            tokio::time::timeout(self.timeout, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(ClientError::TimedOut {
                        url: self.base.clone(),
                        after: self.timeout,
                    })
                })
        })
    }

    /// [`Client::request`], expecting one of `expected`: the answer, or a
    /// [`ClientError::Status`] with the daemon's `error` sentence.
    pub fn expect(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Bytes,
        expected: &[StatusCode],
    ) -> Result<Response, ClientError> {
        let response = self.request(method.clone(), path_and_query, content_type, body)?;
        if expected.contains(&response.status) {
            return Ok(response);
        }
        Err(ClientError::Status {
            method,
            url: format!("{}{path_and_query}", self.base),
            status: response.status,
            message: error_sentence(&response.body),
        })
    }

    /// [`Client::expect`], retried while the failure [is retryable](ClientError::is_retryable),
    /// `max_attempts` times in all (at least once), waiting 100 ms, then twice as long each time up
    /// to 5 s; each retry is announced on standard error.
    pub fn expect_retrying(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Bytes,
        expected: &[StatusCode],
        max_attempts: u32,
    ) -> Result<Response, ClientError> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.expect(
                method.clone(),
                path_and_query,
                content_type,
                body.clone(),
                expected,
            ) {
                Err(e) if e.is_retryable() => {
                    if attempt >= max_attempts {
                        return Err(ClientError::GaveUp {
                            attempts: attempt,
                            last: Box::new(e),
                        });
                    }
                    eprintln!("retrying in {delay:?} ({e})");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    /// `GET {base}{path_and_query}`: the body of a 200.
    pub fn get(&self, path_and_query: &str) -> Result<Bytes, ClientError> {
        self.expect(
            Method::GET,
            path_and_query,
            None,
            Bytes::new(),
            &[StatusCode::OK],
        )
        .map(|response| response.body)
    }

    /// `GET {base}{path_and_query}`: the JSON of a 200 decoded as `T` (an error naming a missing
    /// field).
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, ClientError> {
        let body = self.get(path_and_query)?;
        Ok(crate::api::decode(&format!("GET {path_and_query}"), &body)?)
    }

    /// `POST /-/reload`: asks the daemon to reload its configuration and waits for the result.
    /// `Ok` with the daemon's answer, or the reason: a [`ClientError::Status`] when the reload
    /// failed (the daemon keeps its running configuration then).
    pub fn reload(&self) -> Result<String, ClientError> {
        let response = self.expect(
            Method::POST,
            "/-/reload",
            None,
            Bytes::new(),
            &[StatusCode::OK],
        )?;
        Ok(String::from_utf8_lossy(&response.body).into_owned())
    }
}

/// The certificates of the PEM bundle at `path` as the only trusted roots.
fn roots_from_file(path: &Path) -> Result<rustls::RootCertStore, ClientError> {
    let bad = |reason: String| ClientError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not valid PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(bad(
            "holds no certificate (-----BEGIN CERTIFICATE-----)".to_owned()
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (n, certificate) in certificates.into_iter().enumerate() {
        roots
            .add(certificate)
            .map_err(|e| bad(format!("certificate {} is not usable: {e}", n + 1)))?;
    }
    Ok(roots)
}

/// The system's trusted certificates (or those of `SSL_CERT_FILE` / `SSL_CERT_DIR`); an error
/// when none could be loaded.
fn system_roots(url: &str) -> Result<rustls::RootCertStore, ClientError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let reason = if found.errors.is_empty() {
            "the system has none".to_owned()
        } else {
            found
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(ClientError::Roots {
            url: url.to_owned(),
            reason,
        });
    }
    Ok(roots)
}

/// The typed reason of a failed request: a refused connection, a TLS failure, another connection
/// failure, or a failure after connecting.
fn classify(url: &str, error: &hyper_util::client::legacy::Error) -> ClientError {
    let mut refused = false;
    let mut not_http = false;
    let mut tls = None;
    visit(error, &mut |e| {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            not_http |= hyper.is_parse();
        }
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            tls.get_or_insert_with(|| t.clone());
        }
    });
    // hyper-util's own layer ("client error (Connect)") says nothing the causes do not.
    let reason = chain(error.source().unwrap_or(error));
    if let Some(tls_error) = tls {
        let hint = match &tls_error {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                "; the certificate's issuer is not trusted: give --ca-file FILE with the CA that \
                 issued it, or SSL_CERT_FILE=FILE"
            }
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            ) => "; use a URL with a name the certificate holds",
            rustls::Error::InvalidMessage(_) => "; does the server speak TLS? (http:// then)",
            _ => "",
        };
        return ClientError::Tls {
            url: url.to_owned(),
            error: Box::new(tls_error),
            hint,
        };
    }
    if refused {
        return ClientError::Refused {
            url: url.to_owned(),
        };
    }
    if error.is_connect() {
        return ClientError::Connect {
            url: url.to_owned(),
            reason,
        };
    }
    ClientError::Transport {
        url: url.to_owned(),
        reason: if not_http {
            format!("{reason}; the answer is not HTTP (a server that speaks TLS? then https://)")
        } else {
            reason
        },
    }
}

/// Calls `f` on `error` and every error beneath it: its sources, and the error an `io::Error`
/// wraps (which `io::Error::source` skips).
fn visit<'a>(
    error: &'a (dyn std::error::Error + 'static),
    f: &mut impl FnMut(&'a (dyn std::error::Error + 'static)),
) {
    f(error);
    if let Some(inner) = error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        visit(inner, f);
    } else if let Some(source) = error.source() {
        visit(source, f);
    }
}

/// `error` with its causes, `outer: inner: ...`, each said once.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    visit(error, &mut |e| {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    });
    parts.join(": ")
}

/// The daemon's `error` sentence in an answer, or the whole answer when it has none.
pub fn error_sentence(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned())
}

/// The URL at which a daemon listening on `listen` is reached from this host, `https://` when it
/// serves TLS.
pub fn local_url(listen: std::net::SocketAddr, tls: bool) -> String {
    let host = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}:{}", listen.port())
}
