//! TLS on the listener (`server.tls_cert_file`, `server.tls_key_file`), against the real binary with
//! a self-signed certificate made here (rcgen) and a real TLS client (rustls) that trusts exactly
//! that certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{
    Daemon, client_trusting, client_trusting_all, run_expecting_exit, shipped_config, tls_request,
};

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
struct TestCertificate {
    der: Vec<u8>,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl TestCertificate {
    /// A new key pair and certificate, written to `dir/NAME.crt` and `dir/NAME.key`.
    fn new(dir: &Path, name: &str) -> TestCertificate {
        let generated = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("rcgen makes a self-signed certificate");
        TestCertificate::write(dir, name, &generated.cert, &generated.signing_key)
    }

    /// Like `new`, valid until midnight UTC at the start of `not_after` (year, month, day).
    fn expiring(dir: &Path, name: &str, not_after: (i32, u8, u8)) -> TestCertificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let certificate = params.self_signed(&key).unwrap();
        TestCertificate::write(dir, name, &certificate, &key)
    }

    /// Writes `certificate` and `key` to `dir/NAME.crt` and `dir/NAME.key`.
    fn write(
        dir: &Path,
        name: &str,
        certificate: &rcgen::Certificate,
        key: &rcgen::KeyPair,
    ) -> TestCertificate {
        let cert_file = dir.join(format!("{name}.crt"));
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&cert_file, certificate.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        TestCertificate {
            der: certificate.der().to_vec(),
            cert_file,
            key_file,
        }
    }

    /// Copies this certificate's files over `target`'s (a rotation by the certificate manager).
    fn install_as(&self, target: &TestCertificate) {
        std::fs::copy(&self.cert_file, &target.cert_file).unwrap();
        std::fs::copy(&self.key_file, &target.key_file).unwrap();
    }
}

/// The environment that turns TLS on with `certificate`'s files.
fn tls_env(certificate: &TestCertificate) -> [(&'static str, &str); 2] {
    [
        (
            "BACKLOGD__SERVER__TLS_CERT_FILE",
            certificate.cert_file.to_str().unwrap(),
        ),
        (
            "BACKLOGD__SERVER__TLS_KEY_FILE",
            certificate.key_file.to_str().unwrap(),
        ),
    ]
}

#[test]
fn tls_serves_metrics_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let certificate = TestCertificate::new(dir.path(), "server");
    let daemon = Daemon::start_tls(
        &shipped_config(),
        &dir.path().join("store"),
        &tls_env(&certificate),
        client_trusting(&certificate.der),
    );
    assert!(
        daemon.url().starts_with("https://127.0.0.1:"),
        "{}",
        daemon.url()
    );
    // `start_tls` awaited /readyz over TLS; /metrics answers there too.
    let metrics = daemon.get("/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert!(metrics.text().contains("backlogd_build_info"));

    // A client that does not trust the certificate fails the handshake.
    let stranger = TestCertificate::new(dir.path(), "stranger");
    let refused = tls_request(
        daemon.addr,
        &client_trusting(&stranger.der),
        "GET",
        "/metrics",
        &[],
        b"",
    );
    assert!(refused.is_err(), "an untrusted certificate was accepted");

    // Plain HTTP to the TLS port: no HTTP answer, at most a TLS alert, and the connection closes.
    let mut plain = TcpStream::connect(daemon.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: backlogd\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let read = plain.read_to_end(&mut answer);
    assert!(
        !matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut),
        "the connection stayed open after a plain-HTTP request"
    );
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // 0x15: a TLS alert record.
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "plain HTTP got something other than a TLS alert: {answer:?}"
    );
    daemon.stop();
}

#[test]
fn tls_ingest_needs_the_token_as_over_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let certificate = TestCertificate::new(dir.path(), "server");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "tls-token-123\n").unwrap();
    let mut env = tls_env(&certificate).to_vec();
    env.push((
        "BACKLOGD__SERVER__INGEST_TOKENS_FILE",
        tokens.to_str().unwrap(),
    ));
    let daemon = Daemon::start_tls(
        &shipped_config(),
        &dir.path().join("store"),
        &env,
        client_trusting(&certificate.der),
    );
    let time = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap()
        .to_string();
    let body = json!({"id": "tls-1", "type": "employee.joined", "time": time,
        "data": {"employee": "w-1", "role": "caseworker", "experienced": true}})
    .to_string();
    let without = daemon.request(
        "POST",
        "/v1/events",
        &[("Content-Type", "application/x-ndjson")],
        body.as_bytes(),
    );
    assert_eq!(without.status, 401, "{}", without.text());
    let with = daemon.request(
        "POST",
        "/v1/events",
        &[
            ("Content-Type", "application/x-ndjson"),
            ("Authorization", "Bearer tls-token-123"),
        ],
        body.as_bytes(),
    );
    assert_eq!(
        (with.status, with.json().ok()),
        (
            200,
            Some(json!({"accepted": 1, "duplicates": 0, "rejected": []}))
        ),
        "{}",
        with.text()
    );
    daemon.await_metric(
        r#"backlogd_employees{role="caseworker",contract="permanent",experienced="true"}"#,
        1.0,
    );
    daemon.stop();
}

