//! The engine against a model, in-process (issue 21, part 2).
//!
//! Random interleavings of command groups (ingest batches of valid, invalid, duplicate and
//! future events, some with a stream position; reloads; ticks; every query), clock moves, snapshots,
//! storage faults (EIO/ENOSPC at one of the next fault points, once or from then on) and power
//! losses drive a real `Engine` (`process`, `snapshot_now`, `recover`) on `FaultyStorage`, with the
//! snapshot database in a temporary directory. The model is the core `State` fed only what the engine
//! acknowledged, each event tried on a copy first so that a rejected one never touches it, and the
//! list of log records those answers imply. It checks:
//!
//! - every answer (accepted, duplicates, which items were rejected; every query) equals the
//!   model's, and after every acknowledged group the engine's state equals the model's byte for
//!   byte: a rejected event leaves the state unchanged;
//! - a group is answered all or nothing: when its commit fails, no request of it is acknowledged,
//!   the engine is marked failed and the store unhealthy (the flag and gauges the daemon reads),
//!   nothing is published, and every later batch and reload is refused;
//! - after a power loss (exactly what was synced, or each unsynced page at random) recovery
//!   succeeds, or refuses only a damaged tail after the last acknowledgement, which `repair` cuts,
//!   and the recovered state equals the model's at some prefix of the records that holds every
//!   acknowledged one (with `store.durability = "none"`, every one synced by a snapshot): an
//!   acknowledged batch is durable, and a snapshot never holds state the log does not have (the
//!   log is synced before a snapshot records its position, sync-before-snapshot).
//!
//! `PROPTEST_CASES=N cargo test --lib engine::model_test` runs N sequences (default 32).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use proptest::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::{
    Clock, Command, Engine, EngineHandle, ForecastParams, IngestOutcome, RecoverError, ReloadError,
    SourcePosition, StoreSettings,
};
use crate::config::ConfigSource;
use crate::core::time::{from_nanos, to_nanos};
use crate::core::{Applied, CoreSettings, EpochNanos, State};
use crate::store::faulty::{Errno, FaultyStorage, PowerLoss};
use crate::store::log::{self, LogError, LogPosition};
use crate::wire::BodyFormat;

const STREAM: &str = "CASES";
const CASES: u8 = 8;

/// The configurations reloads switch between: the due-soon windows, the forecast window and the
/// time zone differ (each a change the daily rows record).
const VARIANTS: [(&str, &str, &str); 3] = [
    ("\"P7D\", \"P28D\"", "P28D", "Europe/Amsterdam"),
    ("\"P28D\", \"P7D\"", "P21D", "Europe/Amsterdam"),
    ("\"P14D\"", "P7D", "Asia/Tokyo"),
];

fn config_source(dir: &Path, variant: usize) -> ConfigSource {
    let (due_soon, window, zone) = VARIANTS[variant];
    let text = include_str!("../../config/backlogd.toml")
        .replace(
            "path = \"data\"",
            &format!("path = {:?}", dir.display().to_string()),
        )
        .replace(
            "due_soon = [\"P7D\", \"P28D\"]",
            &format!("due_soon = [{due_soon}]"),
        )
        .replace("window = \"P28D\"", &format!("window = \"{window}\""))
        .replace(
            "timezone = \"Europe/Amsterdam\"",
            &format!("timezone = \"{zone}\""),
        );
    ConfigSource::inline(&text)
}

/// One event of a batch, as small numbers (shrinks well).
#[derive(Debug, Clone)]
enum Item {
    /// Registers case N (rejected while it is open) with a deadline so many hours ahead.
    Register(u8, u16),
    /// Decides case N by employee e1 (rejected unless open).
    Decide(u8),
    Join,
    Audit(bool),
    /// A track that is not configured: rejected by the core.
    UnknownTrack(u8),
    /// A registration without a case: rejected by the parser, naming the field.
    MissingField,
    /// Two days ahead of the clock: `time_in_future`.
    Future(u8),
    /// The text of an earlier item again, byte for byte (an at-least-once sender).
    Resend(prop::sample::Index),
}

#[derive(Debug, Clone)]
enum Cmd {
    /// A batch; with `Some(step)` a stream message at the model's committed sequence + step − 1
    /// (0 and below: an old message, not applied).
    Ingest(Vec<Item>, Option<u8>),
    Tick,
    Reload(usize),
    Overdue(bool),
    History,
    Targets,
    Forecast,
    StreamPosition,
}

