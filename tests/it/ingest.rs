//! `POST /v1/events` as a sender sees it: rejections with their index, id and reason while the rest
//! of the request is applied, and bad bodies (400, 413, 415) that leave the daemon serving.

use serde_json::{Value, json};

use crate::harness::Daemon;

/// One event as an NDJSON line.
fn event(id: &str, kind: &str, time: &str, data: Value) -> String {
    json!({"specversion": "1.0", "id": id, "type": kind, "time": time, "data": data}).to_string()
}

fn registered(id: &str, case: &str) -> String {
    event(
        id,
        "case.registered",
        "2026-01-05T09:00:00+01:00",
        json!({"case": case, "track": "asylum", "location": "Zevenaar"}),
    )
}

#[test]
fn rejections_name_index_id_and_reason_and_the_rest_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let t = "2026-02-01T09:00:00+01:00";
    let setup = [
        event(
            "setup-1",
            "employee.joined",
            t,
            json!({"employee": "w-1", "role": "caseworker", "experienced": true}),
        ),
        registered("setup-2", "r-existing"),
        registered("setup-3", "r-closed"),
        event(
            "setup-4",
            "case.closed",
            t,
            json!({"case": "r-closed", "reason": "merged"}),
        ),
    ];
    daemon.post_ok(&(setup.join("\n") + "\n"), 4);

    // (line, expected rejection as (id, reason), or None when the line must be applied). Blank
    // lines are not events and do not count for the index.
    let lines: Vec<(String, Option<(Value, &str)>)> = vec![
        (registered("ok-1", "r-new"), None),
        (
            "{this is not json".to_owned(),
            Some((Value::Null, "invalid_json")),
        ),
        (
            registered("bad-exists", "r-existing"),
            Some((json!("bad-exists"), "case_exists")),
        ),
        (
            event(
                "bad-track",
                "case.registered",
                t,
                json!({"case": "r-visa", "track": "visa"}),
            ),
            Some((json!("bad-track"), "unknown_track")),
        ),
        (
            event(
                "bad-phase",
                "case.phase_changed",
                t,
                json!({"case": "r-new", "phase": "appeal"}),
            ),
            Some((json!("bad-phase"), "unknown_phase")),
        ),
        (
            event(
                "bad-case",
                "case.assigned",
                t,
                json!({"case": "r-never-registered", "employee": "w-1"}),
            ),
            Some((json!("bad-case"), "unknown_case")),
        ),
        (
            event(
                "bad-closed",
                "case.hearing_held",
                t,
                json!({"case": "r-closed"}),
            ),
            Some((json!("bad-closed"), "case_closed")),
        ),
        (
            event("bad-open", "case.reopened", t, json!({"case": "r-new"})),
            Some((json!("bad-open"), "case_open")),
        ),
        (
            event(
                "bad-employee",
                "case.assigned",
                t,
                json!({"case": "r-new", "employee": "ghost"}),
            ),
            Some((json!("bad-employee"), "unknown_employee")),
        ),
        (
            event(
                "bad-joined",
                "employee.joined",
                t,
                json!({"employee": "w-1", "role": "caseworker", "experienced": false}),
            ),
            Some((json!("bad-joined"), "employee_exists")),
        ),
        (
            event(
                "bad-future",
                "case.registered",
                "2099-01-01T00:00:00+01:00",
                json!({"case": "r-future", "track": "asylum"}),
            ),
            Some((json!("bad-future"), "time_in_future")),
        ),
        (
            event(
                "ok-2",
                "case.phase_changed",
                t,
                json!({"case": "r-new", "phase": "hearing"}),
            ),
            None,
        ),
    ];
    let mut body = String::new();
    for (n, (line, _)) in lines.iter().enumerate() {
        body.push_str(line);
        body.push('\n');
        if n == 3 {
            body.push_str("\n   \n");
        }
    }
    let (status, answer) = daemon.post("application/x-ndjson", &body);
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
    assert_eq!(answer["duplicates"], 0, "{answer}");
    let actual: Vec<(u64, Value, &str)> = answer["rejected"]
        .as_array()
        .expect("rejected is an array")
        .iter()
        .map(|r| {
            let message = r["message"].as_str().unwrap_or("");
            assert!(!message.is_empty(), "a rejection without a message: {r}");
            (
                r["index"].as_u64().unwrap_or(u64::MAX),
                r["id"].clone(),
                r["reason"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let expected: Vec<(u64, Value, &str)> = lines
        .iter()
        .enumerate()
        .filter_map(|(index, (_, rejection))| {
            rejection
                .clone()
                .map(|(id, reason)| (index as u64, id, reason))
        })
        .collect();
    assert_eq!(actual, expected, "{answer:#}");

    // The two good events of the same request were applied.
    let open = r#"backlogd_cases_open{track="asylum",location="Zevenaar"}"#;
    daemon.await_metric(open, 2.0);
    let hearing = r#"backlogd_cases_by_phase{track="asylum",phase="hearing"}"#;
    daemon.await_metric(hearing, 1.0);
    let metrics = daemon.metrics();
    for (_, rejection) in &lines {
        if let Some((_, reason)) = rejection {
            let series = format!(r#"backlogd_events_rejected_total{{reason="{reason}"}}"#);
            assert_eq!(
                crate::harness::metric_value(&metrics, &series),
                Some(1.0),
                "{series}"
            );
        }
    }

    // Only applied ids are remembered: the rejected event, corrected, is accepted under its id.
    daemon.post_ok(
        &event(
            "bad-case",
            "case.assigned",
            t,
            json!({"case": "r-new", "employee": "w-1"}),
        ),
        1,
    );
    let unassigned = r#"backlogd_cases_unassigned{track="asylum"}"#;
    daemon.await_metric(unassigned, 1.0);
}

#[test]
fn fields_missing_or_of_the_wrong_type_are_rejected_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("store"), &[]);
    let t = "2026-02-01T09:00:00+01:00";
    let lines = [
        // No `data.case`.
        event("no-case", "case.registered", t, json!({"track": "asylum"})),
        // `experienced` must be a bool.
        event(
            "wrong-type",
            "employee.joined",
            t,
            json!({"employee": "w-2", "role": "caseworker", "experienced": "yes"}),
        ),
        // No `id`.
        json!({"type": "case.registered", "time": t, "data": {"case": "x", "track": "asylum"}})
            .to_string(),
        // A time without an offset.
        event(
            "no-offset",
            "case.registered",
            "2026-02-01T09:00:00",
            json!({"case": "y", "track": "asylum"}),
        ),
        event("what", "case.teleported", t, json!({"case": "z"})),
        json!({"specversion": "0.3", "id": "old-spec", "type": "case.registered", "time": t,
               "data": {"case": "w", "track": "asylum"}})
        .to_string(),
        registered("fine", "r-fine"),
    ];
    let (status, answer) = daemon.post("application/x-ndjson", &lines.join("\n"));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["accepted"], 1, "{answer}");
    let rejected = answer["rejected"].as_array().expect("rejected is an array");
    let indexes: Vec<u64> = rejected
        .iter()
        .filter_map(|r| r["index"].as_u64())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4, 5], "{answer:#}");
    let ids: Vec<&Value> = rejected.iter().map(|r| &r["id"]).collect();
    assert_eq!(
        ids,
        [
            &json!("no-case"),
            &json!("wrong-type"),
            &Value::Null,
            &json!("no-offset"),
            &json!("what"),
            &json!("old-spec")
        ],
        "{answer:#}"
    );
    for rejection in rejected {
        assert!(
            rejection["reason"].as_str().is_some_and(|r| !r.is_empty())
                && rejection["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a rejection needs a reason and a message: {rejection}"
        );
    }
    let registered_total = r#"backlogd_cases_registered_total{track="asylum"}"#;
    daemon.await_metric(registered_total, 1.0);
    let employees: f64 = crate::harness::samples(&daemon.metrics())
        .iter()
        .filter(|((name, _), _)| name == "backlogd_employees")
        .map(|(_, value)| crate::harness::parse_value(value))
        .sum();
    assert_eq!(employees, 0.0, "the ill-typed employee.joined was applied");
}

