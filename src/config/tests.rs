use super::validate::{DEFAULT_PHASES, DEFAULT_ROLES};
use super::*;

const SHIPPED: &str = include_str!("../../config/backlogd.toml");

const MINIMAL: &str = "[tracks.asylum]\ndecision_period = \"P6M\"\n";

/// Loads `toml` and returns the error's message; panics if it loads.
fn error(toml: &str) -> String {
    match load_from_str(toml) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error.to_string(),
    }
}

/// The minimal configuration with `extra` appended.
fn minimal_and(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

#[test]
fn shipped_file_loads_with_spec_defaults() {
    let config = load_from_str(SHIPPED).unwrap();
    assert_eq!(config.phases, DEFAULT_PHASES);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9723");
    assert_eq!(config.server.max_body_bytes, 16 * 1024 * 1024);
    assert_eq!(config.server.ingest_tokens_file, None);
    assert_eq!(config.server.tls, None);
    assert_eq!(config.server.metrics_users_file, None);
    assert_eq!(config.store.path, PathBuf::from("data"));
    assert_eq!(config.store.durability, Durability::Fsync);
    assert_eq!(config.store.snapshot_interval, Duration::from_secs(300));
    assert_eq!(
        config.store.dedup_window,
        SignedDuration::from_hours(30 * 24)
    );
    assert_eq!(config.time.timezone_name, "Europe/Amsterdam");
    assert_eq!(config.time.tick, Duration::from_secs(1));
    assert_eq!(config.ingest.max_future_skew, SignedDuration::from_mins(5));

    let asylum = config.track("asylum").unwrap();
    assert_eq!(asylum.decision_period.get_months(), 6);
    assert!(asylum.penalty_grace.is_zero());
    let cents: Vec<i64> = asylum.penalty.iter().map(|t| t.per_day_cents).collect();
    assert_eq!(cents, [2300, 3500, 4500]);
    assert!(asylum.penalty.iter().all(|tier| tier.days == 14));

    let seven_days = Window {
        label: "P7D".to_owned(),
        length: SignedDuration::from_hours(7 * 24),
    };
    assert_eq!(config.windows.rolling[0], seven_days);
    assert_eq!(config.windows.due_soon[0], seven_days);
    assert_eq!(config.windows.rolling[1].label, "P28D");
    assert_eq!(config.forecast.window.label, "P28D");

    assert_eq!(config.targets.len(), 1);
    assert_eq!(config.targets[0].name, "backlog");
    assert_eq!(config.targets[0].track.as_deref(), Some("asylum"));
    assert_eq!(
        config.targets[0].clear_by,
        "2027-06-29T22:00:00Z".parse::<Timestamp>().unwrap()
    );

    assert_eq!(config.workforce.roles, DEFAULT_ROLES);
    assert_eq!(config.workforce.employee_label, EmployeeLabel::Id);
    assert_eq!(config.workforce.max_open_cases, 20);
    assert_eq!(config.mentoring.max_mentees, 5);
    assert_eq!(config.quality.window.label, "P91D");
    assert_eq!(config.quality.min_pass_ratio, 0.8);
    assert_eq!(
        config.quality.max_audit_gap,
        SignedDuration::from_hours(14 * 24)
    );
    let names: Vec<&str> = config.thresholds.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "benefit_of_doubt_spike_factor",
            "max_due_soon_per_weekly_outflow",
            "max_hearing_cancellation_ratio",
            "max_inexperienced_decision_ratio",
            "max_ingest_gap_seconds",
            "max_overdue_cases",
            "max_unassigned_cases",
            "min_quality_audits",
            "min_weekly_decisions",
            "min_weekly_hearings",
            "penalty_rise_factor",
        ]
    );
    assert!(
        config
            .thresholds
            .contains(&("max_overdue_cases".to_owned(), 100.0))
    );
    assert_eq!(config.limits.max_locations, 64);
    assert_eq!(config.limits.max_employee_series, 20_000);
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.level, "info");
}