#[derive(Debug, Clone)]
enum Step {
    /// One command group through `Engine::process`.
    Group(Vec<Cmd>),
    /// The clock moves forward by so many minutes (up to two days: midnights pass).
    Advance(u16),
    /// `Engine::snapshot_now`, as the interval or the shutdown would.
    Snapshot,
    /// Fails fault point `points + after` with EIO (or ENOSPC), once or from then on.
    Fault {
        after: u8,
        enospc: bool,
        sticky: bool,
    },
    /// Power loss and a restart: strict (what was synced) or random pages of what was not; with
    /// `read_fault`, the first recovery meets EIO at one of its next reads (once or from then on).
    Crash {
        random: Option<u64>,
        read_fault: Option<(u8, bool)>,
    },
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        5 => (0..CASES, 24u16..900).prop_map(|(case, hours)| Item::Register(case, hours)),
        3 => (0..CASES).prop_map(Item::Decide),
        1 => Just(Item::Join),
        1 => any::<bool>().prop_map(Item::Audit),
        1 => (0..CASES).prop_map(Item::UnknownTrack),
        1 => Just(Item::MissingField),
        1 => (0..CASES).prop_map(Item::Future),
        2 => any::<prop::sample::Index>().prop_map(Item::Resend),
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        8 => (
            prop::collection::vec(item(), 1..5),
            prop_oneof![3 => Just(None), 1 => (0u8..3).prop_map(Some)],
        )
            .prop_map(|(items, position)| Cmd::Ingest(items, position)),
        1 => Just(Cmd::Tick),
        1 => (0..VARIANTS.len()).prop_map(Cmd::Reload),
        1 => any::<bool>().prop_map(Cmd::Overdue),
        1 => Just(Cmd::History),
        1 => Just(Cmd::Targets),
        1 => Just(Cmd::Forecast),
        1 => Just(Cmd::StreamPosition),
    ]
}

/// A read fault for a recovery: none, or EIO at one of its first reads (a recovery of these stores
/// passes mostly 5 to 8 read points: listing, opening and reading the segments, opening the last
/// one for appending), once or from then on.
fn read_fault() -> impl Strategy<Value = Option<(u8, bool)>> {
    prop_oneof![Just(None), (1u8..10, any::<bool>()).prop_map(Some)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => prop::collection::vec(cmd(), 1..4).prop_map(Step::Group),
        3 => (0u16..2880).prop_map(Step::Advance),
        2 => Just(Step::Snapshot),
        1 => (1u8..8, any::<bool>(), any::<bool>()).prop_map(|(after, enospc, sticky)| {
            Step::Fault { after, enospc, sticky }
        }),
        1 => (
            prop_oneof![Just(None), any::<u64>().prop_map(Some)],
            read_fault(),
        )
            .prop_map(|(random, read_fault)| Step::Crash { random, read_fault }),
    ]
}

/// A log record as the model expects it.
#[derive(Debug, Clone)]
enum Op {
    Event { raw: String, at: EpochNanos },
    Settings { variant: usize, at: EpochNanos },
    Position(u64),
}

/// The model: the records the engine's answers imply, and the state they make.
struct Model {
    /// Every record of an acknowledged group in log order, then those of a failed group (any
    /// prefix of which may survive a power loss).
    ops: Vec<Op>,
    /// How many of `ops` must survive a power loss: the acknowledged ones with fsync, the synced
    /// ones (by a snapshot or a recovery) without.
    must_keep: usize,
    /// How many of `ops` were acknowledged (the rest are a failed group's).
    acked: usize,
    /// The state of the acknowledged records, at the engine's clock.
    state: State,
    /// The variant in force for `state`, and the one "the file" holds (the last reload asked).
    in_force: usize,
    file: usize,
    /// The committed stream position.
    position: Option<u64>,
    /// The store failed: nothing more is acknowledged until a restart.
    failed: bool,
    /// The aggregates last published (the engine publishes nothing after a failed commit).
    published: Option<crate::core::aggregates::Aggregates>,
    /// Every event text sent so far (for resends).
    sent: Vec<String>,
    next_id: u64,
}

struct Harness {
    dir: tempfile::TempDir,
    storage: FaultyStorage,
    clock: Arc<AtomicI64>,
    durability: log::Durability,
    segment_bytes: u64,
    snapshot_every_events: u64,
    settings: Vec<CoreSettings>,
}

/// What a run saw, for the summary line and to show the runs exercised what they claim to.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    groups: u64,
    acknowledged: u64,
    failed_groups: u64,
    refused_after_failure: u64,
    rejected: u64,
    crashes: u64,
    repaired_tails: u64,
    unacknowledged_recovered: u64,
    snapshots_written: u64,
    recoveries_refused_on_eio: u64,
    read_faults_not_reached: u64,
}

