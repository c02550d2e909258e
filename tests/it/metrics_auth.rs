//! Basic auth for `/metrics` (`server.metrics_users_file`), as a scraper meets it: the challenge,
//! refusals, listed users, rotation of the file on reload, and refused starts. Hashes are made
//! here with the bcrypt crate at cost 4 (the lowest), to keep the tests fast.

use base64::Engine as _;
use serde_json::Value;

use crate::harness::{Daemon, run_expecting_exit, shipped_config};

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn line(user: &str, password: &str) -> String {
    format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap())
}

/// The status of `GET /metrics` with `authorization` (none when `None`).
fn scrape(daemon: &Daemon, authorization: Option<&str>) -> u16 {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| ("Authorization", value))
        .into_iter()
        .collect();
    daemon.request("GET", "/metrics", &headers, b"").status
}

#[test]
fn metrics_basic_auth_admits_only_listed_users_with_their_password() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("metrics-users");
    std::fs::write(
        &users,
        format!(
            "# Prometheus servers\n{}\n{}",
            line("prometheus", "scrape-secret-1"),
            line("grafana-agent", "other secret:with colon")
        ),
    )
    .unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[(
            "BACKLOGD__SERVER__METRICS_USERS_FILE",
            users.to_str().unwrap(),
        )],
    );

    let refused = daemon.get("/metrics");
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Basic realm=\"backlogd\"")
    );
    let answer = refused.json().unwrap_or(Value::Null);
    assert!(answer["error"].is_string(), "{answer}");
    assert!(!refused.text().contains("backlogd_build_info"));
    for (what, authorization) in [
        ("a wrong password", basic("prometheus", "scrape-secret-2")),
        ("an unknown user", basic("nobody", "scrape-secret-1")),
        (
            "another user's password",
            basic("grafana-agent", "scrape-secret-1"),
        ),
        ("an empty password", basic("prometheus", "")),
        ("a bearer token", "Bearer scrape-secret-1".to_owned()),
        ("not base64", "Basic %%%".to_owned()),
    ] {
        assert_eq!(scrape(&daemon, Some(&authorization)), 401, "{what}");
    }

    let admitted = daemon.request(
        "GET",
        "/metrics",
        &[("Authorization", &basic("prometheus", "scrape-secret-1"))],
        b"",
    );
    assert_eq!(admitted.status, 200, "{}", admitted.text());
    assert!(admitted.text().contains("backlogd_build_info"));
    // Repeated scrapes (cached after the first bcrypt), the second user, a password with a colon.
    for _ in 0..3 {
        assert_eq!(
            scrape(&daemon, Some(&basic("prometheus", "scrape-secret-1"))),
            200
        );
    }
    assert_eq!(
        scrape(
            &daemon,
            Some(&basic("grafana-agent", "other secret:with colon"))
        ),
        200
    );
    for path in ["/healthz", "/readyz"] {
        assert_eq!(daemon.get(path).status, 200, "{path} stays open");
    }
    daemon.stop();
}

#[test]
fn metrics_users_rotate_on_reload_and_a_malformed_file_keeps_the_running_users() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("metrics-users");
    std::fs::write(&users, line("prometheus", "old-password")).unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[(
            "BACKLOGD__SERVER__METRICS_USERS_FILE",
            users.to_str().unwrap(),
        )],
    );
    let old = basic("prometheus", "old-password");
    let new = basic("prometheus", "new-password");
    assert_eq!(scrape(&daemon, Some(&old)), 200);
    assert_eq!(scrape(&daemon, Some(&new)), 401);

    std::fs::write(&users, line("prometheus", "new-password")).unwrap();
    daemon.signal("HUP");
    let started = std::time::Instant::now();
    while scrape(&daemon, Some(&new)) != 200 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the new password was not accepted after SIGHUP:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The old password was verified (and cached) before: the reload forgets it.
    assert_eq!(
        scrape(&daemon, Some(&old)),
        401,
        "the old password still works"
    );

    // A malformed line: the reload fails naming the file and the line, the running users stay.
    std::fs::write(
        &users,
        format!("# rotated\n{}prometheus plaintext\n", line("x", "y")),
    )
    .unwrap();
    let reload = daemon.request("POST", "/-/reload", &[], b"");
    assert_eq!(reload.status, 400, "{}", reload.text());
    let error = reload.json().unwrap()["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        error,
        format!(
            "server.metrics_users_file: {} line 3: no `:`; expected `user:bcrypt-hash`",
            users.display()
        )
    );
    assert_eq!(scrape(&daemon, Some(&new)), 200);
    assert_eq!(scrape(&daemon, Some(&basic("x", "y"))), 401);
    daemon.stop();
}