#[test]
fn one_track_is_enough_and_everything_else_has_defaults() {
    let config = load_from_str(MINIMAL).unwrap();
    assert_eq!(config.phases, DEFAULT_PHASES);
    assert_eq!(config.workforce.roles, DEFAULT_ROLES);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9723");
    assert!(!config.server.allow_unauthenticated);
    assert_eq!(config.store.path, PathBuf::from("data"));
    assert_eq!(config.store.segment_bytes, 64 * 1024 * 1024);
    assert_eq!(config.time.timezone_name, "Europe/Amsterdam");
    assert_eq!(config.time.tick, Duration::from_secs(1));
    let labels =
        |windows: &[Window]| -> Vec<String> { windows.iter().map(|w| w.label.clone()).collect() };
    assert_eq!(labels(&config.windows.rolling), ["P7D", "P28D"]);
    assert_eq!(labels(&config.windows.due_soon), ["P7D", "P28D"]);
    assert_eq!(
        config.forecast.window.length,
        SignedDuration::from_hours(28 * 24)
    );
    assert_eq!(
        config.quality.window.length,
        SignedDuration::from_hours(91 * 24)
    );
    assert!(config.targets.is_empty());
    assert!(config.thresholds.is_empty());
    assert_eq!(config.limits.max_locations, 64);
    assert_eq!(config.log.format, LogFormat::Text);

    let asylum = config.track("asylum").unwrap();
    assert!(asylum.penalty.is_empty());
    assert!(asylum.penalty_grace.is_zero());
    assert!(config.track("unknown").is_none());
}

#[test]
fn tracks_are_sorted_and_found_by_name() {
    let config = load_from_str(
        "[tracks.regular]\ndecision_period = \"P8W\"\n\
         [tracks.asylum]\ndecision_period = \"P6M\"\n",
    )
    .unwrap();
    let names: Vec<&str> = config.tracks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["asylum", "regular"]);
    assert_eq!(
        config.track("regular").unwrap().decision_period.get_weeks(),
        8
    );
}

#[test]
fn no_track_is_an_error() {
    assert!(error("").starts_with("tracks: at least one track"));
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    assert!(
        error(&format!("colour = \"blue\"\n{MINIMAL}"))
            .starts_with("colour: unknown key; expected one of `phases`")
    );
    assert!(
        error(&minimal_and("[server]\nlissten = \"127.0.0.1:1\"\n"))
            .starts_with("server.lissten: unknown key; expected one of `listen`")
    );
    assert!(
        error(&minimal_and("decision_perod = \"P1M\"\n"))
            .starts_with("tracks.asylum.decision_perod: unknown key")
    );
    assert!(
        error(&minimal_and(
            "penalty = [{ days = 14, per_day = 23 }, { day = 14, per_day = 35 }]\n"
        ))
        .starts_with("tracks.asylum.penalty[1].day: unknown key")
    );
    // A top-level key written after a table belongs to that table; the error says so.
    let message = error(&minimal_and("phases = [\"intake\"]\n"));
    assert!(message.starts_with("tracks.asylum.phases: unknown key"));
    assert!(message.contains("must come before the first [table]"));
}

#[test]
fn bad_durations_are_errors_quoting_the_value() {
    let message = error(&minimal_and("[time]\ntick = \"1s\"\n"));
    assert!(
        message.starts_with("time.tick: \"1s\" is not an ISO 8601 duration"),
        "{message}"
    );
    assert!(
        error("[tracks.asylum]\ndecision_period = \"six months\"\n")
            .starts_with("tracks.asylum.decision_period: \"six months\" is not an ISO 8601")
    );
    assert!(
        error("[tracks.asylum]\ndecision_period = \"P0D\"\n")
            .starts_with("tracks.asylum.decision_period: \"P0D\" must be longer than zero")
    );
    assert!(
        error(&minimal_and("[time]\ntick = \"PT2H\"\n"))
            .starts_with("time.tick: \"PT2H\" is out of range")
    );
    assert!(
        error(&minimal_and("[store]\nsnapshot_interval = \"PT0.5S\"\n"))
            .starts_with("store.snapshot_interval: \"PT0.5S\" is too short")
    );
    assert!(
        error(&minimal_and("[quality]\nmax_audit_gap = \"-P1D\"\n"))
            .starts_with("quality.max_audit_gap: \"-P1D\" must be longer than zero")
    );
}