#[test]
fn tls_handshake_that_never_completes_is_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let certificate = TestCertificate::new(dir.path(), "server");
    let mut env = tls_env(&certificate).to_vec();
    env.push(("BACKLOGD__SERVER__HEADER_TIMEOUT", "PT1S"));
    let daemon = Daemon::start_tls(
        &shipped_config(),
        &dir.path().join("store"),
        &env,
        client_trusting(&certificate.der),
    );
    // One connection sends nothing, another the first bytes of a ClientHello record and stops.
    let started = Instant::now();
    let mut silent = TcpStream::connect(daemon.addr).unwrap();
    let mut partial = TcpStream::connect(daemon.addr).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    // Meanwhile the listener keeps accepting, and other handshakes complete at once.
    for _ in 0..3 {
        let asked = Instant::now();
        assert_eq!(daemon.get("/metrics").status, 200);
        assert!(
            asked.elapsed() < Duration::from_millis(900),
            "a scrape waited {:?} behind stalled handshakes",
            asked.elapsed()
        );
    }
    for (what, stream) in [("silent", &mut silent), ("partial", &mut partial)] {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        let closed_after = started.elapsed();
        assert!(
            !matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut),
            "the {what} connection was still open after {closed_after:?}"
        );
        println!("stalled TLS handshake ({what}) closed after {closed_after:?}");
        assert!(
            closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
            "the {what} connection was closed after {closed_after:?}, not after \
             server.header_timeout (1 s)"
        );
    }
    daemon.stop();
}