#[test]
fn metrics_users_file_that_cannot_be_used_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("metrics-users");
    std::fs::write(&users, "prometheus:$2y$10$not-a-hash\n").unwrap();
    let missing = dir.path().join("missing-users");
    for (file, expected) in [
        (
            &users,
            format!(
                "server.metrics_users_file: {} line 1: the hash is not a bcrypt hash",
                users.display()
            ),
        ),
        (
            &missing,
            format!(
                "server.metrics_users_file: cannot read {}: ",
                missing.display()
            ),
        ),
    ] {
        let (code, stderr) = run_expecting_exit(
            &shipped_config(),
            &dir.path().join("store"),
            &[(
                "BACKLOGD__SERVER__METRICS_USERS_FILE",
                file.to_str().unwrap(),
            )],
        );
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(&expected),
            "expected {expected:?} in:\n{stderr}"
        );
        assert!(
            !stderr.contains("not-a-hash"),
            "the hash is quoted:\n{stderr}"
        );
    }
}

/// What the attacking threads of `wrong_passwords_…` saw.
#[derive(Default)]
struct AttackCounts {
    /// 401 answers: each is one bcrypt the daemon ran (every attempt has a new password).
    refused: std::sync::atomic::AtomicU64,
    /// 429 answers: the peer already had a check waiting.
    peer_busy: std::sync::atomic::AtomicU64,
    /// 503 answers: `server.metrics_auth_queue` checks were waiting.
    queue_full: std::sync::atomic::AtomicU64,
    /// Anything else (a status or a connection error), as text.
    unexpected: std::sync::Mutex<Vec<String>>,
}

