//! The commands' HTTP client (`src/client.rs`) against a daemon serving HTTPS with a certificate
//! issued by a test CA (rcgen): `send`, `reload`, `report` and `forecast` work with `--ca-file` and
//! with `SSL_CERT_FILE`; without the CA, with a scheme other than http and https, or with a wrong
//! token, every command fails at once (well within a second, without retrying), naming the reason;
//! a refused connection is still retried.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BINARY, Daemon, client_trusting, free_port, shipped_config};

/// A CA and a server certificate it issued for 127.0.0.1 and localhost, as PEM files.
struct TestPki {
    ca_der: Vec<u8>,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl TestPki {
    /// A new CA named `name`, and a server certificate it signs, written to `dir/NAME-ca.pem`,
    /// `dir/NAME.crt` and `dir/NAME.key`.
    fn new(dir: &Path, name: &str) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "backlogd");
        let certificate = params.signed_by(&key, &*ca).unwrap();
        let pki = TestPki {
            ca_der: ca.der().to_vec(),
            ca_file: dir.join(format!("{name}-ca.pem")),
            cert_file: dir.join(format!("{name}.crt")),
            key_file: dir.join(format!("{name}.key")),
        };
        std::fs::write(&pki.ca_file, ca.pem()).unwrap();
        std::fs::write(&pki.cert_file, certificate.pem()).unwrap();
        std::fs::write(&pki.key_file, key.serialize_pem()).unwrap();
        pki
    }
}

/// A daemon serving HTTPS with `pki`'s server certificate, ingest token `the-token` in
/// `dir/tokens`.
fn https_daemon(dir: &Path, pki: &TestPki) -> (Daemon, PathBuf) {
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "the-token\n").unwrap();
    let daemon = Daemon::start_tls(
        &shipped_config(),
        &dir.join("store"),
        &[
            (
                "BACKLOGD__SERVER__TLS_CERT_FILE",
                pki.cert_file.to_str().unwrap(),
            ),
            (
                "BACKLOGD__SERVER__TLS_KEY_FILE",
                pki.key_file.to_str().unwrap(),
            ),
            (
                "BACKLOGD__SERVER__INGEST_TOKENS_FILE",
                tokens.to_str().unwrap(),
            ),
        ],
        client_trusting(&pki.ca_der),
    );
    assert!(daemon.url().starts_with("https://"), "{}", daemon.url());
    (daemon, tokens)
}

/// Runs `backlogd ARGS` with neither `SSL_CERT_FILE` nor `SSL_CERT_DIR` from this environment, plus
/// `env`; returns the output and how long it took.
fn cli(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let started = Instant::now();
    let output = command.output().expect("the backlogd binary runs");
    (output, started.elapsed())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `employees` employee.joined and `cases` case.registered events an hour ago, ids prefixed with
/// `prefix`.
fn events(prefix: &str, employees: usize, cases: usize) -> String {
    let time = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let mut lines = Vec::new();
    for e in 0..employees {
        lines.push(format!(
            r#"{{"id":"{prefix}-j{e}","type":"employee.joined","time":"{time}","data":{{"employee":"{prefix}-e{e}","role":"caseworker","experienced":true}}}}"#
        ));
    }
    for c in 0..cases {
        lines.push(format!(
            r#"{{"id":"{prefix}-r{c}","type":"case.registered","time":"{time}","data":{{"case":"{prefix}-c{c}","track":"asylum"}}}}"#
        ));
    }
    lines.join("\n") + "\n"
}

#[test]
fn an_https_daemon_is_fed_reloaded_reported_on_and_forecast_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "server");
    let (daemon, tokens) = https_daemon(dir.path(), &pki);
    let url = daemon.url();
    let tokens = tokens.to_str().unwrap();
    let ca_file = pki.ca_file.to_str().unwrap();
    let (employees, cases) = (3, 7);
    // Trusting the CA by --ca-file, then by SSL_CERT_FILE; each round sends new events.
    let ways = [
        ("--ca-file", vec!["--ca-file", ca_file], None),
        ("SSL_CERT_FILE", vec![], Some(("SSL_CERT_FILE", ca_file))),
    ];
    for (round, (way, trust, env)) in ways.iter().enumerate() {
        let rounds = round + 1;
        let file = dir.path().join(format!("events-{round}.ndjson"));
        std::fs::write(&file, events(&format!("r{round}"), employees, cases)).unwrap();
        let run = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--url", &url, "--token-file", tokens]);
            all.extend(trust.iter().copied());
            let (output, took) = cli(&all, env.as_slice());
            assert!(
                output.status.success(),
                "{way}: backlogd {args:?} failed after {took:?}:\n{}{}",
                stdout(&output),
                stderr(&output)
            );
            output
        };

        let sent = run(&["send", file.to_str().unwrap()]);
        assert_eq!(
            stdout(&sent).lines().last(),
            Some(format!("accepted {}, duplicates 0, rejected 0", employees + cases).as_str()),
            "{way}"
        );
        daemon.await_metric(
            r#"backlogd_employees{role="caseworker",contract="permanent",experienced="true"}"#,
            (employees * rounds) as f64,
        );

        let reloaded = run(&["reload"]);
        assert_eq!(stdout(&reloaded).trim(), "reloaded", "{way}");
        // The configuration did not change: the reload is counted as one that found nothing new.
        daemon.await_metric("backlogd_config_reloads_unchanged_total", rounds as f64);

        let out = dir.path().join(format!("report-{round}.html"));
        run(&["report", "--lang", "nl", "--out", out.to_str().unwrap()]);
        let page = std::fs::read_to_string(&out).unwrap();
        assert!(
            page.starts_with("<!DOCTYPE html>") && page.contains("<html lang=\"nl\">"),
            "{way}: {page}"
        );

        let forecast = run(&["forecast", "--json", "--weeks", "3"]);
        let forecast: serde_json::Value = serde_json::from_slice(&forecast.stdout)
            .unwrap_or_else(|e| panic!("{way}: {e}: {}", stdout(&forecast)));
        assert_eq!(
            (
                forecast["observed"]["open"].as_f64(),
                forecast["observed"]["staff_experienced"].as_f64(),
                forecast["weeks"].as_array().map(Vec::len),
            ),
            (
                Some((cases * rounds) as f64),
                Some((employees * rounds) as f64),
                Some(3)
            ),
            "{way}: {forecast}"
        );
    }
    daemon.stop();
}

