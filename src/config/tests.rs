use expect_test::{Expect, expect};

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

/// `toml` is refused with exactly the expected message (`UPDATE_EXPECT=1` rewrites it).
fn check_err(toml: &str, expect: Expect) {
    expect.assert_eq(&error(toml));
}

/// A table of refused configurations, each with its exact message.
fn check_errs(cases: Vec<(String, Expect)>) {
    for (toml, expect) in cases {
        check_err(&toml, expect);
    }
}

/// The pretty `Debug` form of `value`, with every group (`{…}`, `[…]`, `(…)`) that fits in 100
/// columns written on one line.
fn compact_debug(value: &impl std::fmt::Debug) -> String {
    /// The item that starts at `lines[start]`, as lines, and the index of the line after it.
    fn item(lines: &[&str], start: usize) -> (Vec<String>, usize) {
        let head = lines[start];
        let closer = match head.chars().last() {
            Some('{') => '}',
            Some('[') => ']',
            Some('(') => ')',
            _ => return (vec![head.to_owned()], start + 1),
        };
        let indent = |line: &str| line.len() - line.trim_start().len();
        let mut children = Vec::new();
        let mut index = start + 1;
        while !(indent(lines[index]) == indent(head)
            && lines[index].trim_start().starts_with(closer))
        {
            let (child, next) = item(lines, index);
            children.push(child);
            index = next;
        }
        let tail = lines[index];
        if children.iter().all(|child| child.len() == 1) {
            let items: Vec<&str> = children
                .iter()
                .map(|child| child[0].trim_start())
                .map(|text| text.strip_suffix(',').unwrap_or(text))
                .collect();
            let pad = if closer == '}' { " " } else { "" };
            let line = format!("{head}{pad}{}{pad}{}", items.join(", "), tail.trim_start());
            if line.len() <= 100 {
                return (vec![line], index + 1);
            }
        }
        let mut rendered = vec![head.to_owned()];
        rendered.extend(children.into_iter().flatten());
        rendered.push(tail.to_owned());
        (rendered, index + 1)
    }
    let pretty = format!("{value:#?}");
    let lines: Vec<&str> = pretty.lines().collect();
    let mut rendered = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let (item, next) = item(&lines, index);
        rendered.extend(item);
        index = next;
    }
    rendered.join("\n")
}

