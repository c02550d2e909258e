//! Smaller findings of issue 24 at the HTTP edge: ambiguous credentials, the reload guard behind a
//! dual-stack listener, and query parameters of the drill-down. Each test failed before its fix.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