/// Asserts that `output` is a failure at once: exit 1, `needle` in the message, no retry, and
/// within a second (the issue's bound for a failure that retrying cannot help).
fn assert_fails_at_once(what: &str, output: &Output, took: Duration, needles: &[&str]) {
    let message = stderr(output);
    println!("{what}: failed after {took:?}: {}", message.trim());
    assert_eq!(output.status.code(), Some(1), "{what}: {message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{what}: expected {needle:?} in:\n{message}"
        );
    }
    assert!(!message.contains("retrying"), "{what} retried:\n{message}");
    assert!(
        took < Duration::from_secs(1),
        "{what}: took {took:?}, more than a second:\n{message}"
    );
}

/// Every command that makes a request, with `url` (and the rest of its arguments).
fn every_command<'a>(
    url: &'a str,
    events: &'a str,
    out: &'a str,
    rules: &'a str,
) -> Vec<(&'static str, Vec<&'a str>)> {
    vec![
        ("send", vec!["send", events, "--url", url]),
        ("reload", vec!["reload", "--url", url]),
        ("report", vec!["report", "--url", url, "--out", out]),
        ("forecast", vec!["forecast", "--url", url]),
        (
            "simulate --url",
            vec![
                "simulate",
                "--scenario",
                "steady",
                "--to",
                "2026-01-01",
                "--scale",
                "0.01",
                "--quiet",
                "--url",
                url,
            ],
        ),
        (
            "alert-replay",
            vec![
                "alert-replay",
                "--rules",
                rules,
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-02",
                "--prometheus",
                url,
            ],
        ),
    ]
}

#[test]
fn without_the_ca_every_https_command_fails_at_once_naming_the_certificate_problem() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "server");
    let stranger = TestPki::new(dir.path(), "stranger");
    let (daemon, tokens) = https_daemon(dir.path(), &pki);
    let url = daemon.url();
    let events_file = dir.path().join("events.ndjson");
    std::fs::write(&events_file, events("x", 1, 1)).unwrap();
    let out = dir.path().join("report.html");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus/backlogd-rules.yml");
    for (what, mut args) in every_command(
        &url,
        events_file.to_str().unwrap(),
        out.to_str().unwrap(),
        rules.to_str().unwrap(),
    ) {
        if what != "alert-replay" {
            args.extend(["--token-file", tokens.to_str().unwrap()]);
        }
        // Trusting another CA only.
        let mut with_stranger = args.clone();
        with_stranger.extend(["--ca-file", stranger.ca_file.to_str().unwrap()]);
        let (output, took) = cli(&with_stranger, &[]);
        assert_fails_at_once(
            &format!("{what} trusting another CA"),
            &output,
            took,
            &["invalid peer certificate: UnknownIssuer", "--ca-file"],
        );
        // Trusting the system's certificates, which do not include the test CA.
        let (output, took) = cli(&args, &[]);
        assert_fails_at_once(
            &format!("{what} trusting the system's certificates"),
            &output,
            took,
            &["invalid peer certificate: UnknownIssuer"],
        );
    }
    assert!(!out.exists(), "a report was written");
    // Nothing got through.
    assert_eq!(
        daemon.metric("backlogd_config_reloads_unchanged_total"),
        Some(0.0)
    );
    assert_eq!(
        daemon.metric(r#"backlogd_events_received_total{source="http"}"#),
        Some(0.0)
    );
    daemon.stop();
}

