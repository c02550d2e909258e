//! The test harness: starts the real `backlogd` binary on `127.0.0.1:0` with a store in a temporary
//! directory, talks plain HTTP/1.1 to it over `std::net` (no client crate, so the tests do not
//! depend on the daemon's own HTTP stack) or, for a daemon with TLS, over a blocking rustls client
//! stream, and parses the Prometheus text exposition.
//!
//! Nothing here sleeps for a fixed time: the address is read from the daemon's stderr, readiness and
//! exit are awaited by short bounded polling.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the daemon may take to print its address, to become ready, or to exit after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(20);

/// How long a value in /metrics may trail the acknowledgement of the request that changed it.
const METRICS_SETTLE: Duration = Duration::from_secs(2);

pub const BINARY: &str = env!("CARGO_BIN_EXE_backlogd");

/// The shipped configuration; tests override the listen address and store path from the
/// environment, as an operator would.
pub fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/backlogd.toml")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A running daemon. Dropping it kills the process (SIGKILL) so a failing test leaves nothing behind.
pub struct Daemon {
    pub addr: SocketAddr,
    /// `http` or `https`, as the daemon printed it.
    scheme: String,
    /// The client configuration requests use when the daemon speaks TLS (see `start_tls`).
    tls: Option<Arc<rustls::ClientConfig>>,
    child: Child,
    stderr_lines: Arc<Mutex<Vec<String>>>,
    stderr_drain: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Starts `backlogd run` on the shipped configuration with its store in `store_dir`, plus
    /// `extra_env` (`BACKLOGD__SECTION__KEY` overrides), and waits until `/readyz` answers 200.
    pub fn start(store_dir: &Path, extra_env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with_config(&shipped_config(), store_dir, extra_env)
    }

    /// Like `start`, on the configuration file `config` (which SIGHUP and `POST /-/reload` re-read).
    pub fn start_with_config(
        config: &Path,
        store_dir: &Path,
        extra_env: &[(&str, &str)],
    ) -> Daemon {
        let mut daemon = Daemon::spawn(run_command(config, store_dir, extra_env));
        daemon.await_ready();
        daemon
    }

    /// Like `start_with_config` for a daemon configured with TLS: every request of this harness then
    /// goes over TLS with `client` (e.g. `client_trusting` the daemon's certificate).
    pub fn start_tls(
        config: &Path,
        store_dir: &Path,
        extra_env: &[(&str, &str)],
        client: Arc<rustls::ClientConfig>,
    ) -> Daemon {
        let mut daemon = Daemon::spawn(run_command(config, store_dir, extra_env));
        assert_eq!(
            daemon.scheme,
            "https",
            "a daemon with TLS prints an https:// address; stderr:\n{}",
            daemon.stderr()
        );
        daemon.tls = Some(client);
        daemon.await_ready();
        daemon
    }

    /// Starts the daemon and returns as soon as it has printed its address, before recovery is
    /// complete (for tests of what it answers while recovering).
    pub fn start_unready(store_dir: &Path, extra_env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(run_command(&shipped_config(), store_dir, extra_env))
    }

    /// Starts `command` (a `backlogd run`, possibly under a wrapper such as strace) and returns once
    /// it has printed its address.
    pub fn spawn(mut command: Command) -> Daemon {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("the backlogd binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        // Keep draining stderr for the daemon's whole life so the pipe never fills; keep the lines
        // for failure messages.
        let stderr_drain = {
            let lines = stderr_lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let announced = line
                        .strip_prefix("backlogd listening on ")
                        .and_then(|url| url.split_once("://"));
                    if let Some((scheme @ ("http" | "https"), address)) = announced {
                        let _ = address_tx.send((scheme.to_owned(), address.trim().to_owned()));
                    }
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let (scheme, address) = match address_rx.recv_timeout(PATIENCE) {
            Ok(announced) => announced,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "backlogd did not print its address ({status:?}); stderr:\n{}",
                    stderr_lines.lock().unwrap().join("\n")
                );
            }
        };
        Daemon {
            addr: address.parse().expect("the printed address is IP:port"),
            scheme,
            tls: None,
            child,
            stderr_lines,
            stderr_drain: Some(stderr_drain),
        }
    }

    /// Polls `/readyz` until it answers 200 (bounded).
    pub fn await_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(response) = self.try_request("GET", "/readyz", &[], b"") {
                match response.status {
                    200 => return,
                    503 => {}
                    other => panic!(
                        "/readyz answered {other}: {}\n{}",
                        response.text(),
                        self.stderr()
                    ),
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "backlogd exited ({status}) before it was ready; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                started.elapsed() < PATIENCE,
                "backlogd was not ready within {PATIENCE:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls `/readyz` until it answers 200 (`None`) or the process exits (its status), bounded:
    /// for a start that may either succeed or refuse.
    pub fn await_ready_or_exit(&mut self) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                if let Some(drain) = self.stderr_drain.take() {
                    let _ = drain.join();
                }
                return Some(status);
            }
            if let Ok(response) = self.try_request("GET", "/readyz", &[], b"")
                && response.status == 200
            {
                return None;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "backlogd neither became ready nor exited within {PATIENCE:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process' peak resident set size in bytes (`VmHWM` in /proc), while it runs.
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status of a running daemon is readable");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("/proc/PID/status has VmHWM");
        kib * 1024
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...) with `kill`, without waiting for its effect.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -s {name} {pid} failed");
    }