impl Harness {
    fn now(&self) -> EpochNanos {
        self.clock.load(Ordering::SeqCst)
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    fn start(&self, variant: usize) -> Result<Engine, RecoverError> {
        let source = config_source(self.dir.path(), variant);
        let config = source.load().expect("a variant loads");
        let edge = crate::workforce::EdgeSettings::from_config(&config).expect("edge settings");
        let telemetry = Arc::new(crate::telemetry::Telemetry::new().expect("telemetry"));
        let (commands, _) = mpsc::channel(1);
        let mut store = StoreSettings::of(&config, Arc::new(self.storage.clone()));
        store.durability = self.durability;
        store.segment_bytes = self.segment_bytes;
        store.snapshot_every_events = self.snapshot_every_events;
        store.snapshot_every_bytes = u64::MAX;
        store.snapshot_interval = std::time::Duration::MAX;
        let clock = self.clock.clone();
        Engine::recover(
            store,
            Clock::new(move || clock.load(Ordering::SeqCst)),
            Arc::new(self.settings[variant].clone()),
            source.to_bytes().into(),
            Arc::new(edge),
            telemetry,
            EngineHandle::new(commands),
        )
    }
}

impl Model {
    /// The state `ops` make, as recovery rebuilds it: each event at its arrival, each settings
    /// switch at its instant.
    fn replay(harness: &Harness, ops: &[Op]) -> (State, usize, Option<u64>) {
        let first = ops.iter().find_map(|op| match op {
            Op::Settings { variant, .. } => Some(*variant),
            _ => None,
        });
        let mut in_force = first.unwrap_or(0);
        let mut state = State::new(harness.settings[in_force].clone());
        let mut position = None;
        for op in ops {
            match op {
                Op::Event { raw, at } => {
                    let event = crate::wire::parse_event(raw).expect("a logged event parses");
                    let applied = state.apply(&event, *at);
                    assert_eq!(applied, Ok(Applied::New), "a logged event applies again");
                }
                Op::Settings { variant, at } => {
                    state.advance(*at);
                    super::reload::switch_settings(&mut state, harness.settings[*variant].clone())
                        .expect("the variants keep tracks, phases and roles");
                    in_force = *variant;
                }
                Op::Position(sequence) => position = Some(*sequence),
            }
        }
        (state, in_force, position)
    }
}

/// The text of a new event for `item` at `now`; `None` for a resend of nothing.
fn event_text(model: &mut Model, item: &Item, now: EpochNanos) -> Option<String> {
    let minute = 60_000_000_000;
    let time = from_nanos(now - minute);
    let data = match item {
        Item::Register(case, hours) => format!(
            r#""type":"case.registered","data":{{"case":"c{case}","track":"asylum","deadline":"{}"}}"#,
            from_nanos(now + i64::from(*hours) * 60 * minute)
        ),
        Item::Decide(case) => format!(
            r#""type":"case.decided","data":{{"case":"c{case}","outcome":"granted","decided_by":"e1"}}"#
        ),
        Item::Join => r#""type":"employee.joined","data":{"employee":"e1","role":"decision_officer","experienced":true}"#.to_owned(),
        Item::Audit(passed) => format!(r#""type":"quality.audit","data":{{"passed":{passed}}}"#),
        Item::UnknownTrack(case) => format!(
            r#""type":"case.registered","data":{{"case":"u{case}","track":"nope"}}"#
        ),
        Item::MissingField => r#""type":"case.registered","data":{"track":"asylum"}"#.to_owned(),
        Item::Future(case) => {
            let id = model.next_id;
            model.next_id += 1;
            return Some(format!(
                r#"{{"id":"f{id}","time":"{}","type":"case.registered","data":{{"case":"f{case}","track":"asylum"}}}}"#,
                from_nanos(now + 2 * 1440 * minute)
            ));
        }
        Item::Resend(index) => {
            return (!model.sent.is_empty()).then(|| model.sent[index.index(model.sent.len())].clone());
        }
    };
    let id = model.next_id;
    model.next_id += 1;
    Some(format!(r#"{{"id":"m{id}","time":"{time}",{data}}}"#))
}

/// A query's answer; after the store failed, none (the reply is dropped: the state may hold
/// events that were never acknowledged, and the daemon is exiting).
fn answered<T>(answer: oneshot::Receiver<T>, failed: bool) -> Result<Option<T>, TestCaseError> {
    match (answer.blocking_recv(), failed) {
        (Ok(answer), false) => Ok(Some(answer)),
        (Err(_), true) => Ok(None),
        (Ok(_), true) => Err(TestCaseError::fail(
            "a query was answered after the store failed, from a state that may hold \
             unacknowledged events",
        )),
        (Err(_), false) => Err(TestCaseError::fail("a query was not answered")),
    }
}

/// A query's check, run once the group is processed, told whether the store had failed before.
type Check = Box<dyn FnOnce(bool) -> Result<(), TestCaseError>>;

/// What the model expects of one batch: accepted, duplicates, the indices rejected.
type Expected = (usize, usize, Vec<usize>);

/// Runs one group through the engine and the model and compares every answer. Returns false
/// when the run cannot go on (never: a failed store is a state the next steps check).
fn group(
    harness: &Harness,
    engine: &mut Engine,
    model: &mut Model,
    cmds: &[Cmd],
    counts: &mut Counts,
) -> Result<(), TestCaseError> {
    counts.groups += 1;
    let now = harness.now();
    let injected_before = harness.storage.injected();
    // The model's view of the group: the state with what the group applied so far.
    let mut state = model.state.clone();
    state.advance(now);
    let mut in_force = model.in_force;
    let mut position = model.position;
    let mut ops = Vec::new();
    let mut position_moved = false;
    let mut commands = Vec::new();
    let mut ingests = Vec::new();
    let mut reloads = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    for cmd in cmds {
        match cmd {
            Cmd::Ingest(items, stream) => {
                let texts: Vec<String> = items
                    .iter()
                    .filter_map(|item| event_text(model, item, now))
                    .collect();
                if texts.is_empty() {
                    continue;
                }
                model.sent.extend(texts.iter().cloned());
                let body = texts.join("\n");
                let (reply, answer) = oneshot::channel();
                let mut batch = super::batch_from_body(
                    Bytes::from(body),
                    BodyFormat::Ndjson,
                    "test",
                    reply,
                    100,
                )
                .expect("the body splits into lines");
                let sequence =
                    stream.map(|step| (position.unwrap_or(0) + u64::from(step)).saturating_sub(1));
                batch.position = sequence.map(|sequence| SourcePosition {
                    stream: STREAM.to_owned(),
                    sequence,
                });
                // The model's answer.
                let mut expected: Expected = (0, 0, Vec::new());
                let stale = matches!((sequence, position), (Some(s), Some(p)) if s <= p);
                if stale {
                    expected.1 = texts.len();
                } else {
                    for (index, text) in texts.iter().enumerate() {
                        let Ok(event) = crate::wire::parse_event(text) else {
                            expected.2.push(index);
                            continue;
                        };
                        let mut trial = state.clone();
                        match trial.apply(&event, now) {
                            Ok(Applied::New) => {
                                state = trial;
                                expected.0 += 1;
                                ops.push(Op::Event {
                                    raw: text.clone(),
                                    at: now,
                                });
                            }
                            Ok(Applied::Duplicate) => expected.1 += 1,
                            // The model's state never sees a rejected event.
                            Err(_) => expected.2.push(index),
                        }
                    }
                    if let Some(sequence) = sequence {
                        position = Some(sequence);
                        position_moved = true;
                    }
                }
                if model.failed {
                    counts.refused_after_failure += 1;
                }
                counts.rejected += expected.2.len() as u64;
                ingests.push((answer, expected));
                commands.push(Command::Ingest(batch));
            }
            Cmd::Tick => commands.push(Command::Tick),
            Cmd::Reload(variant) => {
                let source = config_source(harness.dir.path(), *variant);
                let config = source.load().expect("a variant loads");
                let (reply, answer) = oneshot::channel();
                model.file = *variant;
                // A reload of the configuration in force logs nothing: answered at once.
                let logged = *variant != in_force;
                if logged && !model.failed {
                    state.advance(now);
                    super::reload::switch_settings(&mut state, harness.settings[*variant].clone())
                        .expect("the variants keep tracks, phases and roles");
                    ops.push(Op::Settings {
                        variant: *variant,
                        at: now,
                    });
                    in_force = *variant;
                }
                reloads.push((answer, logged));
                commands.push(Command::Reload {
                    settings: Box::new(harness.settings[*variant].clone()),
                    config_source: source.to_bytes().into(),
                    edge: Box::new(
                        crate::workforce::EdgeSettings::from_config(&config).expect("edge"),
                    ),
                    reply,
                });
            }
            Cmd::Overdue(known) => {
                let (reply, answer) = oneshot::channel();
                let track = if *known {
                    None
                } else {
                    Some("nope".to_owned())
                };
                let expected = known.then(|| format!("{:?}", state.overdue_cases(None, None, 50)));
                commands.push(Command::Overdue {
                    track,
                    location: None,
                    limit: 50,
                    reply,
                });
                checks.push(Box::new(move |failed| {
                    let Some(answer) = answered(answer, failed)? else {
                        return Ok(());
                    };
                    match (expected, answer) {
                        (Some(expected), Ok(cases)) => {
                            prop_assert_eq!(format!("{cases:?}"), expected)
                        }
                        (None, Err(message)) => {
                            prop_assert!(message.contains("track"), "{}", message)
                        }
                        (expected, answer) => {
                            prop_assert!(false, "overdue: expected {expected:?}, got {answer:?}")
                        }
                    }
                    Ok(())
                }));
            }
            Cmd::History => {
                let (reply, answer) = oneshot::channel();
                let expected: Vec<_> = state.daily_history().cloned().collect();
                commands.push(Command::History {
                    from: None,
                    to: None,
                    reply,
                });
                checks.push(Box::new(move |failed| {
                    let Some(answer) = answered(answer, failed)? else {
                        return Ok(());
                    };
                    prop_assert_eq!(answer.rows, expected);
                    Ok(())
                }));
            }
            Cmd::Targets => {
                let (reply, answer) = oneshot::channel();
                let expected = format!("{:?}", state.target_reports());
                commands.push(Command::Targets { reply });
                checks.push(Box::new(move |failed| {
                    let Some(answer) = answered(answer, failed)? else {
                        return Ok(());
                    };
                    prop_assert_eq!(format!("{answer:?}"), expected);
                    Ok(())
                }));
            }
            Cmd::Forecast => {
                let (reply, answer) = oneshot::channel();
                let params = ForecastParams {
                    weeks: 8,
                    ..ForecastParams::default()
                };
                let expected = format!(
                    "{:?}",
                    crate::core::forecast::project(&state.forecast_inputs(), &params)
                );
                commands.push(Command::Forecast { params, reply });
                checks.push(Box::new(move |failed| {
                    let Some(answer) = answered(answer, failed)? else {
                        return Ok(());
                    };
                    prop_assert_eq!(format!("{:?}", answer.forecast), expected);
                    Ok(())
                }));
            }
            Cmd::StreamPosition => {
                let (reply, answer) = oneshot::channel();
                let expected = position;
                commands.push(Command::StreamPosition { reply });
                checks.push(Box::new(move |failed| {
                    let Some(answer) = answered(answer, failed)? else {
                        return Ok(());
                    };
                    prop_assert_eq!(answer.map(|p| p.sequence), expected);
                    Ok(())
                }));
            }
        }
    }
    if position_moved && let Some(sequence) = position {
        ops.push(Op::Position(sequence));
    }
    let was_failed = model.failed;
    engine.process(&mut commands);
    for check in checks {
        check(was_failed)?;
    }
    let outcomes: Vec<(IngestOutcome, Expected)> = ingests
        .into_iter()
        .map(|(answer, expected)| (answer.blocking_recv().expect("answered"), expected))
        .collect();
    let mut reload_answers: Vec<Result<(), ReloadError>> = Vec::new();
    for (answer, logged) in reloads {
        let answer = answer.blocking_recv().expect("answered");
        if logged || was_failed {
            reload_answers.push(answer);
        } else {
            prop_assert!(
                answer.is_ok(),
                "a reload of the configuration in force: {answer:?}"
            );
        }
    }
    let done = outcomes
        .iter()
        .filter(|(outcome, _)| matches!(outcome, IngestOutcome::Done(_)))
        .count();
    let failed_now = engine.handle.failed.load(Ordering::SeqCst);
    if was_failed {
        // Nothing is published from a state that may hold unacknowledged events.
        let view = engine.handle.view.latest().expect("a published view");
        prop_assert_eq!(
            Some(&view.aggregates),
            model.published.as_ref(),
            "a view was published after the store failed"
        );
        // A failed store refuses every batch and reload, unapplied.
        prop_assert_eq!(done, 0, "a batch was acknowledged after the store failed");
        prop_assert!(
            reload_answers
                .iter()
                .all(|r| matches!(r, Err(ReloadError::StoreFailed))),
            "a reload was accepted after the store failed: {reload_answers:?}"
        );
        return Ok(());
    }
    // All or nothing: the group committed, or nothing of it is acknowledged.
    let committed = done == outcomes.len() && reload_answers.iter().all(Result::is_ok);
    let refused = done == 0
        && reload_answers
            .iter()
            .all(|r| matches!(r, Err(ReloadError::StoreFailed)));
    prop_assert!(
        committed || refused,
        "part of a group was acknowledged: {done} of {} batches, reloads {reload_answers:?}",
        outcomes.len()
    );
    if committed {
        for (outcome, expected) in &outcomes {
            let IngestOutcome::Done(summary) = outcome else {
                unreachable!("counted as done")
            };
            let rejected: Vec<usize> = summary.rejected.iter().map(|r| r.0).collect();
            prop_assert_eq!(
                (summary.accepted, summary.duplicates, rejected),
                expected.clone(),
                "the batch's answer differs from the model's"
            );
        }
        counts.acknowledged += outcomes.len() as u64;
        model.ops.extend(ops);
        model.acked = model.ops.len();
        if harness.durability == log::Durability::Fsync {
            model.must_keep = model.ops.len();
        }
        model.state = state;
        model.in_force = in_force;
        model.position = position;
        let (seen, expected) = (fingerprint(&engine.state), fingerprint(&model.state));
        prop_assert!(
            seen == expected,
            "the engine's state differs from the model's after an acknowledged group:\n{}",
            difference(&seen, &expected)
        );
        let view = engine.handle.view.latest().expect("a published view");
        prop_assert_eq!(&view.aggregates, model.state.aggregates());
        prop_assert_eq!(view.now, now);
        model.published = Some(view.aggregates.clone());
        if failed_now {
            // The commit succeeded; syncing for the snapshot after it failed.
            model.failed = true;
        }
    } else {
        // The commit failed: a fault must have fired, and the failure is visible.
        counts.failed_groups += 1;
        prop_assert!(
            harness.storage.injected() > injected_before,
            "a group was refused without a fault"
        );
        prop_assert!(failed_now, "a refused group left the engine healthy");
        model.ops.extend(ops);
        model.failed = true;
        // Nothing of it was published.
        let view = engine.handle.view.latest().expect("a published view");
        prop_assert_eq!(Some(&view.aggregates), model.published.as_ref());
    }
    if model.failed {
        prop_assert_eq!(engine.telemetry.store_healthy.get(), 0);
        prop_assert_eq!(engine.telemetry.ready.get(), 0);
    }
    Ok(())
}

/// Everything the state answers, through its public API: the settings, the aggregates, the flows,
/// the per-employee rows, every overdue case, the daily rows, the targets, the forecast's inputs,
/// the counts and the clock. (Not its bytes: each state that starts empty draws its own secret key
/// for the remembered event ids, so the engine's and the model's encodings differ there; the
/// remembered ids are compared by behaviour: every resend's answer is the model's.)
fn fingerprint(state: &State) -> String {
    let mut rows: Vec<String> = state.employee_rows().map(|r| format!("{r:?}")).collect();
    rows.sort();
    let history: Vec<_> = state.daily_history().collect();
    format!(
        "settings {:?}\naggregates {:?}\nflows {:?}\nrows {rows:?}\noverdue {:?}\nhistory {history:?}\n\
         targets {:?}\nforecast inputs {:?}\nknown {} remembered {} open {} events {} now {} next {:?} \
         max overdue {:?}",
        state.settings(),
        state.aggregates(),
        state.flows(),
        state.overdue_cases(None, None, usize::MAX),
        state.target_reports(),
        state.forecast_inputs(),
        state.known_cases(),
        state.remembered_event_ids(),
        state.open_cases(),
        state.holds_events(),
        state.now(),
        state.next_class_change(),
        state.max_overdue_nanos(),
    )
}

/// The first line where two fingerprints differ, for a failure message.
fn difference(engine: &str, model: &str) -> String {
    match engine.lines().zip(model.lines()).find(|(a, b)| a != b) {
        Some((a, b)) => format!("engine: {a}\nmodel:  {b}"),
        None => "(the same lines, of different counts)".to_owned(),
    }
}

/// The log segment a path names.
fn segment_of(path: &Path) -> Option<u64> {
    log::parse_segment_file_name(path.file_name()?.to_str()?)
}

/// Power loss and restart; checks the recovered state against the model. With `read_fault`, the
/// first recovery meets EIO at read point `after` from now (once, or from then on if sticky): it
/// must refuse with the log's IO error (not call the log damaged, which would invite a repair that
/// cuts acknowledged records), or, if it never reached that read, succeed; the next recovery, with
/// no fault, is the one checked against the model.
fn crash(
    harness: &Harness,
    engine: Engine,
    model: &mut Model,
    random: Option<u64>,
    read_fault: Option<(u8, bool)>,
    counts: &mut Counts,
) -> Result<Engine, TestCaseError> {
    counts.crashes += 1;
    let mut engine = engine;
    // The snapshot submitted last is written before the power goes (the case that matters:
    // a snapshot on disk, the log behind it maybe not).
    if let Some(writer) = engine.snapshots.take() {
        writer.finish();
    }
    counts.snapshots_written += engine.telemetry.snapshots_written.get();
    drop(engine);
    let mode = match random {
        Some(seed) => PowerLoss::Random { seed },
        None => PowerLoss::Strict,
    };
    harness.storage.power_loss(mode);
    if let Some((after, sticky)) = read_fault {
        harness.storage.fail_read_at(
            harness.storage.read_points() + u64::from(after),
            Errno::Eio,
            sticky,
        );
    }
    let mut repaired = false;
    let mut attempts = 0;
    let engine = loop {
        attempts += 1;
        let injected = harness.storage.read_injected();
        let started = harness.start(model.file);
        // Only the first recovery meets the read fault.
        harness.storage.disarm_reads();
        let met_fault = harness.storage.read_injected() > injected;
        match started {
            Ok(_) if met_fault => {
                return Err(TestCaseError::fail(
                    "recovery succeeded although a read of the log failed with EIO",
                ));
            }
            Ok(engine) => {
                if read_fault.is_some() && attempts == 1 {
                    counts.read_faults_not_reached += 1;
                }
                break engine;
            }
            Err(RecoverError::Log(LogError::Io { op, path, error })) if met_fault => {
                prop_assert_eq!(
                    error.raw_os_error(),
                    Some(libc::EIO),
                    "{} {}: {}",
                    op,
                    path.display(),
                    error
                );
                counts.recoveries_refused_on_eio += 1;
            }
            Err(e) if met_fault => {
                return Err(TestCaseError::fail(format!(
                    "a read of the log failed with EIO, and recovery refused with another \
                     error: {e}"
                )));
            }
            Err(RecoverError::Log(LogError::Corrupt { path, offset, .. }))
                if random.is_some() && !repaired =>
            {
                // A torn tail of unsynced pages: what `backlogd repair` cuts.
                let segment = segment_of(&path);
                prop_assert!(segment.is_some(), "refused naming {}", path.display());
                let at = LogPosition {
                    segment: segment.unwrap_or_default(),
                    offset,
                };
                crate::store::log::truncate_tail_with(&harness.storage, &harness.log_dir(), at)
                    .map_err(|e| TestCaseError::fail(format!("repair at {at}: {e}")))?;
                counts.repaired_tails += 1;
                repaired = true;
            }
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "recovery after a power loss ({mode:?}) failed: {e}"
                )));
            }
        }
    };
    prop_assert!(!engine.handle.failed.load(Ordering::SeqCst));
    prop_assert!(engine.handle.ready.load(Ordering::SeqCst));
    // Which prefix of the records survived: one that holds every acknowledged one.
    let now = harness.now();
    let recovered = fingerprint(&engine.state);
    let recovered_position = engine.stream_position.as_ref().map(|p| p.sequence);
    let mut found = None;
    for kept in (model.must_keep..=model.ops.len()).rev() {
        let (mut state, in_force, position) = Model::replay(harness, &model.ops[..kept]);
        state.advance(now);
        let switched = in_force != model.file;
        if switched {
            super::reload::switch_settings(&mut state, harness.settings[model.file].clone())
                .expect("the variants keep tracks, phases and roles");
        }
        if fingerprint(&state) == recovered && position == recovered_position {
            found = Some((kept, state, switched, position));
            break;
        }
    }
    let Some((kept, state, switched, position)) = found else {
        return Err(TestCaseError::fail(format!(
            "after a power loss ({mode:?}) the recovered state is the model's (state and stream \
             position) at no prefix of the {} records that keeps the {} acknowledged ones",
            model.ops.len(),
            model.must_keep
        )));
    };
    counts.unacknowledged_recovered += kept.saturating_sub(model.acked) as u64;
    model.ops.truncate(kept);
    if switched {
        model.ops.push(Op::Settings {
            variant: model.file,
            at: now,
        });
    }
    // Recovery syncs what it replayed and what it logged.
    model.must_keep = model.ops.len();
    model.acked = model.ops.len();
    model.state = state;
    model.in_force = model.file;
    model.position = position;
    model.failed = false;
    model.published = Some(model.state.aggregates().clone());
    let view = engine.handle.view.latest().expect("a published view");
    prop_assert_eq!(&view.aggregates, model.state.aggregates());
    Ok(engine)
}

