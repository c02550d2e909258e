//! The engine with a stream source's positions, on a real store in a temporary directory.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Command, EngineHandle, IngestOutcome, IngestSummary, SourcePosition};
use crate::wire::BodyFormat;

fn start(dir: &std::path::Path) -> (EngineHandle, std::thread::JoinHandle<()>) {
    let text = include_str!("../../config/backlogd.toml").replace(
        "path = \"data\"",
        &format!("path = {:?}", dir.display().to_string()),
    );
    let source = crate::config::ConfigSource::inline(&text);
    let config = source.load().expect("the shipped configuration loads");
    let edge = crate::workforce::EdgeSettings::from_config(&config).expect("edge settings");
    let telemetry = Arc::new(crate::telemetry::Telemetry::new().expect("telemetry"));
    let (handle, recovered, thread) = super::start(&config, &source, edge, telemetry);
    recovered
        .blocking_recv()
        .expect("the engine answers")
        .expect("recovery succeeds");
    (handle, thread)
}

fn event(id: &str, case: &str, track: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"case.registered","time":"2026-11-02T09:00:00+01:00","data":{{"case":"{case}","track":"{track}"}}}}"#
    )
}

fn ingest(handle: &EngineHandle, body: String, sequence: u64) -> IngestSummary {
    let (reply, answer) = oneshot::channel();
    let mut batch =
        super::batch_from_body(Bytes::from(body), BodyFormat::Ndjson, "nats", reply, 100)
            .expect("the body splits");
    batch.position = Some(SourcePosition {
        stream: "CASES".to_owned(),
        sequence,
    });
    handle
        .commands
        .blocking_send(Command::Ingest(batch))
        .expect("the engine runs");
    match answer.blocking_recv().expect("answered") {
        IngestOutcome::Done(summary) => summary,
        IngestOutcome::Unavailable(message) => panic!("{message}"),
    }
}

fn position(handle: &EngineHandle) -> Option<SourcePosition> {
    let (reply, answer) = oneshot::channel();
    handle
        .commands
        .blocking_send(Command::SourcePosition { reply })
        .expect("the engine runs");
    answer.blocking_recv().expect("answered")
}

fn stop(handle: EngineHandle, thread: std::thread::JoinHandle<()>) {
    handle
        .commands
        .blocking_send(Command::Shutdown)
        .expect("the engine runs");
    thread.join().expect("the engine thread ends");
}

/// The committed position survives a restart (from the snapshot, and from the log alone), and a
/// message at or below it is never applied, whatever it holds.
#[test]
fn source_positions_are_logged_recovered_and_guard_against_old_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, thread) = start(dir.path());
    assert_eq!(position(&handle), None);
    let first = ingest(
        &handle,
        format!(
            "{}\n{}\n",
            event("p-1", "P-1", "asylum"),
            event("p-2", "P-2", "asylum")
        ),
        5,
    );
    assert_eq!(first.accepted, 2);
    // A redelivery of an older message with a new event in it: not applied.
    let stale = ingest(&handle, event("p-3", "P-3", "asylum"), 5);
    assert_eq!((stale.accepted, stale.duplicates), (0, 1));
    // A message of rejected events still moves the position.
    let rejected = ingest(&handle, event("p-4", "P-4", "nope"), 7);
    assert_eq!((rejected.accepted, rejected.rejected.len()), (0, 1));
    let expected = Some(SourcePosition {
        stream: "CASES".to_owned(),
        sequence: 7,
    });
    assert_eq!(position(&handle), expected);
    stop(handle, thread);

    // From the snapshot written at shutdown.
    let (handle, thread) = start(dir.path());
    assert_eq!(position(&handle), expected);
    let known = handle.view.latest().expect("a view").known_cases;
    assert_eq!(known, 2, "p-3 was never applied");
    stop(handle, thread);

    // From the log alone.
    std::fs::remove_file(dir.path().join("snapshots.sqlite")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("snapshots.sqlite-wal"));
    let _ = std::fs::remove_file(dir.path().join("snapshots.sqlite-shm"));
    let (handle, thread) = start(dir.path());
    assert_eq!(position(&handle), expected);
    assert_eq!(handle.view.latest().expect("a view").known_cases, 2);
    stop(handle, thread);
}

