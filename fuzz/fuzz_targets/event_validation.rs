//! Arbitrary bytes, as UTF-8, through `wire::parse_event`; an event that parses is applied with
//! `State::apply` to a state built from the shipped configuration and the example stream
//! (config/examples/taskforce-autumn.ndjson, so that case and employee ids of the seeds exist), at
//! the later of that state's clock and the event's own time. Neither may panic, and the state's
//! public invariants must hold afterwards.
#![no_main]

use std::sync::OnceLock;

use backlogd::core::State;
use backlogd::core::time::{to_nanos, to_nanos_saturating};
use backlogd_fuzz::{EXAMPLE_EVENTS, check_invariants, shipped_settings};
use libfuzzer_sys::fuzz_target;

fn base() -> &'static State {
    static BASE: OnceLock<State> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut state = State::new(shipped_settings());
        let now = to_nanos("2026-10-10T00:00:00Z".parse().unwrap()).unwrap();
        for line in EXAMPLE_EVENTS.lines() {
            let event = backlogd::wire::parse_event(line).expect("example events parse");
            state.apply(&event, now).expect("example events apply");
        }
        state
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = backlogd::wire::parse_event(text) else {
        return;
    };
    let mut state = base().clone();
    let now = state.now().max(to_nanos_saturating(event.time));
    let _ = state.apply(&event, now);
    check_invariants(&state);
    // Applying it again at the same instant: a duplicate if it was accepted, the same answer if not.
    let _ = state.apply(&event, now);
});