fn run(
    steps: &[Step],
    durability: log::Durability,
    segment_bytes: u64,
    snapshot_every_events: u64,
    last_read_fault: Option<(u8, bool)>,
    counts: &mut Counts,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let settings = (0..VARIANTS.len())
        .map(|v| {
            crate::config::core_settings(
                &config_source(dir.path(), v)
                    .load()
                    .expect("a variant loads"),
            )
        })
        .collect();
    let start = to_nanos("2026-03-20T08:00:00Z".parse().expect("an instant")).expect("in range");
    let harness = Harness {
        dir,
        storage: FaultyStorage::new(),
        clock: Arc::new(AtomicI64::new(start)),
        durability,
        segment_bytes,
        snapshot_every_events,
        settings,
    };
    let mut engine = harness
        .start(0)
        .map_err(|e| TestCaseError::fail(format!("first start: {e}")))?;
    // The first start logs the configuration it starts under.
    let ops = vec![Op::Settings {
        variant: 0,
        at: start,
    }];
    let (state, _, _) = Model::replay(&harness, &ops);
    let mut model = Model {
        ops,
        must_keep: 1,
        acked: 1,
        state,
        in_force: 0,
        file: 0,
        position: None,
        failed: false,
        published: None,
        sent: Vec::new(),
        next_id: 0,
    };
    model.state.advance(start);
    model.published = Some(model.state.aggregates().clone());
    for step in steps {
        match step {
            Step::Group(cmds) => group(&harness, &mut engine, &mut model, cmds, counts)?,
            Step::Advance(minutes) => {
                harness
                    .clock
                    .fetch_add(i64::from(*minutes) * 60_000_000_000, Ordering::SeqCst);
            }
            Step::Snapshot => {
                engine.snapshot_now();
                if engine.handle.failed.load(Ordering::SeqCst) {
                    model.failed = true;
                } else if !model.failed {
                    // The log is synced up to the snapshot's position: everything so far.
                    model.must_keep = model.ops.len();
                }
            }
            Step::Fault {
                after,
                enospc,
                sticky,
            } => {
                let errno = if *enospc { Errno::Enospc } else { Errno::Eio };
                harness.storage.fail_at(
                    harness.storage.points() + u64::from(*after),
                    errno,
                    *sticky,
                );
            }
            Step::Crash { random, read_fault } => {
                engine = crash(&harness, engine, &mut model, *random, *read_fault, counts)?;
            }
        }
    }
    // Every run ends with a power loss, so that every run checks durability.
    crash(&harness, engine, &mut model, None, last_read_fault, counts)?;
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(32)
}