/// After a bad request, the daemon still answers `/healthz` and applies a good event.
fn assert_still_serving(daemon: &Daemon, probe: u32) {
    assert_eq!(daemon.get("/healthz").status, 200, "{}", daemon.stderr());
    daemon.post_ok(
        &registered(&format!("probe-{probe}"), &format!("probe-{probe}")),
        1,
    );
}

fn assert_error(status: u16, answer: &Value, expected_status: u16) {
    assert_eq!(status, expected_status, "{answer}");
    assert!(
        answer["error"].as_str().is_some_and(|e| !e.is_empty()),
        "an error answer is {{\"error\": \"...\"}}: {answer}"
    );
}

#[test]
fn bad_bodies_get_clear_errors_and_the_daemon_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &dir.path().join("store"),
        &[("BACKLOGD__SERVER__MAX_BODY_BYTES", "1000")],
    );
    let registered_total = r#"backlogd_cases_registered_total{track="asylum"}"#;

    // A JSON array that does not parse as a whole.
    let broken = format!("[{},{{\"id\":\"half", registered("arr-1", "arr-1"));
    let (status, answer) = daemon.post("application/json", &broken);
    assert_error(status, &answer, 400);
    assert_still_serving(&daemon, 1);

    // Over server.max_body_bytes.
    let lines: Vec<String> = (0..20)
        .map(|n| registered(&format!("big-{n}"), &format!("big-{n}")))
        .collect();
    let big = lines.join("\n");
    assert!(big.len() > 1000);
    let (status, answer) = daemon.post("application/x-ndjson", &big);
    assert_error(status, &answer, 413);
    assert_still_serving(&daemon, 2);

    // Over the limit without a declared length: the limit holds while the body streams in.
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let headers = [
        ("Content-Type", "application/x-ndjson"),
        ("Transfer-Encoding", "chunked"),
    ];
    let response = crate::harness::request(
        daemon.addr,
        "POST",
        "/v1/events",
        &headers,
        chunked.as_bytes(),
    )
    .expect("a chunked POST gets an answer");
    let answer = response.json().unwrap_or(Value::Null);
    assert_error(response.status, &answer, 413);
    assert_still_serving(&daemon, 3);

    // Not a supported content type.
    let (status, answer) = daemon.post("text/plain", &registered("plain-1", "plain-1"));
    assert_error(status, &answer, 415);
    assert_still_serving(&daemon, 4);

    // None of the bad requests applied anything: only the four probes are registered.
    daemon.await_metric(registered_total, 4.0);

    // The other body formats work.
    let (status, answer) = daemon.post(
        "application/cloudevents+json",
        &registered("single-1", "single-1"),
    );
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
    let array = format!(
        "[{},{}]",
        registered("array-1", "array-1"),
        registered("array-2", "array-2")
    );
    let (status, answer) = daemon.post("application/json", &array);
    assert_eq!((status, &answer["accepted"]), (200, &json!(2)), "{answer}");
    let batch = format!("[{}]", registered("batch-1", "batch-1"));
    let (status, answer) = daemon.post("application/cloudevents-batch+json", &batch);
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
    daemon.await_metric(registered_total, 8.0);
    assert_still_serving(&daemon, 5);
}
