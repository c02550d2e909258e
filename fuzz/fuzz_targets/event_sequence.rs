//! Sequences of events applied with `State::apply` between `State::advance` calls at
//! non-decreasing times, to two states at once: `a` runs straight through, `b` is snapshotted and
//! restored (`encode_snapshot` → `decode_snapshot`) at every snapshot step. Both must answer every
//! event the same way and end up looking the same; the public invariants must hold whenever checked
//! and at the end; a final snapshot must restore an equal-looking state; and redelivering the
//! accepted events that are still inside the dedup window must find them all duplicates and change
//! nothing.
//!
//! Two input forms:
//! * text starting with `{`: lines of CloudEvents JSON (the simulator's output is the seed corpus),
//!   each applied at the later of the clock and its own time; a line `snapshot` or `check` is that
//!   step, a line `+N` moves the clock N minutes, anything else is skipped;
//! * anything else: decoded with `arbitrary` as a `backlogd_fuzz::events::Sequence` over a small
//!   alphabet of ids, types and times (including the ends of the representable range), under the
//!   shipped or a variant configuration.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use backlogd::core::time::to_nanos_saturating;
use backlogd::core::{Applied, CoreSettings, Event, State};
use backlogd_fuzz::events::{self, Sequence};
use backlogd_fuzz::{
    check_invariants, observed, shipped_settings, snapshot_round_trip, variant_settings,
};
use libfuzzer_sys::fuzz_target;

/// Steps beyond this are ignored (keeps one input's cost bounded).
const MAX_STEPS: usize = 256;

enum Step {
    Advance(i64),
    Apply(Event, i64),
    Snapshot,
    Check,
}

fn from_json_lines(text: &str) -> (CoreSettings, Vec<Step>) {
    let mut clock = i64::MIN;
    let mut steps = Vec::new();
    for line in text.lines().take(MAX_STEPS) {
        match line.trim() {
            "snapshot" => steps.push(Step::Snapshot),
            "check" => steps.push(Step::Check),
            minutes if minutes.starts_with('+') => {
                if let Ok(m) = minutes[1..].parse::<u32>() {
                    clock = clock.saturating_add(i64::from(m) * 60_000_000_000);
                    steps.push(Step::Advance(clock));
                }
            }
            line => {
                if let Ok(event) = backlogd::wire::parse_event(line) {
                    clock = clock.max(to_nanos_saturating(event.time));
                    steps.push(Step::Apply(event, clock));
                }
            }
        }
    }
    (shipped_settings(), steps)
}

fn from_sequence(sequence: &Sequence) -> (CoreSettings, Vec<Step>) {
    let settings = if sequence.variant {
        variant_settings()
    } else {
        shipped_settings()
    };
    let mut clock = sequence.start.clock();
    let steps = sequence
        .steps
        .iter()
        .take(MAX_STEPS)
        .map(|step| match step {
            events::Step::Advance(delta) => {
                clock = clock.saturating_add(delta.nanos());
                Step::Advance(clock)
            }
            events::Step::Apply(raw) => Step::Apply(raw.event(clock), clock),
            events::Step::ApplyLater(delta, raw) => {
                clock = clock.saturating_add(delta.nanos());
                Step::Apply(raw.event(clock), clock)
            }
            events::Step::Snapshot => Step::Snapshot,
            events::Step::Check => Step::Check,
        })
        .collect();
    (settings, steps)
}

fn run(settings: CoreSettings, steps: &[Step]) {
    let dedup_window = settings.dedup_window.as_nanos();
    let mut a = State::new(settings);
    let mut b = a.clone();
    let mut accepted: Vec<(&Event, i64)> = Vec::new();
    for step in steps {
        match step {
            Step::Advance(clock) => assert_eq!(a.advance(*clock), b.advance(*clock)),
            Step::Apply(event, now) => {
                let answer = a.apply(event, *now);
                assert_eq!(
                    b.apply(event, *now),
                    answer,
                    "a restored state answers {event:?} differently"
                );
                if answer == Ok(Applied::New) {
                    accepted.push((event, *now));
                }
            }
            Step::Snapshot => b = snapshot_round_trip(&b),
            Step::Check => {
                check_invariants(&a);
                assert_eq!(observed(&a), observed(&b), "a restored state diverged");
            }
        }
    }
    check_invariants(&a);
    check_invariants(&b);
    assert_eq!(observed(&a), observed(&b), "a restored state diverged");
    snapshot_round_trip(&a);

    // At-least-once senders redeliver: every accepted event still inside the dedup window (by
    // arrival) is a duplicate, and nothing changes.
    let clock = a.now();
    let before = observed(&a);
    for (event, arrival) in accepted {
        if i128::from(clock) - i128::from(arrival) < dedup_window {
            assert_eq!(
                a.apply(event, clock),
                Ok(Applied::Duplicate),
                "redelivered {event:?} (arrived {arrival}, now {clock})"
            );
        }
    }
    assert_eq!(observed(&a), before, "redelivery changed the state");
}

fuzz_target!(|data: &[u8]| {
    let (settings, steps) = if data.first() == Some(&b'{') {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        from_json_lines(text)
    } else {
        let Ok(sequence) = Sequence::arbitrary_take_rest(Unstructured::new(data)) else {
            return;
        };
        from_sequence(&sequence)
    };
    run(settings, &steps);
});