/// Issue 24, finding 1: attackers hammering `/metrics` with wrong passwords (each a new one, so
/// each costs a bcrypt) from two other addresses must not hold up a listed scraper's first,
/// uncached check. Measured without a clock: the attackers count the 401s they receive, each one
/// bcrypt the daemon ran; between the scraper's request and its answer at most the checks already
/// waiting may finish: one per attacking peer plus one running, and one answer per peer in
/// transit. Before the fix every attacking connection's check was queued ahead of the scraper
/// (one FIFO turn for all), so about 32 refusals arrived while it waited.
#[test]
fn wrong_passwords_from_other_peers_do_not_hold_up_a_listed_scraper() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    const COST: u32 = 8;
    const PEERS: [&str; 2] = ["127.0.0.2", "127.0.0.3"];
    const CONNECTIONS_PER_PEER: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("metrics-users");
    let prometheus_hash = bcrypt::hash("scrape-secret", COST).unwrap();
    std::fs::write(
        &users,
        format!(
            "prometheus:{prometheus_hash}\nagent:{}\n",
            bcrypt::hash("agent-secret", COST).unwrap()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[(
            "BACKLOGD__SERVER__METRICS_USERS_FILE",
            users.to_str().unwrap(),
        )],
    );
    let addr = daemon.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(AttackCounts::default());
    let deadline = Instant::now() + Duration::from_secs(60);
    let attackers: Vec<_> = PEERS
        .iter()
        .flat_map(|peer| (0..CONNECTIONS_PER_PEER).map(move |n| (*peer, n)))
        .map(|(peer, n)| {
            let (stop, counts) = (stop.clone(), counts.clone());
            std::thread::spawn(move || {
                let source: std::net::IpAddr = peer.parse().unwrap();
                for attempt in 0..100_000 {
                    if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                        break;
                    }
                    let authorization = basic("prometheus", &format!("wrong-{peer}-{n}-{attempt}"));
                    let answer = crate::harness::request_from(
                        source,
                        addr,
                        "GET",
                        "/metrics",
                        &[("Authorization", &authorization)],
                        b"",
                    );
                    let counter = match answer.as_ref().map(|a| a.status) {
                        Ok(401) => &counts.refused,
                        Ok(429) => &counts.peer_busy,
                        Ok(503) => &counts.queue_full,
                        other => {
                            counts.unexpected.lock().unwrap().push(format!("{other:?}"));
                            break;
                        }
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    if answer.is_ok_and(|a| a.status != 401) {
                        // A turned-away attacker comes straight back; a short pause only spares
                        // the test machine's CPU.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        })
        .collect();

    // The attack is under way once every connection has been answered a few times over.
    let answered = || {
        counts.refused.load(Ordering::SeqCst)
            + counts.peer_busy.load(Ordering::SeqCst)
            + counts.queue_full.load(Ordering::SeqCst)
    };
    let started = Instant::now();
    while answered() < (2 * PEERS.len() * CONNECTIONS_PER_PEER) as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the attack did not get going: {} answers; {:?}",
            answered(),
            counts.unexpected.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The cost of one bcrypt at this cost, on this machine, under this load.
    let timed = Instant::now();
    assert!(bcrypt::verify("scrape-secret", &prometheus_hash).unwrap());
    let bcrypt_cost = timed.elapsed();

    let bound = 2 * PEERS.len() as u64 + 1;
    for (user, password) in [("prometheus", "scrape-secret"), ("agent", "agent-secret")] {
        let before = counts.refused.load(Ordering::SeqCst);
        let timed = Instant::now();
        let status = scrape(&daemon, Some(&basic(user, password)));
        let latency = timed.elapsed();
        let waited_behind = counts.refused.load(Ordering::SeqCst) - before;
        eprintln!(
            "{user}: first scrape {status} in {latency:?} (one bcrypt here: {bcrypt_cost:?}) while {waited_behind} wrong passwords were refused"
        );
        assert_eq!(status, 200, "{user}");
        assert!(
            waited_behind <= bound,
            "{user}'s first scrape waited behind {waited_behind} attackers' checks (at most {bound})"
        );
    }
    stop.store(true, Ordering::SeqCst);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    let unexpected = counts.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    let refused = counts.refused.load(Ordering::SeqCst);
    let peer_busy = counts.peer_busy.load(Ordering::SeqCst);
    let queue_full = counts.queue_full.load(Ordering::SeqCst);
    eprintln!(
        "attackers: {refused} refused (one bcrypt each), {peer_busy} turned away as busy, {queue_full} as queue full"
    );

    // The daemon's own figures agree with what the attackers saw: every refusal cost one bcrypt
    // (distinct passwords), the two scrapers one each; every 429 and 503 is counted by cause.
    let good = basic("prometheus", "scrape-secret");
    let text = daemon
        .request("GET", "/metrics", &[("Authorization", &good)], b"")
        .text();
    let value = |series: &str| crate::harness::metric_value(&text, series).unwrap_or(-1.0);
    assert_eq!(
        value("backlogd_metrics_auth_checks_total"),
        (refused + 2) as f64
    );
    assert_eq!(
        value("backlogd_metrics_auth_refused_total{cause=\"peer_busy\"}"),
        peer_busy as f64
    );
    assert_eq!(
        value("backlogd_metrics_auth_refused_total{cause=\"queue_full\"}"),
        queue_full as f64
    );

    // A wrong password repeated costs one bcrypt, not one per attempt.
    let repeated = basic("prometheus", "the same wrong password");
    for _ in 0..20 {
        assert_eq!(scrape(&daemon, Some(&repeated)), 401);
    }
    let text = daemon
        .request("GET", "/metrics", &[("Authorization", &good)], b"")
        .text();
    assert_eq!(
        crate::harness::metric_value(&text, "backlogd_metrics_auth_checks_total"),
        Some((refused + 3) as f64)
    );
    daemon.stop();
}
