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
