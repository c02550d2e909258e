//! Figures for the state core: events applied per second, tick cost, and memory per open case.
//!
//! `cargo bench --bench core` prints the full figures (1,000,000 cases). Under `cargo test` (no
//! `--bench` argument) it runs a small smoke size so the code stays exercised without timing anything.

use std::time::Instant;

use backlogd::core::event::{Event, EventKind, Outcome};
use backlogd::core::time::{NANOS_PER_DAY, from_nanos, to_nanos};
use backlogd::core::{CoreSettings, State};

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let full = argv.iter().any(|a| a == "--bench");
    // `--cases N` for the national-scale figures (10,000,000).
    let cases: usize = argv
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| argv.get(i + 1))
        .map(|v| v.parse().expect("--cases takes a number"))
        .unwrap_or(if full { 1_000_000 } else { 10_000 });
    let start = to_nanos("2026-01-01T00:00:00Z".parse().unwrap()).unwrap();
    let mut settings = CoreSettings::example();
    settings.dedup_window = jiff::SignedDuration::from_hours(24 * 30);

    let registrations: Vec<Event> = (0..cases)
        .map(|i| Event {
            id: format!("ev-{i:09}"),
            time: from_nanos(start),
            kind: EventKind::CaseRegistered {
                case: format!("Z-2026-{i:09}"),
                track: "asylum".into(),
                // Received over the past year: about half are overdue, spread over penalty days.
                received_at: Some(from_nanos(start - (i as i64 % 365) * NANOS_PER_DAY)),
                location: Some(["Ter Apel", "Zevenaar", "Budel"][i % 3].into()),
                deadline: None,
            },
        })
        .collect();

    let heap_before = allocated_estimate();
    let mut state = State::new(settings);
    state.advance(start);
    let began = Instant::now();
    for event in &registrations {
        state.apply(event, start).expect("valid registration");
    }
    let elapsed = began.elapsed();
    println!(
        "apply case.registered: {cases} events in {:.3} s = {:.0} events/s",
        elapsed.as_secs_f64(),
        cases as f64 / elapsed.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (heap_before, allocated_estimate()) {
        println!(
            "memory: resident set grew by {:.1} MiB = {:.0} bytes per open case (case, id, indexes, remembered event id)",
            (after - before) as f64 / (1 << 20) as f64,
            (after - before) as f64 / cases as f64
        );
    }

    let joined = Event {
        id: "join".into(),
        time: from_nanos(start),
        kind: EventKind::EmployeeJoined {
            employee: "e1".into(),
            role: "caseworker".into(),
            experienced: true,
            contract: backlogd::core::event::Contract::Permanent,
            location: None,
            since: None,
        },
    };
    state.apply(&joined, start).unwrap();
    let decisions: Vec<Event> = (0..cases / 2)
        .map(|i| Event {
            id: format!("dec-{i:09}"),
            time: from_nanos(start),
            kind: EventKind::CaseDecided {
                case: format!("Z-2026-{i:09}"),
                outcome: Outcome::Granted,
                decided_by: "e1".into(),
                basis: None,
                additional_investigation: Some(true),
            },
        })
        .collect();
    let began = Instant::now();
    for event in &decisions {
        state.apply(event, start).expect("valid decision");
    }
    let elapsed = began.elapsed();
    println!(
        "apply case.decided: {} events in {:.3} s = {:.0} events/s",
        decisions.len(),
        elapsed.as_secs_f64(),
        decisions.len() as f64 / elapsed.as_secs_f64()
    );

    // Remembered ids alone: reassignments add an id each and change no allocation of the state.
    let other = Event {
        id: "join-2".into(),
        time: from_nanos(start),
        kind: EventKind::EmployeeJoined {
            employee: "e2".into(),
            role: "caseworker".into(),
            experienced: true,
            contract: backlogd::core::event::Contract::Permanent,
            location: None,
            since: None,
        },
    };
    state.apply(&other, start).unwrap();
    let reassignments: Vec<Event> = (cases / 2..cases)
        .map(|i| Event {
            id: format!("asg-{i:09}"),
            time: from_nanos(start),
            kind: EventKind::CaseAssigned {
                case: format!("Z-2026-{i:09}"),
                employee: "e2".into(),
            },
        })
        .collect();
    let rss_before = allocated_estimate();
    for event in &reassignments {
        state.apply(event, start).expect("valid assignment");
    }
    if let (Some(before), Some(after)) = (rss_before, allocated_estimate()) {
        println!(
            "memory: {} reassignments grew the resident set by {:.1} MiB = {:.1} bytes per remembered event id",
            reassignments.len(),
            (after - before) as f64 / (1 << 20) as f64,
            (after - before) as f64 / reassignments.len() as f64
        );
    }
    drop(reassignments);

    // One tick a second for a simulated day: only cases whose class changes are touched.
    let began = Instant::now();
    let mut touched = 0;
    for second in 1..=86_400 {
        touched += state.advance(start + second * 1_000_000_000);
    }
    let elapsed = began.elapsed();
    println!(
        "advance: 86,400 one-second ticks over a day touched {touched} cases in {:.3} s ({:.1} µs/tick)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / 86_400.0
    );
    publish_figures(start, if full { 20_000 } else { 200 });
    deadline_crossing(start, cases);

    let began = Instant::now();
    let copy = state.clone();
    println!(
        "state clone (what encoding off the engine thread would cost it): {:.3} s",
        began.elapsed().as_secs_f64()
    );
    drop(copy);
    let began = Instant::now();
    let bytes = state.encode_snapshot();
    println!(
        "snapshot encode: {} bytes for {} open cases in {:.3} s",
        bytes.len(),
        state.open_cases(),
        began.elapsed().as_secs_f64()
    );
    let began = Instant::now();
    let restored = State::decode_snapshot(CoreSettings::example(), &bytes).unwrap();
    println!(
        "snapshot decode + rebuild: {:.3} s",
        began.elapsed().as_secs_f64()
    );
    assert_eq!(restored.open_cases(), state.open_cases());
    drop(restored);
}

