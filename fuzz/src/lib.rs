//! Shared pieces of the backlogd fuzz targets (see docs/fuzzing.md): the shipped configuration, a
//! small event alphabet for sequences, the public invariants of the state core, and an in-memory
//! `Storage` for the event log.

pub mod events;
pub mod mem_storage;

use std::sync::OnceLock;

use backlogd::core::{CoreSettings, State};

/// The shipped configuration, exactly as the daemon embeds it.
pub const SHIPPED_CONFIG: &str = include_str!("../../config/backlogd.toml");

/// A hand-written example stream (employees and cases of a small task force).
pub const EXAMPLE_EVENTS: &str = include_str!("../../config/examples/taskforce-autumn.ndjson");

/// Core settings of the shipped configuration (parsed once per process).
pub fn shipped_settings() -> CoreSettings {
    static SETTINGS: OnceLock<CoreSettings> = OnceLock::new();
    SETTINGS
        .get_or_init(|| settings_from(SHIPPED_CONFIG))
        .clone()
}

/// The shipped configuration with a second track, few locations and short windows, so that
/// sequences reach the `other` location, a penalty grace period and rolling-window expiry.
pub fn variant_settings() -> CoreSettings {
    static SETTINGS: OnceLock<CoreSettings> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let text = SHIPPED_CONFIG
                .replace("max_locations = 64", "max_locations = 2")
                .replace("dedup_window = \"P30D\"", "dedup_window = \"P2D\"")
                .replace("rolling = [\"P7D\", \"P28D\"]", "rolling = [\"P1D\"]")
                .replace("window = \"P28D\"", "window = \"P3D\"")
                .replace(
                    "[windows]",
                    "[tracks.family]\ndecision_period = \"P20D\"\npenalty_grace = \"P2D\"\n\
                     penalty = [{ days = 3, per_day = 10 }]\n\n[windows]",
                );
            let settings = settings_from(&text);
            assert_eq!(
                settings.tracks.len(),
                2,
                "the variant configuration has two tracks"
            );
            assert_eq!(settings.max_locations, 2);
            settings
        })
        .clone()
}

fn settings_from(toml: &str) -> CoreSettings {
    let config = backlogd::config::load_from_str(toml)
        .unwrap_or_else(|e| panic!("the fuzz configuration does not load: {e}"));
    backlogd::config::core_settings(&config)
}

/// The cheap invariants of a state that the public API can check (the same ones the property tests
/// of `crates/backlogd-core/src/properties.rs` check): open = entered − left per track, overdue + due soon ≤ open,
/// the per-employee open counts add up to the assigned cases, and the incrementally maintained
/// aggregates equal a recomputation from the cases.
pub fn check_invariants(state: &State) {
    let aggregates = state.aggregates();
    for (t, track) in aggregates.tracks.iter().enumerate() {
        let entered = (track.registered + track.reopened) as i64;
        let left = (track.decided_by_outcome.iter().sum::<u64>()
            + track.closed_by_reason.iter().sum::<u64>()) as i64;
        assert_eq!(track.open(), entered - left, "track {t}: open = in − out");
        for (w, &due_soon) in track.due_soon_by_window.iter().enumerate() {
            assert!(
                track.overdue() + due_soon <= track.open(),
                "track {t}, window {w}: overdue {} + due soon {due_soon} > open {}",
                track.overdue(),
                track.open()
            );
        }
        assert!(track.unassigned <= track.open() && track.suspended <= track.open());
        assert!(track.unassigned >= 0 && track.suspended >= 0 && track.overdue() >= 0);
        assert!(
            track.penalty_exposure_cents >= 0,
            "track {t}: negative penalty exposure"
        );
    }
    let assigned: i64 = aggregates
        .tracks
        .iter()
        .map(|t| t.open() - t.unassigned)
        .sum();
    let per_employee: i64 = state.employee_rows().map(|r| i64::from(r.open_cases)).sum();
    assert_eq!(
        per_employee, assigned,
        "Σ open cases per employee = assigned"
    );
    check_derived(state);
}

/// The incrementally maintained aggregates equal a recomputation from the cases. Unlike the counts
/// of [`check_invariants`], this holds for any state, also one decoded from arbitrary bytes (whose
/// counters need not match its cases).
pub fn check_derived(state: &State) {
    let mut recomputed = state.clone();
    recomputed.rebuild_derived();
    assert_eq!(
        recomputed.aggregates(),
        state.aggregates(),
        "incremental aggregates diverge from recomputation"
    );
}

/// Everything an observer of the state sees through the public API, as text (the flows hold NaN,
/// which `==` on the values would never match).
pub fn observed(state: &State) -> String {
    let mut rows: Vec<String> = state.employee_rows().map(|r| format!("{r:?}")).collect();
    rows.sort();
    format!(
        "{:?}\n{:?}\n{rows:?}\n{:?}\n{:?}\nopen {} known {} remembered {} now {}",
        state.aggregates(),
        state.flows(),
        state.overdue_cases(None, None, 1000),
        state.max_overdue_nanos(),
        state.open_cases(),
        state.known_cases(),
        state.remembered_event_ids(),
        state.now(),
    )
}

/// Encodes, decodes under the same settings, and checks that the restored state looks the same and
/// re-encodes to a snapshot of the same length (the id sets iterate in a history-dependent order, so
/// the bytes themselves may differ). Returns the restored state.
pub fn snapshot_round_trip(state: &State) -> State {
    let bytes = state.encode_snapshot();
    let restored = State::decode_snapshot(state.settings().clone(), &bytes)
        .unwrap_or_else(|e| panic!("a fresh snapshot does not decode: {e}"));
    assert_eq!(
        observed(&restored),
        observed(state),
        "the restored state differs"
    );
    assert_eq!(
        restored.encode_snapshot().len(),
        bytes.len(),
        "re-encoding the restored state changes the snapshot's length"
    );
    restored
}