#[test]
fn months_in_a_fixed_length_window_are_refused_with_a_suggestion() {
    assert_eq!(
        error(&minimal_and("[windows]\nrolling = [\"P7D\", \"P1M\"]\n")),
        "windows.rolling[1]: \"P1M\" has no fixed length; write it in days, e.g. \"P30D\""
    );
    assert!(
        error(&minimal_and("[forecast]\nwindow = \"P1Y\"\n"))
            .starts_with("forecast.window: \"P1Y\" has no fixed length")
    );
}

#[test]
fn window_lists_are_bounded_and_unique() {
    assert_eq!(
        error(&minimal_and("[windows]\ndue_soon = [\"P7D\", \"P1W\"]\n")),
        "windows.due_soon[1]: \"P1W\" is the same window as windows.due_soon[0] (\"P7D\")"
    );
    let nine = (1..=9)
        .map(|days| format!("\"P{days}D\""))
        .collect::<Vec<_>>();
    assert!(
        error(&minimal_and(&format!(
            "[windows]\nrolling = [{}]\n",
            nine.join(", ")
        )))
        .starts_with("windows.rolling: 9 windows given")
    );
    let config = load_from_str(&minimal_and("[windows]\nrolling = []\n")).unwrap();
    assert!(config.windows.rolling.is_empty());
    assert_eq!(config.windows.due_soon.len(), 2);
}

#[test]
fn windows_sharing_buckets_are_at_most_ten_times_apart() {
    assert_eq!(
        error(&minimal_and("[windows]\nrolling = [\"PT1H\", \"P365D\"]\n")),
        "windows.rolling: \"P365D\" (windows.rolling[1]) is 8760 times as long as \"PT1H\" \
         (windows.rolling[0]); windows.rolling and forecast.window share one set of time \
         buckets, so the longest may be at most 10 times the shortest"
    );
    // The default forecast window (P28D) counts too.
    assert_eq!(
        error(&minimal_and("[windows]\nrolling = [\"P1D\"]\n")),
        "forecast.window: \"P28D\" (forecast.window) is 28 times as long as \"P1D\" \
         (windows.rolling[0]); windows.rolling and forecast.window share one set of time \
         buckets, so the longest may be at most 10 times the shortest"
    );
    let config = load_from_str(&minimal_and(
        "[windows]\nrolling = [\"P3D\", \"P30D\"]\n[forecast]\nwindow = \"P14D\"\n",
    ))
    .unwrap();
    assert_eq!(config.windows.rolling.len(), 2);
    // No rolling windows: the forecast window alone.
    assert!(load_from_str(&minimal_and("[windows]\nrolling = []\n")).is_ok());
}

#[test]
fn durations_and_limits_the_core_relies_on_are_bounded() {
    assert_eq!(
        error(&minimal_and("[forecast]\nwindow = \"P200000D\"\n")),
        "forecast.window: \"P200000D\" is too long; the maximum is \"P106751D\""
    );
    assert_eq!(
        error(&minimal_and("[quality]\nwindow = \"PT3000000H\"\n")),
        "quality.window: \"PT3000000H\" is too long; the maximum is \"P106751D\""
    );
    assert_eq!(
        error(&minimal_and("[ingest]\nmax_future_skew = \"PT25H\"\n")),
        "ingest.max_future_skew: \"PT25H\" is too long; the maximum is \"P1D\""
    );
    assert!(load_from_str(&minimal_and("[ingest]\nmax_future_skew = \"P1D\"\n")).is_ok());
    assert_eq!(
        error(&minimal_and("[store]\ndedup_window = \"P401D\"\n")),
        "store.dedup_window: \"P401D\" is too long; the maximum is \"P400D\""
    );
    assert!(load_from_str(&minimal_and("[store]\ndedup_window = \"P400D\"\n")).is_ok());
    // Location ids are 16-bit.
    assert_eq!(
        error(&minimal_and("[limits]\nmax_locations = 65536\n")),
        "limits.max_locations: 65536 is too large; the maximum is 65535"
    );
    let config = load_from_str(&minimal_and("[limits]\nmax_locations = 65535\n")).unwrap();
    assert_eq!(config.limits.max_locations, 65535);
}