/// The history rows of a running engine.
fn history(handle: &EngineHandle) -> Vec<crate::core::history::DailyRow> {
    let (reply, answer) = oneshot::channel();
    handle
        .commands
        .blocking_send(Command::History {
            from: None,
            to: None,
            reply,
        })
        .expect("the engine runs");
    answer.blocking_recv().expect("answered").rows
}

/// Replay applies a logged reload at the instant it was made, as live did (issue 20, defect 8):
/// the midnights between the last event and the reload are taken under the settings before it. The
/// settings record's time used to be dropped, so recovery switched settings with the clock still at
/// the last event, and those rows came out under the new windows after a crash.
#[test]
fn replay_switches_settings_at_the_instant_of_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../../config/backlogd.toml").replace(
        "path = \"data\"",
        &format!("path = {:?}", dir.path().display().to_string()),
    );
    let reordered = shipped.replace(
        "due_soon = [\"P7D\", \"P28D\"]",
        "due_soon = [\"P28D\", \"P7D\"]",
    );
    assert_ne!(reordered, shipped);
    let before = crate::config::ConfigSource::inline(&shipped);
    let after = crate::config::ConfigSource::inline(&reordered);
    let settings = |source: &crate::config::ConfigSource| {
        crate::config::core_settings(&source.load().expect("the configuration loads"))
    };
    let at = |text: &str| crate::core::time::to_nanos(text.parse().unwrap()).unwrap();
    let registered = crate::wire::parse_event(&event("e1", "c1", "asylum")).unwrap();
    let arrival = at("2026-11-02T08:00:00Z");
    let reload = at("2026-11-05T12:00:00Z");

    // The store: a snapshot before the event; in the log the event, then the reload days later.
    let mut live = crate::core::State::new(settings(&before));
    live.advance(at("2026-11-01T12:00:00Z"));
    crate::backfill::store::write(dir.path(), &live, &before, None).expect("a new store");
    let mut log = crate::store::log::EventLog::open(
        &dir.path().join("log"),
        crate::store::log::LogPosition::default(),
        1 << 20,
        &mut |_, _| Ok(()),
    )
    .expect("a new log");
    log.append(&crate::store::encode_record(
        arrival,
        event("e1", "c1", "asylum").as_bytes(),
    ))
    .unwrap();
    log.append(&crate::store::encode_settings(reload, &after.to_bytes()))
        .unwrap();
    log.commit(crate::store::log::Durability::Fsync).unwrap();
    drop(log);

    // Live: the event, the clock at the reload (as `process` advances it first), the switch.
    live.apply(&registered, arrival).expect("applies");
    live.advance(reload);
    live.set_settings(settings(&after))
        .expect("windows may change");
    live.advance(super::wall_clock());

    let (handle, thread) = {
        let config = after.load().expect("the configuration loads");
        let edge = crate::workforce::EdgeSettings::from_config(&config).expect("edge settings");
        let telemetry = Arc::new(crate::telemetry::Telemetry::new().expect("telemetry"));
        let (handle, recovered, thread) = super::start(&config, &after, edge, telemetry);
        recovered
            .blocking_recv()
            .unwrap()
            .expect("recovery succeeds");
        (handle, thread)
    };
    let recovered = history(&handle);
    stop(handle, thread);
    let live: Vec<_> = live.daily_history().cloned().collect();
    // The rows up to the reload were taken under the first windows.
    let before_reload = live.iter().filter(|row| row.at <= reload).count();
    assert!(before_reload >= 3, "{before_reload}");
    assert_eq!(live[0].basis.due_soon_windows, ["P7D", "P28D"]);
    assert_eq!(recovered.len(), live.len());
    for (recovered, live) in recovered.iter().zip(&live) {
        assert_eq!(recovered, live, "{}", live.day);
    }
}
