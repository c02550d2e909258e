//! Reloads under a storm (issue 24, finding 5): each reload used to append a settings record and
//! take a full snapshot, so 400 SIGHUPs in 5 s gave 390 snapshots and stalled ingest at a million
//! cases. A reload that finds nothing changed now does nothing; one that changes something is a
//! settings record in the log (replay switches there), never a snapshot; reload requests that queue
//! up while one runs are answered by it.

use std::path::Path;

use crate::harness::{Daemon, shipped_config};
use crate::scenario::{assert_same_state, post_scenario, state_series};

/// Bytes in the store's log segments: a settings record (or any record) makes it grow.
fn log_bytes(store: &Path) -> u64 {
    std::fs::read_dir(store.join("log"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
        .map(|entry| entry.metadata().unwrap().len())
        .sum()
}

const SETTINGS: [(&str, &str); 1] = [("BACKLOGD__STORE__SNAPSHOT_INTERVAL", "PT1H")];

#[test]
fn a_reload_storm_takes_no_snapshot_and_an_unchanged_reload_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let config = dir.path().join("backlogd.toml");
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    std::fs::write(&config, &shipped).unwrap();
    let daemon = Daemon::start_with_config(&config, &store, &SETTINGS);
    post_scenario(&daemon);
    let logged = log_bytes(&store);

    // 200 unchanged reloads: 100 SIGHUPs, and 100 POSTs from 4 threads at once.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..25 {
                    let response = daemon.request("POST", "/-/reload", &[], b"");
                    assert_eq!(response.status, 200, "{}", response.text());
                }
            });
        }
        for _ in 0..100 {
            daemon.signal("HUP");
        }
    });
    // Answered after every SIGHUP before it was taken (one reload at a time, in order).
    assert_eq!(daemon.request("POST", "/-/reload", &[], b"").status, 200);
    let text = daemon.metrics();
    let unchanged = crate::harness::metric_value(&text, "backlogd_config_reloads_unchanged_total");
    assert_eq!(
        (
            log_bytes(&store),
            crate::harness::metric_value(&text, "backlogd_snapshots_written_total")
        ),
        (logged, Some(0.0)),
        "unchanged reloads wrote to the log or took snapshots ({unchanged:?} counted unchanged)"
    );
    // Coalesced or not, each reload found nothing changed: between 1 and all 201.
    assert!(
        unchanged.is_some_and(|n| (1.0..=201.0).contains(&n)),
        "{unchanged:?}"
    );
    eprintln!(
        "201 unchanged reloads: {unchanged:?} served, log unchanged at {logged} bytes, no snapshot"
    );

    // 40 reloads that each change a threshold: a settings record each, still no snapshot.
    let values: Vec<u32> = (0..40).map(|n| 100 + n).collect();
    assert!(shipped.contains("max_overdue_cases = 100"));
    for value in &values {
        let text = shipped.replace(
            "max_overdue_cases = 100",
            &format!("max_overdue_cases = {value}"),
        );
        assert_ne!(
            text,
            shipped.replace("max_overdue_cases = 100", "x"),
            "the key is there"
        );
        std::fs::write(&config, text).unwrap();
        let response = daemon.request("POST", "/-/reload", &[], b"");
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let text = daemon.metrics();
    assert_eq!(
        crate::harness::metric_value(&text, "backlogd_snapshots_written_total"),
        Some(0.0),
        "a reload that changes something is a settings record, not a snapshot"
    );
    let grown = log_bytes(&store) - logged;
    // Each record holds the whole configuration source: at least the file's length each.
    assert!(
        grown >= 39 * shipped.len() as u64,
        "39 changed reloads (the first one set 100 again) logged only {grown} bytes"
    );
    // The view is republished right after the reload's answer.
    daemon.await_metric(r#"backlogd_threshold{name="max_overdue_cases"}"#, 139.0);
    let text = daemon.metrics();
    let before = state_series(&text);
    // After a crash the log replays every switch: the same state and the last threshold.
    daemon.kill();
    let daemon = Daemon::start_with_config(&config, &store, &SETTINGS);
    assert_same_state(
        &before,
        &state_series(&daemon.metrics()),
        "after kill -9 and replay",
    );
    daemon.stop();
}