#[test]
fn acknowledged_is_durable_failures_acknowledge_nothing_rejections_change_nothing() {
    let started = std::time::Instant::now();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let total = std::cell::RefCell::new(Counts::default());
    // Cases run, and when the first one failed (before shrinking): how fast a bug is found.
    let tried = std::cell::Cell::new(0u32);
    let first_failure = std::cell::Cell::new(None);
    let strategy = (
        prop::collection::vec(step(), 1..40),
        prop::bool::weighted(0.6),
        400u64..4000,
        2u64..40,
        read_fault(),
    );
    let result = runner.run(
        &strategy,
        |(steps, fsync, segment_bytes, snapshot_every_events, last_read_fault)| {
            let durability = if fsync {
                log::Durability::Fsync
            } else {
                log::Durability::None
            };
            let mut counts = Counts::default();
            let result = run(
                &steps,
                durability,
                segment_bytes,
                snapshot_every_events,
                last_read_fault,
                &mut counts,
            );
            total.borrow_mut().add(&counts);
            tried.set(tried.get() + 1);
            if result.is_err() && first_failure.get().is_none() {
                first_failure.set(Some((tried.get(), started.elapsed())));
            }
            result
        },
    );
    let total = total.into_inner();
    eprintln!(
        "engine model test: {} cases in {:.1?}: {total:?}",
        cases(),
        started.elapsed()
    );
    if let Err(e) = result {
        if let Some((case, elapsed)) = first_failure.get() {
            eprintln!("first failing case: number {case}, after {elapsed:.1?}");
        }
        panic!("{e}");
    }
    // The runs exercised what they claim to.
    assert!(total.acknowledged > 0 && total.rejected > 0, "{total:?}");
    assert!(
        total.failed_groups > 0 && total.refused_after_failure > 0,
        "{total:?}"
    );
    assert!(total.crashes > u64::from(cases()), "{total:?}");
    assert!(total.snapshots_written > 0, "{total:?}");
    assert!(total.recoveries_refused_on_eio > 0, "{total:?}");
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.groups += other.groups;
        self.acknowledged += other.acknowledged;
        self.failed_groups += other.failed_groups;
        self.refused_after_failure += other.refused_after_failure;
        self.rejected += other.rejected;
        self.crashes += other.crashes;
        self.repaired_tails += other.repaired_tails;
        self.unacknowledged_recovered += other.unacknowledged_recovered;
        self.snapshots_written += other.snapshots_written;
        self.recoveries_refused_on_eio += other.recoveries_refused_on_eio;
        self.read_faults_not_reached += other.read_faults_not_reached;
    }
}

/// Found by the read faults above (shrunk): a commit during recovery (the settings switch) rolls
/// into segment 4 and records its marker, then listing the markers fails with EIO; the failed
/// commit's clean-up (`discard_failed_tail`) read "cannot list the markers" as "no marker" and
/// removed segment 4, which MANIFEST-4 names: every later recovery refused the store as having
/// lost acknowledged events.
#[test]
fn a_read_fault_in_a_failed_commit_does_not_remove_a_segment_its_marker_names() {
    let register = || Cmd::Ingest(vec![Item::Register(0, 24)], None);
    let steps = [
        Step::Group(vec![Cmd::Reload(2)]),
        Step::Group(vec![register()]),
        Step::Snapshot,
        Step::Group(vec![register()]),
        Step::Fault {
            after: 5,
            enospc: false,
            sticky: false,
        },
        Step::Group(vec![register()]),
        Step::Group(vec![Cmd::Reload(0)]),
        Step::Group(vec![Cmd::Reload(1)]),
    ];
    let mut counts = Counts::default();
    let result = run(
        &steps,
        log::Durability::None,
        400,
        2,
        Some((8, true)),
        &mut counts,
    );
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(counts.recoveries_refused_on_eio, 1, "{counts:?}");
}
