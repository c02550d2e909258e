//! Smaller findings of issue 24 at the HTTP edge: ambiguous credentials, the reload guard behind a
//! dual-stack listener, query parameters of the drill-down, look-alike ids, and requests the HTTP
//! parser refuses. Each test failed before its fix.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::harness::{Daemon, request};

/// Two `Authorization` headers are ambiguous (which one did a proxy check?): refused with 400,
/// whichever comes first, on the bearer-token endpoints and on `/metrics`. Before the fix only the
/// first was checked, so a good token first and anything after it passed.
#[test]
fn two_authorization_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "good-token\n").unwrap();
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        format!("prom:{}\n", bcrypt::hash("secret", 4).unwrap()),
    )
    .unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[
            (
                "BACKLOGD__SERVER__INGEST_TOKENS_FILE",
                tokens.to_str().unwrap(),
            ),
            (
                "BACKLOGD__SERVER__METRICS_USERS_FILE",
                users.to_str().unwrap(),
            ),
        ],
    );
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("prom:secret")
    );
    for (path, good, other) in [
        ("/v1/targets", "Bearer good-token", "Bearer other"),
        ("/v1/cases/overdue", "Bearer good-token", "Bearer other"),
        ("/metrics", basic.as_str(), "Basic b3RoZXI6eA=="),
    ] {
        assert_eq!(
            daemon
                .request("GET", path, &[("Authorization", good)], b"")
                .status,
            200,
            "{path} with one good header"
        );
        for headers in [
            [("Authorization", good), ("Authorization", other)],
            [("Authorization", other), ("Authorization", good)],
            [("Authorization", good), ("Authorization", good)],
        ] {
            let response = daemon.request("GET", path, &headers, b"");
            assert_eq!(
                response.status,
                400,
                "{path} {headers:?}: {}",
                response.text()
            );
            assert_eq!(
                response.json().unwrap()["error"],
                "the request has 2 Authorization headers; send one",
                "{path}"
            );
        }
    }
    daemon.stop();
}

/// On a dual-stack listener (`[::]`) a client on 127.0.0.1 arrives as `::ffff:127.0.0.1`: that is
/// the loopback interface, and reload is accepted. Before the fix it was refused with 403.
#[test]
fn reload_from_the_v4_mapped_loopback_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[
            ("BACKLOGD__SERVER__LISTEN", "[::]:0"),
            ("BACKLOGD__SERVER__ALLOW_UNAUTHENTICATED", "true"),
        ],
    );
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), daemon.addr.port());
    let response = request(v4, "POST", "/-/reload", &[], b"").unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    daemon.stop();
}

/// `GET /v1/cases/overdue` refuses what it cannot answer truthfully, like `/v1/history`: an
/// unknown parameter, and a track that is not configured (which answered `[]`, as if none of its
/// cases were overdue).
#[test]
fn overdue_refuses_unknown_parameters_and_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    for (query, expected) in [
        (
            "?track=nope",
            "query parameter `track`: \"nope\" is not a configured track (configured: asylum)",
        ),
        (
            "?trak=asylum",
            "query parameter `trak`: unknown; expected `track`, `location` or `limit`",
        ),
    ] {
        let response = daemon.get(&format!("/v1/cases/overdue{query}"));
        assert_eq!(response.status, 400, "{query}: {}", response.text());
        assert_eq!(response.json().unwrap()["error"], expected, "{query}");
    }
    for query in ["?track=asylum", "?location=Ter+Apel&limit=5", ""] {
        let response = daemon.get(&format!("/v1/cases/overdue{query}"));
        assert_eq!(response.status, 200, "{query}: {}", response.text());
    }
    daemon.stop();
}