/// The rolling figures the engine reads at every publish (after every commit group), with a
/// registration every 10 minutes for 60 days on each of three locations, so that every bucket of
/// the longest window holds a count.
fn publish_figures(start: i64, reps: u32) {
    let mut state = State::new(CoreSettings::example());
    let from = start - 60 * NANOS_PER_DAY;
    for i in 0..60 * 144 {
        let t = from + i * 600 * 1_000_000_000;
        state.advance(t);
        let event = Event {
            id: format!("p-{i}"),
            time: from_nanos(t),
            kind: EventKind::CaseRegistered {
                case: format!("P-{i}"),
                track: "asylum".into(),
                received_at: None,
                location: Some(["Ter Apel", "Zevenaar", "Budel"][i as usize % 3].into()),
                deadline: None,
            },
        };
        state.apply(&event, t).expect("valid registration");
    }
    let began = Instant::now();
    let mut inflow = 0;
    for _ in 0..reps {
        inflow += std::hint::black_box(state.flows()).inflow[0][0];
    }
    let elapsed = began.elapsed();
    println!(
        "publish: rolling flows, forecast and capacity read {reps} times over full 60-day buckets: {:.1} µs each (7-day inflow {})",
        elapsed.as_secs_f64() * 1e6 / f64::from(reps),
        inflow / u64::from(reps)
    );
}

/// `cases` open cases whose deadlines all pass at the same instant, and the one tick that sees it;
/// then idle ticks (nothing due).
fn deadline_crossing(start: i64, cases: usize) {
    let mut state = State::new(CoreSettings::example());
    state.advance(start);
    let deadline = start + NANOS_PER_DAY;
    for i in 0..cases {
        let event = Event {
            id: format!("d-{i:09}"),
            time: from_nanos(start),
            kind: EventKind::CaseRegistered {
                case: format!("D-{i:09}"),
                track: "asylum".into(),
                received_at: None,
                location: None,
                deadline: Some(from_nanos(deadline)),
            },
        };
        state.apply(&event, start).expect("valid registration");
    }
    let before = state.advance(deadline - 1_000_000_000);
    let began = Instant::now();
    let crossed = state.advance(deadline + 1_000_000_000);
    let elapsed = began.elapsed();
    println!(
        "advance: {crossed} deadlines crossing in one tick in {:.1} ms ({before} changed the tick before)",
        elapsed.as_secs_f64() * 1e3
    );
    // Idle: ten-millisecond ticks over the next ten seconds, in which no case changes class.
    let ticks = 1_000;
    let began = Instant::now();
    let mut idle = 0;
    for tick in 1..=ticks {
        idle += state.advance(deadline + 1_000_000_000 + tick * 10_000_000);
    }
    println!(
        "advance: idle tick {:.2} µs ({ticks} ticks changing {idle} cases)",
        began.elapsed().as_secs_f64() * 1e6 / ticks as f64
    );
}

/// Resident set size from /proc (Linux), as a rough memory figure without a custom allocator.
fn allocated_estimate() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