#[test]
fn bad_time_zone_is_an_error() {
    assert_eq!(
        error(&minimal_and("[time]\ntimezone = \"Europe/Amsterdm\"\n")),
        "time.timezone: unknown time zone \"Europe/Amsterdm\""
    );
}

#[test]
fn missing_decision_period_is_an_error() {
    assert_eq!(
        error("[tracks.asylum]\npenalty_grace = \"P1D\"\n"),
        "tracks.asylum.decision_period: missing"
    );
}

#[test]
fn target_of_an_unknown_track_is_an_error() {
    assert_eq!(
        error(&minimal_and(
            "[[targets]]\nname = \"backlog\"\ntrack = \"asylym\"\n\
             clear_by = \"2027-06-30T00:00:00+02:00\"\n"
        )),
        "targets[0].track: \"asylym\" is not a configured track (configured: [\"asylum\"])"
    );
}

#[test]
fn targets_need_unique_names_and_an_instant_with_offset() {
    let target = "[[targets]]\nname = \"backlog\"\nclear_by = \"2027-06-30T00:00:00Z\"\n";
    let config = load_from_str(&minimal_and(target)).unwrap();
    assert_eq!(config.targets[0].track, None);
    assert!(
        error(&minimal_and(&format!("{target}{target}")))
            .starts_with("targets[1].name: \"backlog\" is already the name of targets[0]")
    );
    assert!(
        error(&minimal_and(
            "[[targets]]\nname = \"x\"\nclear_by = \"2027-06-30T00:00:00\"\n"
        ))
        .starts_with("targets[0].clear_by: \"2027-06-30T00:00:00\" is not an RFC 3339 timestamp")
    );
    // A TOML date-time literal (unquoted) works as well as a string.
    let config = load_from_str(&minimal_and(
        "[[targets]]\nname = \"x\"\nclear_by = 2027-06-30T00:00:00+02:00\n",
    ))
    .unwrap();
    assert_eq!(
        config.targets[0].clear_by,
        "2027-06-29T22:00:00Z".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn penalty_per_day_is_converted_from_euros_to_cents() {
    let config = load_from_str(&minimal_and(
        "penalty = [{ days = 14, per_day = 23.5 }, { days = 7, per_day = 0 }]\n",
    ))
    .unwrap();
    assert_eq!(
        config.track("asylum").unwrap().penalty,
        [
            PenaltyTier {
                days: 14,
                per_day_cents: 2350
            },
            PenaltyTier {
                days: 7,
                per_day_cents: 0
            },
        ]
    );
}

#[test]
fn penalty_tiers_are_checked() {
    assert_eq!(
        error(&minimal_and(
            "penalty = [{ days = 14, per_day = 23 }, { days = 0, per_day = 35 }]\n"
        )),
        "tracks.asylum.penalty[1].days: 0 is too small; the minimum is 1"
    );
    assert!(
        error(&minimal_and("penalty = [{ days = 14.5, per_day = 23 }]\n")).starts_with(
            "tracks.asylum.penalty[0].days: invalid type: floating point `14.5`, expected an \
             integer"
        )
    );
    assert!(
        error(&minimal_and("penalty = [{ days = 14, per_day = -1 }]\n"))
            .starts_with("tracks.asylum.penalty[0].per_day: -1 is out of range")
    );
    assert_eq!(
        error(&minimal_and("penalty = [{ per_day = 1 }]\n")),
        "tracks.asylum.penalty[0].days: missing"
    );
}

#[test]
fn names_are_checked() {
    assert!(
        error("[tracks.Asylum]\ndecision_period = \"P6M\"\n")
            .starts_with("tracks.Asylum: the track name \"Asylum\" must be 1 to 64")
    );
    assert!(
        error(&format!("phases = [\"intake\", \"none\"]\n{MINIMAL}"))
            .starts_with("phases[1]: \"none\" is reserved")
    );
    assert_eq!(
        error(&format!(
            "phases = [\"intake\", \"view\", \"intake\"]\n{MINIMAL}"
        )),
        "phases[2]: \"intake\" is already listed as phases[0]"
    );
    assert_eq!(
        error(&format!("phases = []\n{MINIMAL}")),
        "phases: must list at least one name"
    );
    assert_eq!(
        error(&minimal_and(
            "[workforce]\nroles = [\"caseworker\", \"\"]\n"
        )),
        "workforce.roles[1]: must not be empty"
    );
}

#[test]
fn type_mismatches_and_syntax_errors_name_the_key_and_the_reason() {
    assert_eq!(
        error(&minimal_and("[server]\nmax_body_bytes = \"lots\"\n")),
        "server.max_body_bytes: invalid value: string \"lots\", expected an integer"
    );
    assert!(
        error(&minimal_and("[workforce]\nroles = \"caseworker\"\n"))
            .starts_with("workforce.roles: invalid type")
    );
    let message = error("[tracks.asylum\ndecision_period = \"P6M\"\n");
    assert!(
        message.starts_with("<inline configuration>: TOML parse error at line 1"),
        "{message}"
    );
}

#[test]
fn other_checks_name_the_key() {
    assert!(
        error(&minimal_and("[server]\nlisten = \"localhost:9723\"\n"))
            .starts_with("server.listen: \"localhost:9723\" is not a socket address")
    );
    assert!(
        error(&minimal_and("[server]\nlisten = \"0.0.0.0:9723\"\n"))
            .starts_with("server.listen: \"0.0.0.0:9723\" is not a loopback address")
    );
    let open = load_from_str(&minimal_and(
        "[server]\nlisten = \"0.0.0.0:9723\"\nallow_unauthenticated = true\n",
    ))
    .unwrap();
    assert!(open.server.allow_unauthenticated);
    assert_eq!(
        error(&minimal_and(
            "[workforce]\nemployee_label = \"pseudonym\"\n"
        )),
        "workforce.pseudonym_key_file: missing: employee_label = \"pseudonym\" needs a key \
         file for the HMAC"
    );
    assert_eq!(
        error(&minimal_and("[quality]\nmin_pass_ratio = 80\n")),
        "quality.min_pass_ratio: 80 is out of range; it must be between 0 and 1"
    );
    assert_eq!(
        error(&minimal_and("[store]\nsegment_bytes = 1000\n")),
        "store.segment_bytes: 1000 is too small; the minimum is 1048576"
    );
    assert_eq!(
        error(&minimal_and("[limits]\nmax_locations = 0\n")),
        "limits.max_locations: 0 is too small; the minimum is 1"
    );
    assert!(
        error(&minimal_and("[thresholds]\nmax_mentees = 3\n"))
            .starts_with("thresholds.max_mentees: reserved")
    );
    assert_eq!(
        error(&minimal_and("[log]\nformat = \"xml\"\n")),
        "log.format: \"xml\" is not one of \"text\", \"json\""
    );
}

#[test]
fn tls_needs_both_files_or_neither() {
    assert_eq!(
        error(&minimal_and(
            "[server]\ntls_cert_file = \"/etc/backlogd/cert.pem\"\n"
        )),
        "server.tls_key_file: missing: server.tls_cert_file is set, and TLS needs the \
         certificate's private key too (set both, or neither for plain HTTP)"
    );
    assert_eq!(
        error(&minimal_and(
            "[server]\ntls_cert_file = \"\"\ntls_key_file = \"/etc/backlogd/key.pem\"\n"
        )),
        "server.tls_cert_file: missing: server.tls_key_file is set, and TLS needs the \
         certificate too (set both, or neither for plain HTTP)"
    );
    let config = load_from_str(&minimal_and(
        "[server]\ntls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"\n",
    ))
    .unwrap();
    assert_eq!(
        config.server.tls,
        Some(TlsFiles {
            cert_file: PathBuf::from("cert.pem"),
            key_file: PathBuf::from("key.pem"),
        })
    );
    // Empty strings (the shipped file's values) mean plain HTTP.
    let config = load_from_str(&minimal_and(
        "[server]\ntls_cert_file = \"\"\ntls_key_file = \"\"\n",
    ))
    .unwrap();
    assert_eq!(config.server.tls, None);
}

#[test]
fn metrics_users_file_is_optional() {
    assert_eq!(
        load_from_str(MINIMAL).unwrap().server.metrics_users_file,
        None
    );
    let config = load_from_str(&minimal_and(
        "[server]\nmetrics_users_file = \"/etc/backlogd/metrics-users\"\n",
    ))
    .unwrap();
    assert_eq!(
        config.server.metrics_users_file,
        Some(PathBuf::from("/etc/backlogd/metrics-users"))
    );
}

#[test]
fn thresholds_accept_integers_and_floats_sorted_by_name() {
    let config = load_from_str(&minimal_and(
        "[thresholds]\nmax_overdue_cases = 100\nmax_clearance_days = 365.5\n",
    ))
    .unwrap();
    assert_eq!(
        config.thresholds,
        [
            ("max_clearance_days".to_owned(), 365.5),
            ("max_overdue_cases".to_owned(), 100.0)
        ]
    );
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("absent.toml");
    let error = load(&path).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().starts_with(&path.display().to_string()));
}

/// The only test that touches the process environment; see `load` for the names.
#[test]
fn environment_overrides_the_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, SHIPPED.as_bytes()).unwrap();

    let overrides = [
        ("BACKLOGD__SERVER__LISTEN", "127.0.0.1:0"),
        ("BACKLOGD__SERVER__MAX_BODY_BYTES", "1024"),
        ("BACKLOGD__STORE__PATH", "/tmp/x"),
        ("BACKLOGD__STORE__DURABILITY", "none"),
        ("BACKLOGD__TRACKS__ASYLUM__DECISION_PERIOD", "P9M"),
        ("BACKLOGD__THRESHOLDS__MAX_OVERDUE_CASES", "50"),
        ("BACKLOGD__WORKFORCE__MAX_OPEN_CASES", "007"),
    ];
    /// Removes the variables again even when an assertion fails.
    struct Unset<'a>(&'a [(&'a str, &'a str)]);
    impl Drop for Unset<'_> {
        fn drop(&mut self) {
            for (name, _) in self.0 {
                // SAFETY: see the `set_var` below.
                unsafe { std::env::remove_var(name) };
            }
        }
    }
    let _unset = Unset(&overrides);
    for (name, value) in overrides {
        // SAFETY: setting a variable races only with reads that bypass std's environment
        // lock (libc `getenv` in C code); these tests make none. This is the only test that
        // sets `BACKLOGD__*` variables, and it sets only valid values, so a concurrent `load`
        // elsewhere in the crate sees a valid configuration either way.
        unsafe { std::env::set_var(name, value) };
    }

    let config = load(file.path()).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:0");
    assert_eq!(config.server.max_body_bytes, 1024);
    assert_eq!(config.store.path, PathBuf::from("/tmp/x"));
    assert_eq!(config.store.durability, Durability::None);
    let asylum = config.track("asylum").unwrap();
    assert_eq!(asylum.decision_period.get_months(), 9);
    // Keys the variables do not mention keep the file's values.
    assert_eq!(asylum.penalty.len(), 3);
    assert_eq!(config.time.timezone_name, "Europe/Amsterdam");
    assert!(
        config
            .thresholds
            .contains(&("max_overdue_cases".to_owned(), 50.0))
    );
    assert!(
        config
            .thresholds
            .contains(&("min_weekly_hearings".to_owned(), 10.0))
    );
    assert_eq!(config.workforce.max_open_cases, 7);

    // A misspelt or mistyped variable is an error naming the key, like in the file. These
    // use a private environment so no other test can ever see the bad values.
    let private = |name: &str, value: &str| {
        let mut source = ConfigSource::read(file.path()).unwrap();
        source.environment = [(name.to_owned(), value.to_owned())].into_iter().collect();
        source.load().unwrap_err().to_string()
    };
    assert!(
        private("BACKLOGD__SERVER__LISEN", "127.0.0.1:0").starts_with("server.lisen: unknown key")
    );
    assert_eq!(
        private("BACKLOGD__SERVER__ALLOW_UNAUTHENTICATED", "maybe"),
        "server.allow_unauthenticated: invalid type: string \"maybe\", expected a boolean \
         (set in the environment)"
    );
}