/// Ids are opaque and compared byte for byte (docs/events.md, "Ids"): the NFC and the NFD
/// spelling of `Z-café` are two cases, as the case system that sent them keeps them apart. An
/// event with a non-ASCII id is counted in `backlogd_events_non_ascii_ids_total` and logged (at
/// most one line a minute), so an operator can see that look-alike ids arrive. Before the fix
/// the two cases were made silently: no counter, no log line.
#[test]
fn non_ascii_ids_are_kept_apart_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let nfc = "Z-caf\u{e9}";
    let nfd = "Z-cafe\u{301}";
    assert_ne!(nfc.as_bytes(), nfd.as_bytes());
    let registered = |id: &str, case: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","type":"case.registered","source":"it","time":"2025-01-06T09:00:00Z","data":{{"case":"{case}","track":"asylum"}}}}"#
        )
    };
    // Two non-ASCII case ids, one non-ASCII event id, one event that is ASCII throughout.
    let body = [
        registered("e-1", nfc),
        registered("e-2", nfd),
        registered("\u{e9}-3", "Z-3"),
        registered("e-4", "Z-4"),
    ]
    .join("\n");
    daemon.post_ok(&body, 4);
    daemon.await_metric("backlogd_cases_known", 4.0);
    daemon.await_metric("backlogd_events_non_ascii_ids_total", 3.0);
    let line = daemon.await_stderr("non-ASCII");
    assert!(line.contains("e-1") && line.contains("data.case"), "{line}");
    assert!(
        !line.contains(nfc),
        "the log names the field, not the id: {line}"
    );
    let lines = daemon.stderr();
    assert_eq!(
        lines.matches("non-ASCII").count(),
        1,
        "one line a minute at most:\n{lines}"
    );
    daemon.stop();
}

/// Status, headers (lower-case names) and body of one response.
type RawResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// Sends `bytes` on a fresh connection and reads until the server closes; returns each response
/// as (status, headers with lower-case names, body), in order. Bodies are framed by
/// `Content-Length` (every answer of the daemon has one).
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<RawResponse> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let mut responses = Vec::new();
    let mut rest = &raw[..];
    while !rest.is_empty() {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(rest)));
        let head = std::str::from_utf8(&rest[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let body = rest[end + 4..end + 4 + length].to_vec();
        rest = &rest[end + 4 + length..];
        responses.push((status, headers, body));
    }
    responses
}

/// The requests hyper's parser refuses before our code sees them (a malformed head, a request
/// target over 65,534 bytes, more than 100 header fields) are answered with the JSON error shape
/// of every other refusal, saying what was wrong, and the connection is closed; also after a good
/// request on the same connection (pipelined). Before the fix hyper's own 400, 414 and 431 had
/// empty bodies.
#[test]
fn parser_refusals_answer_with_the_json_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let many_headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long_target = format!("/v1/history?x={}", "a".repeat(70_000));
    let good = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases = [
        (
            "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n".to_owned(),
            400,
            "the request is not valid HTTP/1.1",
        ),
        (
            "GET /healthz HTTP/9.9\r\n\r\n".to_owned(),
            400,
            "the request is not valid HTTP/1.1",
        ),
        (
            format!("GET {long_target} HTTP/1.1\r\nHost: x\r\n\r\n"),
            414,
            "the request target is longer than 65534 bytes",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
            431,
            "the request head has more than 100 header fields or more than 409600 bytes",
        ),
    ];
    for (bad, status, message) in &cases {
        for pipelined in [false, true] {
            let bytes = if pipelined {
                format!("{good}{bad}")
            } else {
                bad.clone()
            };
            let responses = raw_exchange(daemon.addr, bytes.as_bytes());
            let what = format!("{status} pipelined={pipelined}: {responses:?}");
            assert_eq!(responses.len(), 1 + usize::from(pipelined), "{what}");
            if pipelined {
                assert_eq!(responses[0].0, 200, "{what}");
            }
            let (got, headers, body) = responses.last().unwrap();
            assert_eq!(got, status, "{what}");
            assert!(
                headers
                    .iter()
                    .any(|(n, v)| n == "content-type" && v == "application/json"),
                "{what}"
            );
            assert!(
                headers
                    .iter()
                    .any(|(n, v)| n == "connection" && v == "close"),
                "{what}"
            );
            let json: serde_json::Value =
                serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
            let error = json["error"].as_str().unwrap_or_else(|| panic!("{what}"));
            assert!(error.starts_with(message), "{what}");
        }
    }
    // The daemon still serves.
    assert_eq!(daemon.get("/healthz").status, 200);
    daemon.stop();
}

