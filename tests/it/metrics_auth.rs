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