#[test]
fn a_bad_scheme_a_wrong_token_and_plain_http_to_tls_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "server");
    let (daemon, _tokens) = https_daemon(dir.path(), &pki);
    let https = daemon.url();
    let port = daemon.addr.port();
    let ftp = format!("ftp://127.0.0.1:{port}");
    let plain = format!("http://127.0.0.1:{port}");
    let wrong_tokens = dir.path().join("wrong-tokens");
    std::fs::write(&wrong_tokens, "not-the-token\n").unwrap();
    let events_file = dir.path().join("events.ndjson");
    std::fs::write(&events_file, events("x", 1, 1)).unwrap();
    let out = dir.path().join("report.html");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus/backlogd-rules.yml");
    let (events_file, out, rules) = (
        events_file.to_str().unwrap(),
        out.to_str().unwrap(),
        rules.to_str().unwrap(),
    );
    let ca = ["--ca-file", pki.ca_file.to_str().unwrap()];

    for (what, mut args) in every_command(&ftp, events_file, out, rules) {
        args.extend(ca);
        let (output, took) = cli(&args, &[]);
        assert_fails_at_once(
            &format!("{what} with ftp://"),
            &output,
            took,
            &[&format!(
                "{ftp}: the scheme is ftp; expected http:// or https://"
            )],
        );
    }
    // The daemon's TLS port asked in plain HTTP: it answers with a TLS alert, which is not HTTP.
    for (what, mut args) in every_command(&plain, events_file, out, rules) {
        args.extend(ca);
        let (output, took) = cli(&args, &[]);
        assert_fails_at_once(&format!("{what} with http://"), &output, took, &[&plain]);
    }
    // A token the daemon does not know: 401, which retrying cannot change.
    for (what, mut args) in every_command(&https, events_file, out, rules) {
        if what == "alert-replay" || what.starts_with("simulate") {
            // alert-replay sends no token; simulate's 401 is the same client's as send's.
            continue;
        }
        args.extend(ca);
        args.extend(["--token-file", wrong_tokens.to_str().unwrap()]);
        let (output, took) = cli(&args, &[]);
        assert_fails_at_once(
            &format!("{what} with a wrong token"),
            &output,
            took,
            &["401 Unauthorized"],
        );
    }
    assert_eq!(
        daemon.metric("backlogd_config_reloads_unchanged_total"),
        Some(0.0)
    );
    assert!(!Path::new(out).exists(), "a report was written");
    daemon.stop();
}

#[test]
fn a_refused_connection_is_retried_until_the_attempts_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let events_file = dir.path().join("events.ndjson");
    std::fs::write(&events_file, events("x", 1, 1)).unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let (output, took) = cli(
        &[
            "send",
            events_file.to_str().unwrap(),
            "--url",
            &url,
            "--max-attempts",
            "3",
        ],
        &[],
    );
    let message = stderr(&output);
    println!("refused, 3 attempts: {took:?}: {message}");
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert_eq!(
        message.matches("retrying in ").count(),
        2,
        "two retries before the third and last attempt:\n{message}"
    );
    assert!(
        message.contains(&format!(
            "giving up after 3 attempts: cannot connect to {url}: connection refused"
        )),
        "{message}"
    );
}

/// A server that accepts connections and reads, but never answers: before `--timeout`, every
/// command hung on it for ever. Each request command now gives up after its `--timeout`, naming
/// it, without retrying (the request may have been applied). The child is killed after 20 s, so a
/// hang fails the test instead of stalling the suite.
#[test]
fn a_daemon_that_accepts_but_never_answers_fails_the_command_after_its_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let mut connections = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok((stream, _)) = listener.accept() {
                    connections.push(stream); // held open, never answered
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let events_file = dir.path().join("events.ndjson");
    std::fs::write(&events_file, events("t", 1, 1)).unwrap();
    let out = dir.path().join("report.html");
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, "groups: []\n").unwrap();
    let (events_path, out_path, rules_path) = (
        events_file.to_str().unwrap(),
        out.to_str().unwrap(),
        rules.to_str().unwrap(),
    );
    for (what, mut args) in every_command(&url, events_path, out_path, rules_path) {
        if what == "alert-replay" {
            continue; // an empty rules file makes no request
        }
        args.extend(["--timeout", "1"]);
        let mut child = Command::new(BINARY)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the backlogd binary runs");
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let hung = child.try_wait().unwrap().is_none();
        if hung {
            child.kill().unwrap();
        }
        let output = child.wait_with_output().unwrap();
        let message = stderr(&output);
        println!("{what}: {:?}: {}", started.elapsed(), message.trim());
        assert!(!hung, "{what} still waiting after 20 s:\n{message}");
        assert_eq!(output.status.code(), Some(1), "{what}: {message}");
        assert!(
            message.contains("no answer within 1s"),
            "{what}: expected the timeout named in:\n{message}"
        );
        assert!(!message.contains("retrying"), "{what} retried:\n{message}");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    held.join().unwrap();
}