/// A location holds a label only while it has an open case (docs/metrics.md, "Locations"): three
/// junk locations whose cases are all closed no longer keep a real location in `other`, also
/// after a restart; a junk location whose case reopens comes back, and then the real location,
/// seen after it, is the one beyond `limits.max_locations` and counts in `other`. Before the fix
/// the first three locations ever seen kept their labels for good, and `Ter Apel` stayed in
/// `other` (before and after a restart).
#[test]
fn location_labels_are_freed_when_their_cases_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let env = [("BACKLOGD__LIMITS__MAX_LOCATIONS", "3")];
    let daemon = Daemon::start(&store, &env);
    let event = |id: &str, kind: &str, data: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","type":"case.{kind}","source":"it","time":"2025-01-06T09:00:00Z","data":{data}}}"#
        )
    };
    let mut lines = Vec::new();
    for j in 1..=3 {
        lines.push(event(
            &format!("r{j}"),
            "registered",
            &format!(r#"{{"case":"J-{j}","track":"asylum","location":"junk-{j}"}}"#),
        ));
        lines.push(event(
            &format!("c{j}"),
            "closed",
            &format!(r#"{{"case":"J-{j}","reason":"withdrawn"}}"#),
        ));
    }
    lines.push(event(
        "r-real",
        "registered",
        r#"{"case":"Z-1","track":"asylum","location":"Ter Apel"}"#,
    ));
    daemon.post_ok(&lines.join("\n"), 7);
    let real = r#"backlogd_cases_open{track="asylum",location="Ter Apel"}"#;
    let other = r#"backlogd_cases_open{track="asylum",location="other"}"#;
    let check = |daemon: &Daemon, real_open: Option<f64>, other_open: Option<f64>, junk: bool| {
        daemon.await_metrics("location labels", |text| {
            let got = (
                crate::harness::metric_value(text, real),
                crate::harness::metric_value(text, other),
                text.contains("location=\"junk-1\""),
            );
            if got == (real_open, other_open, junk) {
                Ok(())
            } else {
                Err(format!("(Ter Apel, other, junk-1 shown) = {got:?}"))
            }
        })
    };
    check(&daemon, Some(1.0), None, false);
    daemon.stop();
    let daemon = Daemon::start(&store, &env);
    check(&daemon, Some(1.0), None, false);
    // Three junk cases reopen: the three locations seen first take the labels, Ter Apel counts
    // in `other`; once they close again, Ter Apel has its label back.
    let reopen: Vec<String> = (1..=3)
        .map(|j| {
            event(
                &format!("o{j}"),
                "reopened",
                &format!(r#"{{"case":"J-{j}"}}"#),
            )
        })
        .collect();
    daemon.post_ok(&reopen.join("\n"), 3);
    check(&daemon, None, Some(1.0), true);
    let close: Vec<String> = (1..=3)
        .map(|j| {
            event(
                &format!("d{j}"),
                "closed",
                &format!(r#"{{"case":"J-{j}","reason":"withdrawn"}}"#),
            )
        })
        .collect();
    daemon.post_ok(&close.join("\n"), 3);
    check(&daemon, Some(1.0), None, false);
    daemon.stop();
}

/// Instants outside the supported range (docs/events.md: years 1900 to 2189, in which any two
/// instants are less than 292 years apart, so every difference fits) are refused naming the
/// field, also when the daemon computes them: a deadline extended by `P1000Y`, a default deadline
/// (received + decision period) beyond 2189, a deadline in 1700. Before the fix the extension and
/// the deadline in 1700 were applied, and the most overdue case stuck at 9.22e9 s (292 years,
/// the end of i64 nanoseconds) whatever its real age.
#[test]
fn instants_outside_the_supported_range_are_refused_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let event = |id: &str, kind: &str, data: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","type":"case.{kind}","source":"it","time":"2025-01-06T09:00:00Z","data":{data}}}"#
        )
    };
    daemon.post_ok(
        &event("r1", "registered", r#"{"case":"Z-1","track":"asylum"}"#),
        1,
    );
    for (line, message) in [
        (
            event("x1", "deadline_extended", r#"{"case":"Z-1","by":"P1000Y"}"#),
            "field `data.by`: \"P1000Y\" moves the deadline",
        ),
        (
            event(
                "r2",
                "registered",
                r#"{"case":"Z-2","track":"asylum","deadline":"1700-01-01T00:00:00Z"}"#,
            ),
            "field `data.deadline`: 1700-01-01T00:00:00Z is out of the supported range (years 1900 to 2189)",
        ),
        (
            event(
                "r3",
                "registered",
                r#"{"case":"Z-3","track":"asylum","received_at":"2189-12-01T00:00:00Z"}"#,
            ),
            "field `data.received_at`: the deadline it gives (2190-",
        ),
    ] {
        let (status, answer) = daemon.post("application/x-ndjson", &line);
        assert_eq!(status, 422, "{line}: {answer}");
        let rejected = &answer["rejected"][0];
        assert_eq!(rejected["reason"], "invalid_field", "{answer}");
        let got = rejected["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{line}:\n{got}");
    }
    // Z-1 is the only case: its deadline is unchanged, six calendar months after 2025-01-06 10:00
    // in Amsterdam (the shipped time zone), i.e. 2025-07-06 10:00 summer time, 08:00 UTC.
    let overdue = daemon
        .metric(r#"backlogd_case_max_overdue_seconds{track="asylum"}"#)
        .unwrap();
    let now = jiff::Timestamp::now().as_second() as f64;
    let deadline = "2025-07-06T08:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second() as f64;
    assert!(
        (overdue - (now - deadline).max(0.0)).abs() < 5.0,
        "{overdue} against {}",
        now - deadline
    );
    daemon.stop();
}

/// `statvfs` of `path` as `stat -f` (coreutils) reports it: (bytes available to an unprivileged
/// user, size of the filesystem in bytes).
fn df(path: &std::path::Path) -> (f64, f64) {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%a %S %b"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let numbers: Vec<f64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (numbers[0] * numbers[1], numbers[2] * numbers[1])
}

/// The free space of the store's filesystem is exported (`backlogd_store_free_bytes`, refreshed
/// every `time.tick`) with the filesystem's size, so an alert can warn before the disk is full
/// (before, `/readyz` said 200 until the first write failed, and nothing showed the space).
/// Checked against `stat -f` of the store directory, taken just before and after the scrape:
/// the size exactly, the free space within what other writers on the machine changed meanwhile
/// plus 256 MiB.
#[test]
fn the_store_free_space_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let daemon = Daemon::start(&store, &[]);
    let mib = 1024.0 * 1024.0;
    daemon.await_metrics(
        "store free space",
        |text| match crate::harness::metric_value(text, "backlogd_store_free_bytes") {
            Some(free) if free.is_finite() => Ok(()),
            other => Err(format!("backlogd_store_free_bytes {other:?}")),
        },
    );
    let before = df(&store);
    let text = daemon.metrics();
    let after = df(&store);
    let free = crate::harness::metric_value(&text, "backlogd_store_free_bytes").unwrap();
    let size = crate::harness::metric_value(&text, "backlogd_store_filesystem_size_bytes").unwrap();
    assert_eq!(size, before.1, "the filesystem's size");
    let (low, high) = (before.0.min(after.0), before.0.max(after.0));
    assert!(
        free >= low - 256.0 * mib && free <= high + 256.0 * mib,
        "free {free} against stat -f {low}..{high}"
    );
    assert!(free > 0.0 && free < size, "{free} of {size}");
    daemon.stop();
}
