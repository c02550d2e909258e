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
        .blocking_send(Command::StreamPosition { reply })
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

/// History invariance (issue 20): random event streams with random reloads of the due-soon windows,
/// `forecast.window`, `forecast.new_staff_weeks` and `time.timezone`, cut by a crash at a random
/// point after a snapshot. The rows the engine serves after recovering the store (that snapshot
/// and the log after it) equal, field for field and label for label, the rows taken live. Live is
/// what `process` does: the clock to the command's instant, then the event applied or the settings
/// switched (the engine reads the wall clock, so its live path cannot be driven at chosen instants
/// until the clock is injected; its recovery path is the real one here).
mod history_invariance {
    use proptest::prelude::*;

    use super::*;
    use crate::config::ConfigSource;
    use crate::core::time::to_nanos;

    /// A configuration: the due-soon windows, the forecast window, the new-staff weeks, the zone.
    #[derive(Debug, Clone)]
    struct Variant(&'static str, &'static str, u32, &'static str);

    const VARIANTS: [Variant; 5] = [
        Variant("\"P7D\", \"P28D\"", "P28D", 12, "Europe/Amsterdam"),
        Variant("\"P28D\", \"P7D\"", "P28D", 12, "Europe/Amsterdam"),
        Variant("\"P7D\", \"P14D\", \"P28D\"", "P21D", 8, "America/New_York"),
        Variant("\"P14D\"", "P7D", 12, "Asia/Tokyo"),
        Variant("\"P28D\", \"P7D\"", "P28D", 4, "America/Los_Angeles"),
    ];

    fn source(dir: &std::path::Path, variant: &Variant) -> ConfigSource {
        let shipped = include_str!("../../config/backlogd.toml");
        let text = shipped
            .replace(
                "path = \"data\"",
                &format!("path = {:?}", dir.display().to_string()),
            )
            .replace(
                "due_soon = [\"P7D\", \"P28D\"]",
                &format!("due_soon = [{}]", variant.0),
            )
            .replace("window = \"P28D\"", &format!("window = \"{}\"", variant.1))
            .replace(
                "new_staff_weeks = 12",
                &format!("new_staff_weeks = {}", variant.2),
            )
            .replace(
                "timezone = \"Europe/Amsterdam\"",
                &format!("timezone = \"{}\"", variant.3),
            );
        ConfigSource::inline(&text)
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Register case N with a deadline so many hours after the step.
        Register(u32, u32),
        Decide(u32),
        Audit(bool),
        Reload(usize),
    }

    fn step() -> impl Strategy<Value = (u32, Step)> {
        let step = prop_oneof![
            4 => (0u32..12, 24u32..900).prop_map(|(case, hours)| Step::Register(case, hours)),
            2 => (0u32..12).prop_map(Step::Decide),
            1 => any::<bool>().prop_map(Step::Audit),
            1 => (0..VARIANTS.len()).prop_map(Step::Reload),
        ];
        // Minutes since the step before: up to two days, so that midnights pass between steps.
        (0u32..2880, step)
    }

    fn raw(n: usize, step: &Step, at: jiff::Timestamp) -> Option<String> {
        let data = match step {
            Step::Register(case, hours) => format!(
                r#""type":"case.registered","data":{{"case":"c{case}","track":"asylum","deadline":"{}"}}"#,
                at + jiff::SignedDuration::from_hours(i64::from(*hours))
            ),
            Step::Decide(case) => format!(
                r#""type":"case.decided","data":{{"case":"c{case}","outcome":"granted","decided_by":"e1"}}"#
            ),
            Step::Audit(passed) => {
                format!(r#""type":"quality.audit","data":{{"passed":{passed}}}"#)
            }
            Step::Reload(_) => return None,
        };
        Some(format!(r#"{{"id":"s{n}","time":"{at}",{data}}}"#))
    }

    fn check(steps: &[(u32, Step)], crash_after: usize, current: usize) {
        let dir = tempfile::tempdir().unwrap();
        let sources: Vec<ConfigSource> = VARIANTS.iter().map(|v| source(dir.path(), v)).collect();
        let settings =
            |i: usize| crate::config::core_settings(&sources[i].load().expect("a variant loads"));
        let mut at: jiff::Timestamp = "2026-03-20T08:00:00Z".parse().unwrap();
        let mut live = crate::core::State::new(settings(0));
        let joined = format!(
            r#"{{"id":"joined","time":"{at}","type":"employee.joined","data":{{"employee":"e1","role":"decision_officer","experienced":true}}}}"#
        );
        let nanos = |t: jiff::Timestamp| to_nanos(t).unwrap();
        live.apply(&crate::wire::parse_event(&joined).unwrap(), nanos(at))
            .expect("the employee joins");
        let mut in_force = 0;
        let mut log: Option<crate::store::log::EventLog> = None;
        for (n, (minutes, step)) in steps.iter().enumerate() {
            if n == crash_after {
                // The snapshot of this moment, under the settings in force; the log after it.
                crate::backfill::store::write(dir.path(), &live, &sources[in_force], None)
                    .expect("a new store");
                log = Some(
                    crate::store::log::EventLog::open(
                        &dir.path().join("log"),
                        crate::store::log::LogPosition::default(),
                        1 << 20,
                        &mut |_, _| Ok(()),
                    )
                    .expect("a new log"),
                );
            }
            at += jiff::SignedDuration::from_mins(i64::from(*minutes));
            live.advance(nanos(at));
            match (step, raw(n, step, at)) {
                (Step::Reload(variant), _) => {
                    super::super::reload::switch_settings(&mut live, settings(*variant))
                        .expect("the variants keep tracks, phases and roles");
                    in_force = *variant;
                    if let Some(log) = &mut log {
                        log.append(&crate::store::encode_settings(
                            nanos(at),
                            &sources[*variant].to_bytes(),
                        ))
                        .unwrap();
                    }
                }
                (_, Some(raw)) => {
                    let event = crate::wire::parse_event(&raw).expect("the test writes events");
                    // Rejections (a decision of a case not open) leave no record, as live.
                    if live.apply(&event, nanos(at)).is_ok()
                        && let Some(log) = &mut log
                    {
                        log.append(&crate::store::encode_record(nanos(at), raw.as_bytes()))
                            .unwrap();
                    }
                }
                (_, None) => unreachable!("every step but a reload is an event"),
            }
        }
        if let Some(log) = &mut log {
            log.commit(crate::store::log::Durability::Fsync).unwrap();
        } else {
            crate::backfill::store::write(dir.path(), &live, &sources[in_force], None)
                .expect("a new store");
        }
        drop(log);
        // The daemon restarts on `current`: a change is switched to at the start, clock first.
        let now = super::super::wall_clock();
        live.advance(now);
        if current != in_force {
            super::super::reload::switch_settings(&mut live, settings(current)).unwrap();
        }

        let config = sources[current].load().unwrap();
        let edge = crate::workforce::EdgeSettings::from_config(&config).unwrap();
        let telemetry = Arc::new(crate::telemetry::Telemetry::new().unwrap());
        let (handle, recovered, thread) =
            super::super::start(&config, &sources[current], edge, telemetry);
        recovered
            .blocking_recv()
            .unwrap()
            .expect("recovery succeeds");
        let rows = history(&handle);
        stop(handle, thread);
        let live: Vec<_> = live.daily_history().cloned().collect();
        // A midnight may pass between the two readings of the wall clock: compare what both hold.
        assert!(
            rows.len() == live.len() || rows.len() == live.len() + 1,
            "{} rows recovered, {} live",
            rows.len(),
            live.len()
        );
        let days: Vec<&str> = live.iter().map(|row| row.day.as_str()).collect();
        let mut sorted = days.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(days, sorted, "one row a day, in order");
        for (recovered, live) in rows.iter().zip(&live) {
            assert_eq!(recovered, live, "{}", live.day);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 24,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn rows_after_recovery_equal_the_rows_taken_live(
            steps in prop::collection::vec(step(), 1..60),
            crash in any::<prop::sample::Index>(),
            current in 0..VARIANTS.len(),
        ) {
            let crash_after = crash.index(steps.len() + 1);
            check(&steps, crash_after, current);
        }
    }
}