    /// Any request to the daemon (e.g. with an `Authorization` header); panics only when the
    /// daemon cannot be reached.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nstderr:\n{}", self.stderr()))
    }

    /// Any request, over TLS when the daemon was started with `start_tls`; connection and TLS
    /// errors are returned.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        match &self.tls {
            Some(client) => tls_request(self.addr, client, method, path, headers, body),
            None => request(self.addr, method, path, headers, body),
        }
    }

    /// Polls the daemon's stderr (bounded) until a line contains `needle`; returns that line.
    pub fn await_stderr(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let found = self
                .stderr_lines
                .lock()
                .unwrap()
                .iter()
                .find(|line| line.contains(needle))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                started.elapsed() < METRICS_SETTLE,
                "no stderr line contains {needle:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://ADDR` or `https://ADDR`, as the daemon announced itself.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Everything the daemon wrote to stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        self.stderr_lines.lock().unwrap().join("\n")
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// `POST /v1/events`; returns the status and the JSON answer (every answer of this endpoint is
    /// JSON, errors included).
    pub fn post(&self, content_type: &str, body: &str) -> (u16, serde_json::Value) {
        let response = self.request(
            "POST",
            "/v1/events",
            &[("Content-Type", content_type)],
            body.as_bytes(),
        );
        let json = response.json().unwrap_or_else(|e| {
            panic!(
                "POST /v1/events answered {} with a body that is not JSON ({e}): {:?}",
                response.status,
                response.text()
            )
        });
        (response.status, json)
    }

    /// Posts NDJSON lines and asserts the answer is 200 with `accepted` events and nothing else.
    pub fn post_ok(&self, ndjson: &str, accepted: u64) {
        let (status, answer) = self.post("application/x-ndjson", ndjson);
        assert_eq!(
            (status, &answer),
            (
                200,
                &serde_json::json!({"accepted": accepted, "duplicates": 0, "rejected": []})
            ),
            "posting:\n{ndjson}"
        );
    }

    pub fn metrics(&self) -> String {
        let response = self.get("/metrics");
        assert_eq!(response.status, 200, "/metrics: {}", response.text());
        response.text()
    }

    /// The value of one series, e.g. `backlogd_cases_open{track="asylum",location="Ter Apel"}`
    /// (label order does not matter); `None` when the series is not exported.
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric_value(&self.metrics(), series)
    }

    /// Scrapes `/metrics` until `check` accepts the text, and returns that text. The daemon answers
    /// a POST before it publishes the view that scrapes read, and republishes on every tick, so a
    /// value may trail an acknowledged request by up to one tick (`time.tick`, 1 s): allow two.
    pub fn await_metrics(&self, what: &str, check: impl Fn(&str) -> Result<(), String>) -> String {
        let started = Instant::now();
        loop {
            let text = self.metrics();
            match check(&text) {
                Ok(()) => return text,
                Err(problem) if started.elapsed() > METRICS_SETTLE => {
                    panic!("{what}: {problem}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Awaits (see `await_metrics`) `series` having the value `expected`.
    pub fn await_metric(&self, series: &str, expected: f64) {
        self.await_metrics(series, |text| match metric_value(text, series) {
            Some(actual) if actual == expected => Ok(()),
            actual => Err(format!("expected {expected}, got {actual:?}")),
        });
    }

    /// SIGTERM, then waits for the exit and asserts it is 0 (graceful shutdown).
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = self.await_exit();
        assert!(
            status.success(),
            "backlogd exited with {status} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }

    /// SIGKILL: the process gets no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.await_exit();
    }

    /// Waits (bounded) for the process to exit on its own and returns its status.
    pub fn await_exit(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for backlogd") {
                if let Some(drain) = self.stderr_drain.take() {
                    let _ = drain.join();
                }
                return status;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "backlogd did not exit within {PATIENCE:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `backlogd run --config CONFIG` with the store in `store_dir`, listening on `127.0.0.1:0` unless
/// `extra_env` overrides it (later variables win).
pub fn run_command(config: &Path, store_dir: &Path, extra_env: &[(&str, &str)]) -> Command {
    run_command_under(Command::new(BINARY), config, store_dir, extra_env)
}

/// Like `run_command`, with `command` as the program (e.g. `strace ... backlogd`): the arguments of
/// `backlogd run` are appended to it.
pub fn run_command_under(
    mut command: Command,
    config: &Path,
    store_dir: &Path,
    extra_env: &[(&str, &str)],
) -> Command {
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("BACKLOGD__SERVER__LISTEN", "127.0.0.1:0")
        .env("BACKLOGD__STORE__PATH", store_dir)
        .env_remove("RUST_LOG")
        .current_dir(store_dir.parent().unwrap_or(store_dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    command
}

/// Runs the daemon on a configuration it must refuse: waits (bounded) for it to exit and returns
/// the exit code and stderr. Panics, after killing it, if it is still running after `PATIENCE`.
pub fn run_expecting_exit(
    config: &Path,
    store_dir: &Path,
    extra_env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let stderr_path = store_dir.with_extension("refused.stderr");
    let stderr_file = std::fs::File::create(&stderr_path).expect("a stderr file can be created");
    let mut child = run_command(config, store_dir, extra_env)
        .stderr(stderr_file)
        .spawn()
        .expect("the backlogd binary starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for backlogd") {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "backlogd kept running for {PATIENCE:?} instead of refusing to start; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    (status.code(), stderr)
}

/// Runs `backlogd` with `args` (a CLI subcommand) and returns its output.
pub fn backlogd(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the backlogd binary runs")
}

/// An HTTP answer: status and body.
pub struct Response {
    pub status: u16,
    /// Header names in lower case, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
    }

    /// The body decoded as the answer type of the API (`backlogd::api`), or a panic naming what
    /// did not decode (a missing field by its name).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> T {
        backlogd::api::decode("test", &self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), with `Content-Length` unless a
/// `Transfer-Encoding` header is given. Connection errors are returned,
/// not panicked on, so the crash test can tell "the daemon is gone" from a wrong answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    exchange(&mut stream, addr, method, path, headers, body)
}

/// A TCP connection to `addr` from the local address `source` (e.g. `127.0.0.2`: every address of
/// 127.0.0.0/8 is the loopback interface on Linux), so a test can play several peers.
pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    // std cannot bind before connecting; tokio's socket can, on a one-off runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let stream = runtime.block_on(async {
        let socket = match source {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(addr).await?.into_std()
    })?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// Like `request`, on a connection from the local address `source` (see `connect_from`).
pub fn request_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = connect_from(source, addr)?;
    exchange(&mut stream, addr, method, path, headers, body)
}

/// Like `request`, over TLS with `client`, checking the certificate against the IP address of
/// `addr` (test certificates name 127.0.0.1). A failed handshake is an error.
pub fn tls_request(
    addr: SocketAddr,
    client: &Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    tcp.set_write_timeout(Some(PATIENCE))?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let connection =
        rustls::ClientConnection::new(client.clone(), name).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    exchange(&mut stream, addr, method, path, headers, body)
}

/// A TLS client configuration (the ring provider, TLS 1.2 and 1.3) that trusts exactly the
/// certificate `der` (a self-signed test certificate).
pub fn client_trusting(der: &[u8]) -> Arc<rustls::ClientConfig> {
    client_trusting_all(&[der])
}

/// Like `client_trusting`, trusting each of `ders`.
pub fn client_trusting_all(ders: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for der in ders {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
            .expect("the test certificate is a usable trust anchor");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Writes one request on `stream` and reads the answer until the server closes.
fn exchange(
    stream: &mut (impl Read + Write),
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    // With `Transfer-Encoding: chunked` the caller sends the body already chunked.
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    // A server may answer (413) and close before reading the whole body; the answer is what counts,
    // so a failed write is only reported when no answer can be read either.
    let written = stream.write_all(&message).and_then(|()| stream.flush());
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    if raw.is_empty() {
        written?;
        read?;
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let invalid = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what}: {:?}", String::from_utf8_lossy(raw)),
        )
    };
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of the response head"))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| invalid("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(name, value)| {
        name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked")
    });
    let mut body = raw[head_end + 4..].to_vec();
    if chunked {
        body = dechunk(&body).ok_or_else(|| invalid("bad chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A series key: metric name and its labels sorted by name.
pub type SeriesKey = (String, Vec<(String, String)>);

/// Every sample of an exposition text: (series, value as written).
pub fn samples(text: &str) -> Vec<(SeriesKey, String)> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, rest) = parse_series(line)
                .unwrap_or_else(|| panic!("cannot parse the exposition line {line:?}"));
            let value = rest.split_whitespace().next().unwrap_or("").to_owned();
            (key, value)
        })
        .collect()
}

/// The value of `series` in the exposition `text`; `None` when absent.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    let (wanted, _) =
        parse_series(series).unwrap_or_else(|| panic!("{series:?} is not a series selector"));
    samples(text)
        .into_iter()
        .find(|(key, _)| *key == wanted)
        .map(|(_, value)| parse_value(&value))
}

/// A sample value as Go's ParseFloat reads it (`+Inf`, `-Inf`, `NaN` included).
pub fn parse_value(value: &str) -> f64 {
    value
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("{value:?} is not a sample value"))
}

/// Parses `name{label="value",...}` at the start of `line`; returns the key and the rest of the line.
fn parse_series(line: &str) -> Option<(SeriesKey, &str)> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let equals = rest.find('=')?;
            let label = rest[..equals].trim().to_owned();
            rest = rest[equals + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let close = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break i,
                    other => value.push(other),
                }
            };
            rest = &rest[close + 1..];
            labels.push((label, value));
        }
    }
    labels.sort();
    Some(((name, labels), rest))
}

/// A free loopback port: bound, read and released (the server given it binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
