//! The importer on small tables: what each row becomes, how bad rows are named, that ids are
//! deterministic. (The whole path, import then backfill then the daemon's history against events
//! written by hand, is in tests/backfill.rs.)

use std::path::Path;

use super::*;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples/import")
        .join(name)
}

fn now() -> Timestamp {
    "2026-12-01T00:00:00Z".parse().unwrap() // a literal instant: cannot fail
}

fn import_example() -> (Summary, Vec<serde_json::Value>) {
    let mapping = read_mapping(&example("mapping.toml")).expect("the example mapping loads");
    let mut out = Vec::new();
    let summary = run(
        &mapping,
        &example("cases.csv"),
        Some(&example("employees.csv")),
        now(),
        false,
        &mut out,
    )
    .expect("the example imports");
    let events = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (summary, events)
}

#[test]
fn the_example_tables_become_events_in_time_order() {
    let (summary, events) = import_example();
    assert_eq!((summary.cases, summary.employees), (7, 3));
    // Z-7's date does not exist: the row is named by file, line and column, and skipped.
    assert_eq!(summary.bad_rows.len(), 1, "{:?}", summary.bad_rows);
    assert!(
        summary.bad_rows[0].ends_with(
            "cases.csv:8: column \"ontvangen\": \"31-02-2026\" is neither RFC 3339 nor one of format.datetime [\"%d-%m-%Y %H:%M\", \"%d-%m-%Y\"]"
        ),
        "{:?}",
        summary.bad_rows
    );
    assert_eq!(summary.events, events.len() as u64);
    // Every line is an event the daemon accepts the shape of.
    for event in &events {
        crate::wire::parse_event(&event.to_string()).expect("a valid event");
    }
    let times: Vec<Timestamp> = events
        .iter()
        .map(|e| e["time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    let kinds = |case: &str| -> Vec<(String, String)> {
        events
            .iter()
            .filter(|e| {
                e["data"]["case"] == case
                    || (e["type"].as_str().unwrap().starts_with("employee.")
                        && e["data"]["employee"] == case)
            })
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["time"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // A date without a time is the day's noon in Europe/Amsterdam (UTC+2 in September).
    assert_eq!(
        kinds("Z-3"),
        [
            ("case.registered".into(), "2026-09-04T10:00:00Z".into()),
            ("case.assigned".into(), "2026-09-04T10:00:00Z".into()),
            ("case.suspended".into(), "2026-09-07T10:00:00Z".into()),
            ("case.resumed".into(), "2026-09-21T10:00:00Z".into()),
        ]
    );
    // An offset in the cell is kept; a still-running suspension has no resume.
    assert_eq!(kinds("Z-5")[0].1, "2026-09-06T06:00:00Z");
    assert_eq!(
        kinds("Z-6").last().unwrap().0,
        "case.suspended",
        "Z-6 is still suspended"
    );
    // An employee experienced after joining is updated then; one who left, leaves.
    assert_eq!(
        kinds("E-3"),
        [
            ("employee.joined".into(), "2026-09-01T07:00:00Z".into()),
            ("employee.updated".into(), "2026-09-15T10:00:00Z".into()),
            ("employee.left".into(), "2026-09-30T15:00:00Z".into()),
        ]
    );
    let decided = events
        .iter()
        .find(|e| e["type"] == "case.decided" && e["data"]["case"] == "Z-2")
        .unwrap();
    assert_eq!(
        decided["data"],
        serde_json::json!({"case": "Z-2", "outcome": "rejected", "decided_by": "E-3"})
    );
}

#[test]
fn importing_twice_gives_the_same_ids() {
    let (_, first) = import_example();
    let (_, second) = import_example();
    assert_eq!(first, second);
    let mut ids: Vec<&str> = first.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), first.len(), "one id per event");
}

#[test]
fn a_mapping_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |text: &str| {
        let path = dir.path().join("mapping.toml");
        std::fs::write(&path, text).unwrap();
        read_mapping(&path).unwrap_err().to_string()
    };
    let good = std::fs::read_to_string(example("mapping.toml")).unwrap();
    let message = refused(&good.replace("Europe/Amsterdam", "Europe/Atlantis"));
    assert!(
        message.contains("format.timezone: \"Europe/Atlantis\" is not a known time zone"),
        "{message}"
    );
    let message = refused(&good.replace(
        "outcome = \"uitkomst\"",
        "outcome = \"uitkomst\"\noutcom = \"x\"",
    ));
    assert!(message.contains("outcom"), "{message}");
    let message = refused(&good.replace("id = \"zaaknummer\"\n", ""));
    assert!(message.contains("id"), "{message}");
}