#[test]
fn tls_certificate_rotates_on_reload_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let live = TestCertificate::new(dir.path(), "live");
    let first = TestCertificate::new(dir.path(), "first");
    first.install_as(&live);
    let daemon = Daemon::start_tls(
        &shipped_config(),
        &dir.path().join("store"),
        &tls_env(&live),
        client_trusting(&first.der),
    );
    let scrape = |trusting: &TestCertificate| {
        tls_request(
            daemon.addr,
            &client_trusting(&trusting.der),
            "GET",
            "/metrics",
            &[],
            b"",
        )
        .map(|response| response.status)
    };
    assert_eq!(scrape(&first).ok(), Some(200));

    // The certificate manager renews: SIGHUP, and new handshakes present the new certificate.
    let second = TestCertificate::new(dir.path(), "second");
    second.install_as(&live);
    daemon.signal("HUP");
    let started = Instant::now();
    while scrape(&second).ok() != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the renewed certificate was not presented after SIGHUP:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        scrape(&first).is_err(),
        "the old certificate is still presented"
    );

    // A broken renewal: POST /-/reload fails naming the file, and the running certificate stays.
    std::fs::write(
        &live.cert_file,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let reload = tls_request(
        daemon.addr,
        &client_trusting(&second.der),
        "POST",
        "/-/reload",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(reload.status, 400, "{}", reload.text());
    let error = reload.json().unwrap()["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        error.starts_with("server.tls_cert_file: ")
            && error.contains(live.cert_file.to_str().unwrap()),
        "the reload error must name the key and the file: {error}"
    );
    // A key that is not the certificate's.
    second.install_as(&live);
    std::fs::copy(&first.key_file, &live.key_file).unwrap();
    let reload = tls_request(
        daemon.addr,
        &client_trusting(&second.der),
        "POST",
        "/-/reload",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(reload.status, 400, "{}", reload.text());
    let error = reload.json().unwrap()["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        error.starts_with("server.tls_key_file: ")
            && error.contains("is not the private key of the first certificate"),
        "{error}"
    );
    assert_eq!(scrape(&second).ok(), Some(200));
    daemon.await_metric("backlogd_config_last_reload_successful", 0.0);
    daemon.stop();
}

#[test]
fn tls_files_that_cannot_be_used_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let certificate = TestCertificate::new(dir.path(), "server");
    let other = TestCertificate::new(dir.path(), "other");
    let missing = dir.path().join("missing.key");
    let not_pem = dir.path().join("not-pem.crt");
    std::fs::write(&not_pem, "just text\n").unwrap();
    let cert = certificate.cert_file.to_str().unwrap();
    let key = certificate.key_file.to_str().unwrap();
    for (what, cert_file, key_file, expected) in [
        (
            "a missing key file",
            cert,
            missing.to_str().unwrap(),
            format!("server.tls_key_file: cannot read {}: ", missing.display()),
        ),
        (
            "a file without a certificate",
            not_pem.to_str().unwrap(),
            key,
            format!(
                "server.tls_cert_file: {} holds no certificate",
                not_pem.display()
            ),
        ),
        (
            "a certificate as the key",
            cert,
            cert,
            format!(
                "server.tls_key_file: {} holds no private key",
                certificate.cert_file.display()
            ),
        ),
        (
            "another certificate's key",
            cert,
            other.key_file.to_str().unwrap(),
            format!(
                "server.tls_key_file: {} is not the private key of the first certificate in {}",
                other.key_file.display(),
                certificate.cert_file.display()
            ),
        ),
        (
            "only the certificate",
            cert,
            "",
            "server.tls_key_file: missing".to_owned(),
        ),
    ] {
        let (code, stderr) = run_expecting_exit(
            &shipped_config(),
            &dir.path().join("store"),
            &[
                ("BACKLOGD__SERVER__TLS_CERT_FILE", cert_file),
                ("BACKLOGD__SERVER__TLS_KEY_FILE", key_file),
            ],
        );
        assert_eq!(code, Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains(&expected),
            "{what}: expected {expected:?} in:\n{stderr}"
        );
        assert!(
            !stderr.contains("listening"),
            "{what}: it listened:\n{stderr}"
        );
    }
}

#[test]
fn tls_with_basic_auth_on_metrics() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let certificate = TestCertificate::new(dir.path(), "server");
    let users = dir.path().join("metrics-users");
    let hash = bcrypt::hash("over-tls", 4).unwrap();
    std::fs::write(&users, format!("prometheus:{hash}\n")).unwrap();
    let mut env = tls_env(&certificate).to_vec();
    env.push((
        "BACKLOGD__SERVER__METRICS_USERS_FILE",
        users.to_str().unwrap(),
    ));
    let daemon = Daemon::start_tls(
        &shipped_config(),
        &dir.path().join("store"),
        &env,
        client_trusting(&certificate.der),
    );
    let refused = daemon.get("/metrics");
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Basic realm=\"backlogd\"")
    );
    let credentials = base64::engine::general_purpose::STANDARD.encode("prometheus:over-tls");
    let admitted = daemon.request(
        "GET",
        "/metrics",
        &[("Authorization", &format!("Basic {credentials}"))],
        b"",
    );
    assert_eq!(admitted.status, 200, "{}", admitted.text());
    assert!(admitted.text().contains("backlogd_build_info"));
    daemon.stop();
}

/// Midnight UTC at the start of the day (year, month, day), in seconds since the epoch: computed
/// with jiff, independently of rcgen, which wrote the certificate, and of x509-cert, which the
/// daemon reads it with.
fn midnight_utc((year, month, day): (i32, u8, u8)) -> f64 {
    jiff::civil::date(year as i16, month as i8, day as i8)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second() as f64
}

#[test]
fn tls_certificate_expiry_is_exported_and_follows_a_reload() {
    const EXPIRY: &str = "backlogd_tls_certificate_not_after_timestamp_seconds";
    let dir = tempfile::tempdir().unwrap();
    let live = TestCertificate::new(dir.path(), "live");
    // Before 2050 a certificate writes its validity as UTCTime, from 2050 on as GeneralizedTime.
    let (first_day, second_day) = ((2049, 12, 31), (2050, 1, 2));
    let first = TestCertificate::expiring(dir.path(), "first", first_day);
    let second = TestCertificate::expiring(dir.path(), "second", second_day);
    first.install_as(&live);
    let daemon = Daemon::start_tls(
        &shipped_config(),
        &dir.path().join("store"),
        &tls_env(&live),
        client_trusting_all(&[&first.der, &second.der]),
    );
    assert_eq!(daemon.metric(EXPIRY), Some(midnight_utc(first_day)));

    // A renewal: the reload reads the new certificate, and the gauge follows.
    second.install_as(&live);
    daemon.signal("HUP");
    daemon.await_metric(EXPIRY, midnight_utc(second_day));

    // A broken renewal keeps the running certificate, and its expiry.
    std::fs::write(&live.cert_file, "not a certificate\n").unwrap();
    daemon.signal("HUP");
    daemon.await_metric("backlogd_config_last_reload_successful", 0.0);
    assert_eq!(daemon.metric(EXPIRY), Some(midnight_utc(second_day)));
    daemon.stop();
}