/// The shipped file as the daemon sees it: every value, so also that it states the documented
/// defaults. `TimeZone` prints its name only, so the rendering does not depend on the system's time
/// zone database.
#[test]
fn shipped_configuration_as_parsed() {
    let config = load_from_str(SHIPPED).unwrap();
    assert_eq!(config.phases, DEFAULT_PHASES);
    assert_eq!(config.workforce.roles, DEFAULT_ROLES);
    expect![[r#"
        Config {
            phases: ["intake", "hearing", "intention", "view", "decision"],
            server: ServerConfig {
                listen: 127.0.0.1:9723,
                max_body_bytes: 16777216,
                ingest_tokens_file: None,
                allow_unauthenticated: false,
                tls: None,
                metrics_users_file: None,
                limits: ServerLimits {
                    max_events_per_request: 100000,
                    max_rejections_reported: 100,
                    header_timeout: 10s,
                    body_timeout: 60s,
                    idle_timeout: 60s,
                    max_connections: 1024,
                    max_inflight_bytes: 67108864,
                    metrics_auth_queue: 8,
                },
            },
            store: StoreConfig {
                path: "data",
                durability: Fsync,
                snapshot_interval: 300s,
                snapshot_every_events: 1000000,
                snapshot_every_bytes: 268435456,
                dedup_window: 2592000s,
                segment_bytes: 67108864,
            },
            time: TimeConfig {
                timezone: TimeZone(TZif("Europe/Amsterdam")),
                timezone_name: "Europe/Amsterdam",
                tick: 1s,
            },
            ingest: IngestConfig { max_future_skew: 300s },
            tracks: [
                TrackConfig {
                    name: "asylum",
                    decision_period: 6mo,
                    penalty_grace: 0s,
                    penalty: [
                        PenaltyTier { days: 14, per_day_cents: 2300 },
                        PenaltyTier { days: 14, per_day_cents: 3500 },
                        PenaltyTier { days: 14, per_day_cents: 4500 },
                    ],
                },
            ],
            windows: WindowsConfig {
                rolling: [
                    Window { label: "P7D", length: 604800s },
                    Window { label: "P28D", length: 2419200s },
                ],
                due_soon: [
                    Window { label: "P7D", length: 604800s },
                    Window { label: "P28D", length: 2419200s },
                ],
            },
            forecast: ForecastConfig {
                window: Window { label: "P28D", length: 2419200s },
                new_staff_weeks: 12,
            },
            targets: [
                TargetConfig { name: "backlog", track: Some("asylum"), clear_by: 2027-06-29T22:00:00Z },
            ],
            workforce: WorkforceConfig {
                roles: ["caseworker", "mentor", "decision_officer"],
                employee_label: Id,
                pseudonym_key_file: None,
                max_open_cases: 20,
            },
            mentoring: MentoringConfig { max_mentees: 5 },
            quality: QualityConfig {
                window: Window { label: "P91D", length: 7862400s },
                min_pass_ratio: 0.8,
                max_audit_gap: 1209600s,
            },
            thresholds: [
                ("backlog_forming_min_net_inflow", 0.0),
                ("backlog_forming_rise_factor", 1.0),
                ("benefit_of_doubt_spike_factor", 1.5),
                ("max_due_soon_per_weekly_outflow", 1.5),
                ("max_hearing_cancellation_ratio", 0.15),
                ("max_inexperienced_decision_ratio", 0.1),
                ("max_ingest_gap_seconds", 345600.0),
                ("max_overdue_cases", 100.0),
                ("max_unassigned_cases", 50.0),
                ("min_quality_audits", 10.0),
                ("min_weekly_decisions", 20.0),
                ("min_weekly_hearings", 10.0),
                ("penalty_rise_factor", 1.1),
            ],
            limits: LimitsConfig {
                max_locations: 64,
                max_employee_series: 20000,
                max_announcements_per_target: 100,
            },
            log: LogConfig { format: Text, level: "info" },
            report: ReportConfig { language: En },
            nats: None,
        }"#]].assert_eq(&compact_debug(&config));
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
    // Every threshold the shipped rules read, at its default: each alert is armed without a line
    // in the file (the values docs/configuration.md gives).
    assert_eq!(thresholds(&config), DEFAULTS);
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
fn unknown_keys_are_errors_naming_the_key() {
    check_errs(vec![
        (
            format!("colour = \"blue\"\n{MINIMAL}"),
            expect![
                "colour: unknown key; expected one of `phases`, `server`, `store`, `time`, `ingest`, `tracks`, `windows`, `forecast`, `targets`, `workforce`, `mentoring`, `quality`, `thresholds`, `limits`, `log`, `report`, `sources`"
            ],
        ),
        (
            minimal_and("[server]\nlissten = \"127.0.0.1:1\"\n"),
            expect![
                "server.lissten: unknown key; expected one of `listen`, `max_body_bytes`, `ingest_tokens_file`, `allow_unauthenticated`, `tls_cert_file`, `tls_key_file`, `metrics_users_file`, `max_events_per_request`, `max_rejections_reported`, `header_timeout`, `body_timeout`, `idle_timeout`, `max_connections`, `max_inflight_bytes`, `metrics_auth_queue`"
            ],
        ),
        (
            minimal_and("decision_perod = \"P1M\"\n"),
            expect![
                "tracks.asylum.decision_perod: unknown key; expected one of `decision_period`, `penalty_grace`, `penalty`"
            ],
        ),
        (
            minimal_and("penalty = [{ days = 14, per_day = 23 }, { day = 14, per_day = 35 }]\n"),
            expect![
                "tracks.asylum.penalty[1].day: unknown key; expected `days` or `per_day`; tracks.asylum.penalty[1].days: missing"
            ],
        ),
        // A top-level key written after a table belongs to that table; the error says so.
        (
            minimal_and("phases = [\"intake\"]\n"),
            expect![
                "tracks.asylum.phases: unknown key; expected one of `decision_period`, `penalty_grace`, `penalty` (phases is a top-level key and must come before the first [table])"
            ],
        ),
    ]);
}

#[test]
fn bad_durations_are_errors_quoting_the_value() {
    check_errs(vec![
        (
            minimal_and("[time]\ntick = \"1s\"\n"),
            expect![[
                r#"time.tick: "1s" is not an ISO 8601 duration such as "P6M", "P14D" or "PT5M" (expected to find duration beginning with `P` or `p`, but found `1` instead)"#
            ]],
        ),
        (
            "[tracks.asylum]\ndecision_period = \"six months\"\n".to_owned(),
            expect![[
                r#"tracks.asylum.decision_period: "six months" is not an ISO 8601 duration such as "P6M", "P14D" or "PT5M" (expected to find duration beginning with `P` or `p`, but found `s` instead)"#
            ]],
        ),
        (
            "[tracks.asylum]\ndecision_period = \"P0D\"\n".to_owned(),
            expect![[r#"tracks.asylum.decision_period: "P0D" must be longer than zero"#]],
        ),
        (
            minimal_and("[time]\ntick = \"PT2H\"\n"),
            expect![[
                r#"time.tick: "PT2H" is out of range; it must be between "PT0.01S" and "PT1H""#
            ]],
        ),
        (
            minimal_and("[store]\nsnapshot_interval = \"PT0.5S\"\n"),
            expect![[r#"store.snapshot_interval: "PT0.5S" is too short; the minimum is "PT1S""#]],
        ),
        (
            minimal_and("[store]\nsnapshot_every_events = 10\n"),
            expect![[r#"store.snapshot_every_events: 10 is too small; the minimum is 1000"#]],
        ),
        (
            minimal_and("[quality]\nmax_audit_gap = \"-P1D\"\n"),
            expect![[r#"quality.max_audit_gap: "-P1D" must be longer than zero"#]],
        ),
        // Months in a fixed-length duration are refused with a suggestion in days.
        (
            minimal_and("[windows]\nrolling = [\"P7D\", \"P1M\"]\n"),
            expect![[
                r#"windows.rolling[1]: "P1M" has no fixed length; write it in days, e.g. "P30D""#
            ]],
        ),
        (
            minimal_and("[forecast]\nwindow = \"P1Y\"\n"),
            expect![[
                r#"forecast.window: "P1Y" has no fixed length; write it in days, e.g. "P365D""#
            ]],
        ),
    ]);
}

#[test]
fn window_lists_are_bounded_and_unique() {
    let nine = (1..=9)
        .map(|days| format!("\"P{days}D\""))
        .collect::<Vec<_>>();
    check_errs(vec![
        (
            minimal_and("[windows]\ndue_soon = [\"P7D\", \"P1W\"]\n"),
            expect![[
                r#"windows.due_soon[1]: "P1W" is the same window as windows.due_soon[0] ("P7D")"#
            ]],
        ),
        (
            minimal_and(&format!("[windows]\nrolling = [{}]\n", nine.join(", "))),
            expect!["windows.rolling: 9 windows given; at most 8 are allowed"],
        ),
    ]);
    let config = load_from_str(&minimal_and("[windows]\nrolling = []\n")).unwrap();
    assert!(config.windows.rolling.is_empty());
    assert_eq!(config.windows.due_soon.len(), 2);
}

#[test]
fn windows_sharing_buckets_are_at_most_ten_times_apart() {
    check_errs(vec![
        (
            minimal_and("[windows]\nrolling = [\"PT1H\", \"P365D\"]\n"),
            expect![[
                r#"windows.rolling: "P365D" (windows.rolling[1]) is 8760 times as long as "PT1H" (windows.rolling[0]); windows.rolling and forecast.window share one set of time buckets, so the longest may be at most 10 times the shortest"#
            ]],
        ),
        // The default forecast window (P28D) counts too.
        (
            minimal_and("[windows]\nrolling = [\"P1D\"]\n"),
            expect![[
                r#"forecast.window: "P28D" (forecast.window) is 28 times as long as "P1D" (windows.rolling[0]); windows.rolling and forecast.window share one set of time buckets, so the longest may be at most 10 times the shortest"#
            ]],
        ),
    ]);
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
    check_errs(vec![
        (
            minimal_and("[forecast]\nwindow = \"P200000D\"\n"),
            expect![[r#"forecast.window: "P200000D" is too long; the maximum is "P106751D""#]],
        ),
        (
            minimal_and("[quality]\nwindow = \"PT3000000H\"\n"),
            expect![[r#"quality.window: "PT3000000H" is too long; the maximum is "P106751D""#]],
        ),
        (
            minimal_and("[ingest]\nmax_future_skew = \"PT25H\"\n"),
            expect![[r#"ingest.max_future_skew: "PT25H" is too long; the maximum is "P1D""#]],
        ),
        (
            minimal_and("[store]\ndedup_window = \"P401D\"\n"),
            expect![[r#"store.dedup_window: "P401D" is too long; the maximum is "P400D""#]],
        ),
        // Location ids are 16-bit.
        (
            minimal_and("[limits]\nmax_locations = 65536\n"),
            expect!["limits.max_locations: 65536 is too large; the maximum is 65535"],
        ),
    ]);
    assert!(load_from_str(&minimal_and("[ingest]\nmax_future_skew = \"P1D\"\n")).is_ok());
    assert!(load_from_str(&minimal_and("[store]\ndedup_window = \"P400D\"\n")).is_ok());
    let config = load_from_str(&minimal_and("[limits]\nmax_locations = 65535\n")).unwrap();
    assert_eq!(config.limits.max_locations, 65535);
}

#[test]
fn tracks_and_targets_are_checked() {
    check_errs(vec![
        (
            String::new(),
            expect![[
                r#"tracks: at least one track must be configured, e.g. [tracks.asylum] with decision_period = "P6M""#
            ]],
        ),
        (
            "[tracks.asylum]\npenalty_grace = \"P1D\"\n".to_owned(),
            expect!["tracks.asylum.decision_period: missing"],
        ),
        (
            minimal_and(
                "[[targets]]\nname = \"backlog\"\ntrack = \"asylym\"\n\
                 clear_by = \"2027-06-30T00:00:00+02:00\"\n",
            ),
            expect![[
                r#"targets[0].track: "asylym" is not a configured track (configured: ["asylum"])"#
            ]],
        ),
        (
            minimal_and(
                "[[targets]]\nname = \"backlog\"\nclear_by = \"2027-06-30T00:00:00Z\"\n\
                 [[targets]]\nname = \"backlog\"\nclear_by = \"2027-06-30T00:00:00Z\"\n",
            ),
            expect![[r#"targets[1].name: "backlog" is already the name of targets[0]"#]],
        ),
        (
            minimal_and("[[targets]]\nname = \"x\"\nclear_by = \"2027-06-30T00:00:00\"\n"),
            expect![[
                r#"targets[0].clear_by: "2027-06-30T00:00:00" is not an RFC 3339 timestamp with offset, e.g. "2027-06-30T00:00:00+02:00" (failed to find offset component, which is required for parsing a timestamp)"#
            ]],
        ),
    ]);
}

#[test]
fn targets_may_leave_out_the_track_and_take_a_toml_date_time() {
    let target = "[[targets]]\nname = \"backlog\"\nclear_by = \"2027-06-30T00:00:00Z\"\n";
    let config = load_from_str(&minimal_and(target)).unwrap();
    assert_eq!(config.targets[0].track, None);
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
    check_errs(vec![
        (
            minimal_and("penalty = [{ days = 14, per_day = 23 }, { days = 0, per_day = 35 }]\n"),
            expect!["tracks.asylum.penalty[1].days: 0 is too small; the minimum is 1"],
        ),
        (
            minimal_and("penalty = [{ days = 14.5, per_day = 23 }]\n"),
            expect![
                "tracks.asylum.penalty[0].days: invalid type: floating point `14.5`, expected an integer"
            ],
        ),
        (
            minimal_and("penalty = [{ days = 14, per_day = -1 }]\n"),
            expect![
                "tracks.asylum.penalty[0].per_day: -1 is out of range; euros per day must be between 0 and 1000000"
            ],
        ),
        (
            minimal_and("penalty = [{ per_day = 1 }]\n"),
            expect!["tracks.asylum.penalty[0].days: missing"],
        ),
    ]);
}

#[test]
fn names_are_checked() {
    check_errs(vec![
        (
            "[tracks.Asylum]\ndecision_period = \"P6M\"\n".to_owned(),
            expect![[
                r#"tracks.Asylum: the track name "Asylum" must be 1 to 64 characters of a-z, 0-9 and _"#
            ]],
        ),
        (
            format!("phases = [\"intake\", \"none\"]\n{MINIMAL}"),
            expect![[
                r#"phases[1]: "none" is reserved: it is the phase of a case before any phase event"#
            ]],
        ),
        (
            format!("phases = [\"intake\", \"view\", \"intake\"]\n{MINIMAL}"),
            expect![[r#"phases[2]: "intake" is already listed as phases[0]"#]],
        ),
        (
            format!("phases = []\n{MINIMAL}"),
            expect!["phases: must list at least one name"],
        ),
        (
            minimal_and("[workforce]\nroles = [\"caseworker\", \"\"]\n"),
            expect!["workforce.roles[1]: must not be empty"],
        ),
    ]);
}

#[test]
fn type_mismatches_and_syntax_errors_name_the_key_and_the_reason() {
    check_errs(vec![
        (
            minimal_and("[server]\nmax_body_bytes = \"lots\"\n"),
            expect![[
                r#"server.max_body_bytes: invalid value: string "lots", expected an integer"#
            ]],
        ),
        (
            minimal_and("[workforce]\nroles = \"caseworker\"\n"),
            expect![[r#"workforce.roles: invalid type: string "caseworker", expected a sequence"#]],
        ),
        (
            "[tracks.asylum\ndecision_period = \"P6M\"\n".to_owned(),
            expect![[r#"
                <inline configuration>: TOML parse error at line 1, column 15
                  |
                1 | [tracks.asylum
                  |               ^
                unclosed table, expected `]`"#]],
        ),
    ]);
}

#[test]
fn other_checks_name_the_key() {
    check_errs(vec![
        (
            minimal_and("[time]\ntimezone = \"Europe/Amsterdm\"\n"),
            expect![[r#"time.timezone: unknown time zone "Europe/Amsterdm""#]],
        ),
        (
            minimal_and("[server]\nlisten = \"localhost:9723\"\n"),
            expect![[
                r#"server.listen: "localhost:9723" is not a socket address; write IP:port, e.g. "127.0.0.1:9723" or "[::1]:9723""#
            ]],
        ),
        (
            minimal_and("[server]\nlisten = \"0.0.0.0:9723\"\n"),
            expect![[
                r#"server.listen: "0.0.0.0:9723" is not a loopback address and server.ingest_tokens_file is empty, so anyone who can reach it could post events; set server.ingest_tokens_file, or server.allow_unauthenticated = true"#
            ]],
        ),
        (
            minimal_and("[workforce]\nemployee_label = \"pseudonym\"\n"),
            expect![[
                r#"workforce.pseudonym_key_file: missing: employee_label = "pseudonym" needs a key file for the HMAC"#
            ]],
        ),
        (
            minimal_and("[quality]\nmin_pass_ratio = 80\n"),
            expect!["quality.min_pass_ratio: 80 is out of range; it must be between 0 and 1"],
        ),
        (
            minimal_and("[store]\nsegment_bytes = 1000\n"),
            expect!["store.segment_bytes: 1000 is too small; the minimum is 1048576"],
        ),
        (
            minimal_and("[limits]\nmax_locations = 0\n"),
            expect!["limits.max_locations: 0 is too small; the minimum is 1"],
        ),
        (
            minimal_and("[thresholds]\nmax_mentees = 3\n"),
            expect![
                "thresholds.max_mentees: reserved: the daemon already exports this threshold from mentoring.max_mentees"
            ],
        ),
        (
            minimal_and("[thresholds]\nbacklog_forming_rise_factor = 0.9\n"),
            expect![
                "thresholds.backlog_forming_rise_factor: 0.9 is too small; the minimum is 1 (a factor on the week before's average of open cases: 1 is any rise)"
            ],
        ),
        (
            minimal_and("[thresholds]\nbacklog_forming_min_net_inflow = -5\n"),
            expect![
                "thresholds.backlog_forming_min_net_inflow: -5 is too small; the minimum is 0 (cases more in than out over 28 days)"
            ],
        ),
        (
            minimal_and("[log]\nformat = \"xml\"\n"),
            expect![[r#"log.format: "xml" is not one of "text", "json""#]],
        ),
    ]);
    let open = load_from_str(&minimal_and(
        "[server]\nlisten = \"0.0.0.0:9723\"\nallow_unauthenticated = true\n",
    ))
    .unwrap();
    assert!(open.server.allow_unauthenticated);
}

#[test]
fn tls_needs_both_files_or_neither() {
    check_errs(vec![
        (
            minimal_and("[server]\ntls_cert_file = \"/etc/backlogd/cert.pem\"\n"),
            expect![
                "server.tls_key_file: missing: server.tls_cert_file is set, and TLS needs the certificate's private key too (set both, or neither for plain HTTP)"
            ],
        ),
        (
            minimal_and(
                "[server]\ntls_cert_file = \"\"\ntls_key_file = \"/etc/backlogd/key.pem\"\n",
            ),
            expect![
                "server.tls_cert_file: missing: server.tls_key_file is set, and TLS needs the certificate too (set both, or neither for plain HTTP)"
            ],
        ),
    ]);
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
fn a_threshold_with_a_default_takes_the_files_value() {
    let config = load_from_str(&minimal_and(
        "[thresholds]\nbacklog_forming_rise_factor = 1.02\n",
    ))
    .unwrap();
    let mut expected = DEFAULTS.to_vec();
    expected[1].1 = 1.02;
    assert_eq!(thresholds(&config), expected);
}

#[test]
fn thresholds_accept_integers_and_floats_sorted_by_name() {
    let config = load_from_str(&minimal_and(
        "[thresholds]\nmax_overdue_cases = 100\nmax_clearance_days = 365.5\n",
    ))
    .unwrap();
    let mut expected = DEFAULTS.to_vec();
    expected.insert(3, ("max_clearance_days", 365.5));
    assert_eq!(thresholds(&config), expected);
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
    expect!["server.lisen: unknown key; expected one of `listen`, `max_body_bytes`, `ingest_tokens_file`, `allow_unauthenticated`, `tls_cert_file`, `tls_key_file`, `metrics_users_file`, `max_events_per_request`, `max_rejections_reported`, `header_timeout`, `body_timeout`, `idle_timeout`, `max_connections`, `max_inflight_bytes`, `metrics_auth_queue`"].assert_eq(&private("BACKLOGD__SERVER__LISEN", "127.0.0.1:0"));
    expect![[r#"server.allow_unauthenticated: invalid type: string "maybe", expected a boolean (set in the environment)"#]].assert_eq(&private("BACKLOGD__SERVER__ALLOW_UNAUTHENTICATED", "maybe"));
}

/// `[sources.nats]`: typed, with defaults, overridable from the environment (a list from a
/// comma-separated string), and every problem names its key.
#[test]
fn nats_source_is_validated_and_overridable() {
    let nats = "[sources.nats]\nurl = \"nats://127.0.0.1:4222\"\nstream = \"CASES\"\n\
                subjects = [\"cases.>\"]\ndurable = \"backlogd\"\n";
    let config = load_from_str(&minimal_and(nats)).unwrap();
    assert_eq!(
        config.nats,
        Some(NatsConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "CASES".to_owned(),
            subjects: vec!["cases.>".to_owned()],
            durable: "backlogd".to_owned(),
            create_stream: false,
            credentials_file: None,
            tls_ca_file: None,
            max_in_flight: 10_000,
            dead_letter_subject: None,
            partitions: 1,
            owned_partitions: vec![0],
            start_after: None,
        })
    );
    assert_eq!(load_from_str(MINIMAL).unwrap().nats, None);
    let with_env = |pairs: &[(&str, &str)]| {
        let mut source = ConfigSource::inline(&minimal_and(nats));
        source.environment = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        source.load()
    };
    let overridden = with_env(&[
        ("BACKLOGD__SOURCES__NATS__SUBJECTS", "cases.a.>, workforce"),
        ("BACKLOGD__SOURCES__NATS__MAX_IN_FLIGHT", "64"),
        ("BACKLOGD__SOURCES__NATS__CREATE_STREAM", "true"),
        ("BACKLOGD__SOURCES__NATS__DEAD_LETTER_SUBJECT", "dead.cases"),
        ("BACKLOGD__SOURCES__NATS__PARTITIONS", "4"),
        ("BACKLOGD__SOURCES__NATS__OWNED_PARTITIONS", "3, 1"),
        ("BACKLOGD__SOURCES__NATS__START_AFTER", "431207"),
    ])
    .unwrap()
    .nats
    .unwrap();
    assert_eq!(overridden.subjects, ["cases.a.>", "workforce"]);
    assert_eq!(overridden.max_in_flight, 64);
    assert_eq!(overridden.start_after, Some(431_207));
    assert!(overridden.create_stream);
    assert_eq!(
        overridden.dead_letter_subject.as_deref(),
        Some("dead.cases")
    );
    let env_error = |name: &str, value: &str| with_env(&[(name, value)]).unwrap_err().to_string();
    expect!["sources.nats.max_in_flight: 0 is too small; the minimum is 1"]
        .assert_eq(&env_error("BACKLOGD__SOURCES__NATS__MAX_IN_FLIGHT", "0"));
    expect!["sources.nats.start_after: -1 is too small; the minimum is 0"]
        .assert_eq(&env_error("BACKLOGD__SOURCES__NATS__START_AFTER", "-1"));
    expect!["sources.nats.sbjects: unknown key; expected one of `url`, `stream`, `subjects`, `durable`, `create_stream`, `credentials_file`, `tls_ca_file`, `max_in_flight`, `dead_letter_subject`, `partitions`, `owned_partitions`, `start_after`"]
        .assert_eq(&env_error("BACKLOGD__SOURCES__NATS__SBJECTS", "x"));
    check_errs(vec![
        (
            minimal_and("[sources.nats]\nstream = \"S\"\n"),
            expect!["sources.nats.url: missing"],
        ),
        (
            minimal_and(&nats.replace("nats://127.0.0.1:4222", "http://x")),
            expect![[
                r#"sources.nats.url: "http://x" is not a NATS URL; write nats://HOST:PORT or tls://HOST:PORT"#
            ]],
        ),
        (
            minimal_and(&nats.replace("\"CASES\"", "\"CA.SES\"")),
            expect![[
                r#"sources.nats.stream: "CA.SES" is not a JetStream name: at most 64 bytes, no whitespace and none of . * > / \"#
            ]],
        ),
        (
            minimal_and(&nats.replace("[\"cases.>\"]", "[]")),
            expect![[
                r#"sources.nats.subjects: missing; list the subjects to consume, e.g. ["cases.>"]"#
            ]],
        ),
        (
            minimal_and(&nats.replace("[\"cases.>\"]", "[\"cases.>.x\"]")),
            expect![[
                r#"sources.nats.subjects[0]: "cases.>.x" is not a NATS subject (dot-separated tokens; `*` for one token, `>` only last)"#
            ]],
        ),
        (
            minimal_and(&format!("{nats}dead_letter_subject = \"cases.dead\"\n")),
            expect![[
                r#"sources.nats.dead_letter_subject: "cases.dead" is one of the consumed subjects; rejected events would be consumed again"#
            ]],
        ),
        (
            minimal_and(&format!(
                "{nats}partitions = 2\nowned_partitions = [0, 2]\n"
            )),
            expect![
                "sources.nats.owned_partitions[1]: 2 is not a partition; sources.nats.partitions = 2 numbers them 0 to 1"
            ],
        ),
        (
            minimal_and(&format!(
                "{nats}partitions = 2\nowned_partitions = [1, 1]\n"
            )),
            expect!["sources.nats.owned_partitions: lists a partition twice"],
        ),
        (
            minimal_and(&format!("{nats}max_in_flight = 2.5\n")),
            expect![
                "sources.nats.max_in_flight: invalid type: floating point `2.5`, expected an integer"
            ],
        ),
    ]);
}

/// The thresholds the daemon exports without a line in the file, with their defaults
/// (docs/configuration.md), in name order.
const DEFAULTS: [(&str, f64); 13] = [
    ("backlog_forming_min_net_inflow", 0.0),
    ("backlog_forming_rise_factor", 1.0),
    ("benefit_of_doubt_spike_factor", 1.5),
    ("max_due_soon_per_weekly_outflow", 1.5),
    ("max_hearing_cancellation_ratio", 0.15),
    ("max_inexperienced_decision_ratio", 0.1),
    ("max_ingest_gap_seconds", 345_600.0),
    ("max_overdue_cases", 100.0),
    ("max_unassigned_cases", 50.0),
    ("min_quality_audits", 10.0),
    ("min_weekly_decisions", 20.0),
    ("min_weekly_hearings", 10.0),
    ("penalty_rise_factor", 1.1),
];

fn thresholds(config: &Config) -> Vec<(&str, f64)> {
    config
        .thresholds
        .iter()
        .map(|(name, value)| (name.as_str(), *value))
        .collect()
}

/// The whole report of `toml` as `check-config` prints it for a file called `backlogd.toml`.
fn report(toml: &str) -> String {
    match load_from_str(toml) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error.report("backlogd.toml", toml),
    }
}

/// Every problem at once (issue 22): three independent mistakes are three lines, each with its
/// key and its line in the file, in the file's order; more within one section too; what follows
/// from taking a bad key out is not named. (Before, only the first was named, and the user ran
/// check-config three times.)
#[test]
fn every_problem_is_named_at_once_with_its_line() {
    let three = "[server]\nlisten = \"localhost\"\n\n[store]\ndurability = \"sometimes\"\n\n\
                 [tracks.asylum]\ndecision_period = \"P6M\"\n\n[thresholds]\n\
                 max_overdue_cases = \"many\"\n";
    expect![[r#"
        backlogd.toml:2: server.listen: "localhost" is not a socket address; write IP:port, e.g. "127.0.0.1:9723" or "[::1]:9723"
        backlogd.toml:5: store.durability: "sometimes" is not one of "fsync", "none"
        backlogd.toml:11: thresholds.max_overdue_cases: invalid type: string "many", expected a floating point"#]].assert_eq(&report(three));
    let in_one_section = "[server]\nlisten = \"nowhere\"\nmax_body_bytes = 0\nlistn = 1\n\n\
                          [tracks.asylum]\ndecision_period = \"P6M\"\n";
    expect![[r#"
        backlogd.toml:2: server.listen: "nowhere" is not a socket address; write IP:port, e.g. "127.0.0.1:9723" or "[::1]:9723"
        backlogd.toml:3: server.max_body_bytes: 0 is too small; the minimum is 1
        backlogd.toml:4: server.listn: unknown key; expected one of `listen`, `max_body_bytes`, `ingest_tokens_file`, `allow_unauthenticated`, `tls_cert_file`, `tls_key_file`, `metrics_users_file`, `max_events_per_request`, `max_rejections_reported`, `header_timeout`, `body_timeout`, `idle_timeout`, `max_connections`, `max_inflight_bytes`, `metrics_auth_queue`"#]].assert_eq(&report(in_one_section));
    let missing = "[tracks.asylum]\npenalty_grace = \"P0D\"\n\n[report]\nlanguage = \"fr\"\n";
    expect![[r#"
        backlogd.toml:1: tracks.asylum.decision_period: missing
        backlogd.toml:5: report.language: "fr" is not one of "en", "nl""#]]
    .assert_eq(&report(missing));
    let bad_required = "[tracks.asylum]\ndecision_period = \"six months\"\n\n\
                        [[targets]]\nname = \"Backlog\"\nclear_by = \"2027-06-30T00:00:00Z\"\n";
    expect![[r#"backlogd.toml:2: tracks.asylum.decision_period: "six months" is not an ISO 8601 duration such as "P6M", "P14D" or "PT5M" (expected to find duration beginning with `P` or `p`, but found `s` instead)"#]].assert_eq(&report(bad_required));
    // One problem reads as before.
    expect![[r#"backlogd.toml:2: server.listen: "x" is not a socket address; write IP:port, e.g. "127.0.0.1:9723" or "[::1]:9723""#]].assert_eq(&report(&format!("[server]\nlisten = \"x\"\n{MINIMAL}")));
}
