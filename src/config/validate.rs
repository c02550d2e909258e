//! Validation: raw values in, typed values out, every problem named by its key. Defaults are
//! filled in here too (docs/configuration.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::raw::{
    Integer, RawConfig, RawLog, RawPenaltyTier, RawQuality, RawServer, RawStore, RawTarget,
    RawTime, RawTrack, RawWorkforce,
};
use super::values::{
    calendar_span, fixed_duration, integer_in, integer_u32, non_negative_duration, optional_path,
    positive_duration, window,
};
use super::{
    Config, ConfigError, Durability, EmployeeLabel, ForecastConfig, IngestConfig, LimitsConfig,
    LogConfig, LogFormat, MAX_WINDOW_RATIO, MentoringConfig, PenaltyTier, QualityConfig,
    ReportConfig, ReportLanguage, ServerConfig, ServerLimits, StoreConfig, TargetConfig,
    TimeConfig, TlsFiles, TrackConfig, Window, WindowsConfig, WorkforceConfig, invalid,
};

// ---------------------------------------------------------------------------------------------
// Defaults (docs/configuration.md)

pub(super) const DEFAULT_PHASES: [&str; 5] = ["intake", "hearing", "intention", "view", "decision"];
pub(super) const DEFAULT_ROLES: [&str; 3] = ["caseworker", "mentor", "decision_officer"];
const DEFAULT_WINDOWS: [&str; 2] = ["P7D", "P28D"];
/// The phase of a case before any phase event; a configured phase may not use the name.
const RESERVED_PHASE: &str = "none";
/// `backlogd_threshold` names the daemon exports from other keys; `[thresholds]` may not reuse them.
const RESERVED_THRESHOLDS: [(&str, &str); 4] = [
    ("max_open_cases", "workforce.max_open_cases"),
    ("max_mentees", "mentoring.max_mentees"),
    ("min_pass_ratio", "quality.min_pass_ratio"),
    ("max_audit_gap_seconds", "quality.max_audit_gap"),
];
/// Every `[thresholds]` key the shipped rules read, with its default, so that each alert is armed
/// without a line in the file (docs/configuration.md, the reasoning in docs/alerting.md); a value in
/// `[thresholds]` replaces it. Each with its minimum and what the number is, for the error.
pub(super) const DEFAULT_THRESHOLDS: [(&str, f64, f64, &str); 13] = [
    (
        "backlog_forming_min_net_inflow",
        0.0,
        0.0,
        "cases more in than out over 28 days",
    ),
    (
        "backlog_forming_rise_factor",
        1.0,
        1.0,
        "a factor on the week before's average of open cases: 1 is any rise",
    ),
    (
        "benefit_of_doubt_spike_factor",
        1.5,
        1.0,
        "a factor on the 28-day share of benefit-of-doubt decisions",
    ),
    (
        "max_due_soon_per_weekly_outflow",
        1.5,
        0.0,
        "cases due within 7 days per case decided last week",
    ),
    (
        "max_hearing_cancellation_ratio",
        0.15,
        0.0,
        "a share of the hearings called",
    ),
    (
        "max_inexperienced_decision_ratio",
        0.1,
        0.0,
        "a share of the week's decisions",
    ),
    (
        "max_ingest_gap_seconds",
        345_600.0,
        60.0,
        "seconds without an applied event",
    ),
    ("max_overdue_cases", 100.0, 0.0, "overdue cases"),
    (
        "max_unassigned_cases",
        50.0,
        0.0,
        "cases assigned to nobody",
    ),
    (
        "min_quality_audits",
        10.0,
        0.0,
        "audits in the quality window",
    ),
    ("min_weekly_decisions", 20.0, 0.0, "decisions in 7 days"),
    (
        "min_weekly_hearings",
        10.0,
        0.0,
        "hearings called in 7 days",
    ),
    (
        "penalty_rise_factor",
        1.1,
        1.0,
        "a factor on last week's average penalty exposure",
    ),
];
pub(super) const MAX_NAME_BYTES: usize = 64;
const MAX_WINDOWS: usize = 8;
/// The longest `ingest.max_future_skew`: clocks that are off by more than a day need fixing, not
/// tolerance.
const MAX_FUTURE_SKEW_DAYS: i64 = 1;
/// The longest `store.dedup_window`: remembered event ids cost memory for as long as this.
const MAX_DEDUP_WINDOW_DAYS: i64 = 400;
/// Most tracks, phases or roles (the core stores their ids in one byte).
const MAX_LIST: usize = 200;
/// Bounds that keep penalty arithmetic (cents × days × cases) far from overflowing an `i64`.
const MAX_PENALTY_TIER_DAYS: i64 = 3650;
const MAX_PENALTY_PER_DAY_EUROS: f64 = 1_000_000.0;
const MEBIBYTE: i64 = 1024 * 1024;

/// The problems of the sections checked so far: each section is checked whatever the others
/// said, so that one pass names a problem of every section (`super::build` takes out the key of
/// each and checks again, for the problems after the first within a section).
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|error| self.0.push(error)).ok()
    }
}

pub(super) fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut problems = Problems::default();
    let phases = problems.take(validate_phases(raw.phases));
    let tracks = problems.take(validate_tracks(raw.tracks));
    let targets = tracks
        .as_ref()
        .and_then(|tracks| problems.take(validate_targets(raw.targets, tracks)));
    let windows = problems.take(validate_windows(
        raw.windows.rolling,
        raw.windows.due_soon,
        raw.forecast.window,
    ));
    let new_staff_weeks = problems.take(
        integer_in(
            "forecast.new_staff_weeks",
            raw.forecast.new_staff_weeks,
            12,
            1,
            520,
        )
        .map(|weeks| u32::try_from(weeks).unwrap_or(12)),
    );
    let server = problems.take(validate_server(raw.server));
    let store = problems.take(validate_store(raw.store));
    let time = problems.take(validate_time(raw.time));
    let max_future_skew = problems.take(at_most_days(
        "ingest.max_future_skew",
        raw.ingest.max_future_skew.as_deref().unwrap_or("PT5M"),
        non_negative_duration,
        MAX_FUTURE_SKEW_DAYS,
    ));
    let workforce = problems.take(validate_workforce(raw.workforce));
    let max_mentees = problems.take(integer_u32(
        "mentoring.max_mentees",
        raw.mentoring.max_mentees,
        5,
        0,
    ));
    let quality = problems.take(validate_quality(raw.quality));
    let thresholds = problems.take(validate_thresholds(raw.thresholds));
    let limits = problems.take(validate_limits(raw.limits));
    let log = problems.take(validate_log(raw.log));
    let language = problems.take(match raw.report.language.as_deref().unwrap_or("en") {
        "en" => Ok(ReportLanguage::En),
        "nl" => Ok(ReportLanguage::Nl),
        other => Err(invalid(
            format!("{other:?} is not one of \"en\", \"nl\""),
            "report.language",
        )),
    });
    let nats = problems.take(
        raw.sources
            .nats
            .map(super::sources::validate_nats)
            .transpose(),
    );
    let (
        Some(phases),
        Some(tracks),
        Some(targets),
        Some((windows, forecast_window)),
        Some(new_staff_weeks),
        Some(server),
        Some(store),
        Some(time),
        Some(max_future_skew),
        Some(workforce),
        Some(max_mentees),
        Some(quality),
        Some(thresholds),
        Some(limits),
        Some(log),
        Some(language),
        Some(nats),
    ) = (
        phases,
        tracks,
        targets,
        windows,
        new_staff_weeks,
        server,
        store,
        time,
        max_future_skew,
        workforce,
        max_mentees,
        quality,
        thresholds,
        limits,
        log,
        language,
        nats,
    )
    else {
        // A section is missing only when it had a problem, which `problems` holds.
        let mut found = problems.0;
        return Err(if found.len() == 1 {
            found.remove(0)
        } else {
            ConfigError::Many(found)
        });
    };
    Ok(Config {
        phases,
        server,
        store,
        time,
        ingest: IngestConfig { max_future_skew },
        tracks,
        windows,
        forecast: ForecastConfig {
            window: forecast_window,
            new_staff_weeks,
        },
        targets,
        workforce,
        mentoring: MentoringConfig { max_mentees },
        quality,
        thresholds,
        limits,
        log,
        report: ReportConfig { language },
        nats,
    })
}

fn validate_phases(raw: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let phases = names_list("phases", raw, &DEFAULT_PHASES)?;
    if let Some(index) = phases.iter().position(|phase| phase == RESERVED_PHASE) {
        return Err(invalid(
            format!(
                "{RESERVED_PHASE:?} is reserved: it is the phase of a case before any phase event"
            ),
            format!("phases[{index}]"),
        ));
    }
    // The core numbers tracks, phases and roles with one byte each.
    if phases.len() > MAX_LIST {
        return Err(invalid(
            format!("at most {MAX_LIST} phases, got {}", phases.len()),
            "phases",
        ));
    }
    Ok(phases)
}

/// `[windows]` and `forecast.window`, which share time buckets.
fn validate_windows(
    rolling: Option<Vec<String>>,
    due_soon: Option<Vec<String>>,
    forecast: Option<String>,
) -> Result<(WindowsConfig, Window), ConfigError> {
    let rolling = window_list("windows.rolling", rolling)?;
    let forecast = window("forecast.window", forecast.as_deref().unwrap_or("P28D"))?;
    check_shared_buckets(&rolling, &forecast)?;
    Ok((
        WindowsConfig {
            rolling,
            due_soon: window_list("windows.due_soon", due_soon)?,
        },
        forecast,
    ))
}

fn validate_limits(raw: super::raw::RawLimits) -> Result<LimitsConfig, ConfigError> {
    Ok(LimitsConfig {
        // Location ids are 16-bit in the core; `other` takes the id after the last named one.
        max_locations: u32::try_from(integer_in(
            "limits.max_locations",
            raw.max_locations,
            64,
            1,
            i64::from(u16::MAX),
        )?)
        .unwrap_or(u32::from(u16::MAX)),
        max_employee_series: integer_u32(
            "limits.max_employee_series",
            raw.max_employee_series,
            20_000,
            0,
        )?,
        max_announcements_per_target: u32::try_from(integer_in(
            "limits.max_announcements_per_target",
            raw.max_announcements_per_target,
            100,
            1,
            10_000,
        )?)
        .unwrap_or(10_000),
    })
}

fn validate_server(raw: RawServer) -> Result<ServerConfig, ConfigError> {
    let listen_text = raw.listen.as_deref().unwrap_or("127.0.0.1:9723");
    let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
        invalid(
            format!(
                "{listen_text:?} is not a socket address; write IP:port, e.g. \"127.0.0.1:9723\" \
                 or \"[::1]:9723\""
            ),
            "server.listen",
        )
    })?;
    let max_body_bytes = integer_in(
        "server.max_body_bytes",
        raw.max_body_bytes,
        16 * MEBIBYTE,
        1,
        i64::try_from(usize::MAX).unwrap_or(i64::MAX),
    )?;
    let ingest_tokens_file = optional_path(raw.ingest_tokens_file);
    let allow_unauthenticated = raw.allow_unauthenticated.unwrap_or(false);
    // docs/http.md: without ingest tokens the daemon listens on loopback only, unless the operator
    // says explicitly that an open ingest endpoint is intended.
    if ingest_tokens_file.is_none() && !listen.ip().is_loopback() && !allow_unauthenticated {
        return Err(invalid(
            format!(
                "{listen_text:?} is not a loopback address and server.ingest_tokens_file is \
                 empty, so anyone who can reach it could post events; set \
                 server.ingest_tokens_file, or server.allow_unauthenticated = true"
            ),
            "server.listen",
        ));
    }
    let tls = match (
        optional_path(raw.tls_cert_file),
        optional_path(raw.tls_key_file),
    ) {
        (Some(cert_file), Some(key_file)) => Some(TlsFiles {
            cert_file,
            key_file,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "missing: server.tls_cert_file is set, and TLS needs the certificate's private \
                 key too (set both, or neither for plain HTTP)",
                "server.tls_key_file",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "missing: server.tls_key_file is set, and TLS needs the certificate too (set \
                 both, or neither for plain HTTP)",
                "server.tls_cert_file",
            ));
        }
    };
    let metrics_users_file = optional_path(raw.metrics_users_file);
    let max_inflight_bytes = integer_in(
        "server.max_inflight_bytes",
        raw.max_inflight_bytes,
        (64 * MEBIBYTE).max(max_body_bytes),
        1,
        i64::MAX,
    )?;
    if max_inflight_bytes < max_body_bytes {
        return Err(invalid(
            format!(
                "{max_inflight_bytes} is smaller than server.max_body_bytes ({max_body_bytes}), so \
                 a request of the largest allowed size could never be accepted"
            ),
            "server.max_inflight_bytes",
        ));
    }
    let timeout = |key: &str, raw: Option<&str>, default: &str| {
        let text = raw.unwrap_or(default);
        let duration = positive_duration(key, text)?;
        if duration > SignedDuration::from_hours(1) {
            return Err(invalid(
                format!("{text:?} is too long; the maximum is \"PT1H\""),
                key,
            ));
        }
        Ok::<_, ConfigError>(duration.unsigned_abs())
    };
    let count = |key: &str, raw: Option<Integer>, default: i64, max: i64| {
        integer_in(key, raw, default, 1, max).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let limits = ServerLimits {
        max_events_per_request: count(
            "server.max_events_per_request",
            raw.max_events_per_request,
            100_000,
            10_000_000,
        )?,
        max_rejections_reported: count(
            "server.max_rejections_reported",
            raw.max_rejections_reported,
            100,
            100_000,
        )?,
        header_timeout: timeout(
            "server.header_timeout",
            raw.header_timeout.as_deref(),
            "PT10S",
        )?,
        body_timeout: timeout("server.body_timeout", raw.body_timeout.as_deref(), "PT60S")?,
        idle_timeout: timeout("server.idle_timeout", raw.idle_timeout.as_deref(), "PT60S")?,
        max_connections: count(
            "server.max_connections",
            raw.max_connections,
            1024,
            1_000_000,
        )?,
        max_inflight_bytes: usize::try_from(max_inflight_bytes).unwrap_or(usize::MAX),
        metrics_auth_queue: count("server.metrics_auth_queue", raw.metrics_auth_queue, 8, 1024)?,
    };
    Ok(ServerConfig {
        listen,
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
        ingest_tokens_file,
        allow_unauthenticated,
        tls,
        metrics_users_file,
        limits,
    })
}

fn validate_store(raw: RawStore) -> Result<StoreConfig, ConfigError> {
    let path = raw.path.unwrap_or_else(|| "data".to_owned());
    if path.is_empty() {
        return Err(invalid("must not be empty", "store.path"));
    }
    let durability = match raw.durability.as_deref().unwrap_or("fsync") {
        "fsync" => Durability::Fsync,
        "none" => Durability::None,
        other => {
            return Err(invalid(
                format!("{other:?} is not one of \"fsync\", \"none\""),
                "store.durability",
            ));
        }
    };
    let snapshot_text = raw.snapshot_interval.as_deref().unwrap_or("PT5M");
    let snapshot_interval = fixed_duration("store.snapshot_interval", snapshot_text)?;
    if snapshot_interval < SignedDuration::from_secs(1) {
        return Err(invalid(
            format!("{snapshot_text:?} is too short; the minimum is \"PT1S\""),
            "store.snapshot_interval",
        ));
    }
    Ok(StoreConfig {
        path: PathBuf::from(path),
        durability,
        snapshot_interval: snapshot_interval.unsigned_abs(),
        snapshot_every_events: integer_in(
            "store.snapshot_every_events",
            raw.snapshot_every_events,
            1_000_000,
            1_000,
            i64::MAX,
        )?
        .unsigned_abs(),
        snapshot_every_bytes: integer_in(
            "store.snapshot_every_bytes",
            raw.snapshot_every_bytes,
            256 * MEBIBYTE,
            MEBIBYTE,
            i64::MAX,
        )?
        .unsigned_abs(),
        dedup_window: at_most_days(
            "store.dedup_window",
            raw.dedup_window.as_deref().unwrap_or("P30D"),
            positive_duration,
            MAX_DEDUP_WINDOW_DAYS,
        )?,
        segment_bytes: integer_in(
            "store.segment_bytes",
            raw.segment_bytes,
            64 * MEBIBYTE,
            MEBIBYTE,
            i64::MAX,
        )?
        .unsigned_abs(),
    })
}

fn validate_time(raw: RawTime) -> Result<TimeConfig, ConfigError> {
    let timezone_name = raw
        .timezone
        .unwrap_or_else(|| "Europe/Amsterdam".to_owned());
    let timezone = TimeZone::get(&timezone_name).map_err(|_| {
        let hint = if jiff::tz::db().is_definitively_empty() {
            " (no time zone database was found on this system; install tzdata)"
        } else {
            ""
        };
        invalid(
            format!("unknown time zone {timezone_name:?}{hint}"),
            "time.timezone",
        )
    })?;
    let tick_text = raw.tick.as_deref().unwrap_or("PT1S");
    let tick = fixed_duration("time.tick", tick_text)?;
    if tick < SignedDuration::from_millis(10) || tick > SignedDuration::from_hours(1) {
        return Err(invalid(
            format!("{tick_text:?} is out of range; it must be between \"PT0.01S\" and \"PT1H\""),
            "time.tick",
        ));
    }
    Ok(TimeConfig {
        timezone,
        timezone_name,
        tick: tick.unsigned_abs(),
    })
}

fn validate_tracks(raw: BTreeMap<String, RawTrack>) -> Result<Vec<TrackConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(invalid(
            "at least one track must be configured, e.g. [tracks.asylum] with decision_period = \
             \"P6M\"",
            "tracks",
        ));
    }
    // The core numbers tracks, phases and roles with one byte each.
    if raw.len() > MAX_LIST {
        return Err(invalid(
            format!("at most {MAX_LIST} tracks, got {}", raw.len()),
            "tracks",
        ));
    }
    // A BTreeMap iterates in name order, which is the order `Config::track` relies on.
    raw.into_iter()
        .map(|(name, track)| validate_track(name, track))
        .collect()
}

fn validate_track(name: String, raw: RawTrack) -> Result<TrackConfig, ConfigError> {
    let key = format!("tracks.{name}");
    let well_formed = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if !well_formed {
        return Err(invalid(
            format!(
                "the track name {name:?} must be 1 to {MAX_NAME_BYTES} characters of a-z, 0-9 and _"
            ),
            key,
        ));
    }
    let period_key = format!("{key}.decision_period");
    let Some(period_text) = raw.decision_period else {
        return Err(invalid("missing", period_key));
    };
    let decision_period = calendar_span(&period_key, &period_text)?;
    if !decision_period.is_positive() {
        return Err(invalid(
            format!("{period_text:?} must be longer than zero"),
            period_key,
        ));
    }
    let grace_key = format!("{key}.penalty_grace");
    let grace_text = raw.penalty_grace.as_deref().unwrap_or("P0D");
    let penalty_grace = calendar_span(&grace_key, grace_text)?;
    if penalty_grace.is_negative() {
        return Err(invalid(
            format!("{grace_text:?} must not be negative"),
            grace_key,
        ));
    }
    let penalty = raw
        .penalty
        .into_iter()
        .enumerate()
        .map(|(index, tier)| validate_penalty_tier(&format!("{key}.penalty[{index}]"), tier))
        .collect::<Result<_, _>>()?;
    Ok(TrackConfig {
        name,
        decision_period,
        penalty_grace,
        penalty,
    })
}

fn validate_penalty_tier(key: &str, raw: RawPenaltyTier) -> Result<PenaltyTier, ConfigError> {
    let days_key = format!("{key}.days");
    let Some(days) = raw.days else {
        return Err(invalid("missing", days_key));
    };
    let days = integer_in(&days_key, Some(days), 0, 1, MAX_PENALTY_TIER_DAYS)?;
    let per_day_key = format!("{key}.per_day");
    let Some(per_day) = raw.per_day else {
        return Err(invalid("missing", per_day_key));
    };
    if !(0.0..=MAX_PENALTY_PER_DAY_EUROS).contains(&per_day) {
        return Err(invalid(
            format!(
                "{per_day} is out of range; euros per day must be between 0 and \
                 {MAX_PENALTY_PER_DAY_EUROS}"
            ),
            per_day_key,
        ));
    }
    Ok(PenaltyTier {
        days: u32::try_from(days).unwrap_or(u32::MAX),
        // The range check above makes the conversion exact: at most 1e8 cents.
        per_day_cents: (per_day * 100.0).round() as i64,
    })
}

fn validate_targets(
    raw: Vec<RawTarget>,
    tracks: &[TrackConfig],
) -> Result<Vec<TargetConfig>, ConfigError> {
    let mut targets: Vec<TargetConfig> = Vec::with_capacity(raw.len());
    for (index, target) in raw.into_iter().enumerate() {
        let key = format!("targets[{index}]");
        let Some(name) = target.name else {
            return Err(invalid("missing", format!("{key}.name")));
        };
        if name.is_empty() {
            return Err(invalid("must not be empty", format!("{key}.name")));
        }
        if let Some(first) = targets.iter().position(|earlier| earlier.name == name) {
            return Err(invalid(
                format!("{name:?} is already the name of targets[{first}]"),
                format!("{key}.name"),
            ));
        }
        if let Some(track) = &target.track
            && !tracks.iter().any(|configured| &configured.name == track)
        {
            let configured: Vec<&str> = tracks.iter().map(|track| track.name.as_str()).collect();
            return Err(invalid(
                format!("{track:?} is not a configured track (configured: {configured:?})"),
                format!("{key}.track"),
            ));
        }
        let clear_by_key = format!("{key}.clear_by");
        let Some(clear_by_text) = target.clear_by else {
            return Err(invalid("missing", clear_by_key));
        };
        let clear_by: Timestamp = clear_by_text.trim().parse().map_err(|error| {
            invalid(
                format!(
                    "{clear_by_text:?} is not an RFC 3339 timestamp with offset, e.g. \
                     \"2027-06-30T00:00:00+02:00\" ({error})"
                ),
                clear_by_key,
            )
        })?;
        targets.push(TargetConfig {
            name,
            track: target.track,
            clear_by,
        });
    }
    Ok(targets)
}

fn validate_workforce(raw: RawWorkforce) -> Result<WorkforceConfig, ConfigError> {
    let roles = names_list("workforce.roles", raw.roles, &DEFAULT_ROLES)?;
    if roles.len() > MAX_LIST {
        return Err(invalid(
            format!("at most {MAX_LIST} roles, got {}", roles.len()),
            "workforce.roles",
        ));
    }
    let employee_label = match raw.employee_label.as_deref().unwrap_or("id") {
        "id" => EmployeeLabel::Id,
        "pseudonym" => EmployeeLabel::Pseudonym,
        "none" => EmployeeLabel::None,
        other => {
            return Err(invalid(
                format!("{other:?} is not one of \"id\", \"pseudonym\", \"none\""),
                "workforce.employee_label",
            ));
        }
    };
    let pseudonym_key_file = optional_path(raw.pseudonym_key_file);
    if employee_label == EmployeeLabel::Pseudonym && pseudonym_key_file.is_none() {
        return Err(invalid(
            "missing: employee_label = \"pseudonym\" needs a key file for the HMAC",
            "workforce.pseudonym_key_file",
        ));
    }
    Ok(WorkforceConfig {
        roles,
        employee_label,
        pseudonym_key_file,
        max_open_cases: integer_u32("workforce.max_open_cases", raw.max_open_cases, 20, 0)?,
    })
}

fn validate_quality(raw: RawQuality) -> Result<QualityConfig, ConfigError> {
    let min_pass_ratio = raw.min_pass_ratio.unwrap_or(0.8);
    if !(0.0..=1.0).contains(&min_pass_ratio) {
        return Err(invalid(
            format!("{min_pass_ratio} is out of range; it must be between 0 and 1"),
            "quality.min_pass_ratio",
        ));
    }
    Ok(QualityConfig {
        window: window("quality.window", raw.window.as_deref().unwrap_or("P91D"))?,
        min_pass_ratio,
        max_audit_gap: positive_duration(
            "quality.max_audit_gap",
            raw.max_audit_gap.as_deref().unwrap_or("P14D"),
        )?,
    })
}

fn validate_thresholds(raw: BTreeMap<String, f64>) -> Result<Vec<(String, f64)>, ConfigError> {
    for (name, value) in &raw {
        let key = format!("thresholds.{name}");
        if name.is_empty() {
            return Err(invalid("a threshold name must not be empty", "thresholds"));
        }
        if let Some((_, source)) = RESERVED_THRESHOLDS
            .iter()
            .find(|(reserved, _)| reserved == name)
        {
            return Err(invalid(
                format!("reserved: the daemon already exports this threshold from {source}"),
                key,
            ));
        }
        if value.is_nan() {
            return Err(invalid("must be a number, not nan", key));
        }
        if let Some((_, _, minimum, meaning)) = DEFAULT_THRESHOLDS
            .iter()
            .find(|(defaulted, ..)| defaulted == name)
            && value < minimum
        {
            return Err(invalid(
                format!("{value} is too small; the minimum is {minimum} ({meaning})"),
                key,
            ));
        }
    }
    let mut thresholds = raw;
    for (name, default, ..) in DEFAULT_THRESHOLDS {
        thresholds.entry(name.to_owned()).or_insert(default);
    }
    // A BTreeMap iterates in name order.
    Ok(thresholds.into_iter().collect())
}

fn validate_log(raw: RawLog) -> Result<LogConfig, ConfigError> {
    let format = match raw.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(invalid(
                format!("{other:?} is not one of \"text\", \"json\""),
                "log.format",
            ));
        }
    };
    let level = raw.level.unwrap_or_else(|| "info".to_owned());
    if level.trim().is_empty() {
        return Err(invalid("must not be empty", "log.level"));
    }
    Ok(LogConfig { format, level })
}

/// A list of names (phases, roles): the default when absent, else non-empty, each name 1 to
/// `MAX_NAME_BYTES` bytes and listed once.
fn names_list(
    key: &str,
    raw: Option<Vec<String>>,
    default: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let Some(names) = raw else {
        return Ok(default.iter().map(|name| (*name).to_owned()).collect());
    };
    if names.is_empty() {
        return Err(invalid("must list at least one name", key));
    }
    for (index, name) in names.iter().enumerate() {
        let item_key = format!("{key}[{index}]");
        if name.is_empty() {
            return Err(invalid("must not be empty", item_key));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(invalid(
                format!("{name:?} is longer than {MAX_NAME_BYTES} bytes"),
                item_key,
            ));
        }
        if let Some(first) = names[..index].iter().position(|earlier| earlier == name) {
            return Err(invalid(
                format!("{name:?} is already listed as {key}[{first}]"),
                item_key,
            ));
        }
    }
    Ok(names)
}

/// A list of windows: the documented default when absent, else at most `MAX_WINDOWS` windows of
/// different lengths.
fn window_list(key: &str, raw: Option<Vec<String>>) -> Result<Vec<Window>, ConfigError> {
    let labels = raw.unwrap_or_else(|| DEFAULT_WINDOWS.iter().map(|w| (*w).to_owned()).collect());
    if labels.len() > MAX_WINDOWS {
        return Err(invalid(
            format!(
                "{} windows given; at most {MAX_WINDOWS} are allowed",
                labels.len()
            ),
            key,
        ));
    }
    let mut windows: Vec<Window> = Vec::with_capacity(labels.len());
    for (index, label) in labels.iter().enumerate() {
        let item_key = format!("{key}[{index}]");
        let parsed = window(&item_key, label)?;
        // Two labels of the same length ("P7D" and "P1W") would export the same series twice.
        if let Some(first) = windows.iter().position(|w| w.length == parsed.length) {
            return Err(invalid(
                format!(
                    "{label:?} is the same window as {key}[{first}] ({:?})",
                    windows[first].label
                ),
                item_key,
            ));
        }
        windows.push(parsed);
    }
    Ok(windows)
}

/// Refuses rolling and forecast windows further apart than `MAX_WINDOW_RATIO` (they share buckets).
fn check_shared_buckets(rolling: &[Window], forecast: &Window) -> Result<(), ConfigError> {
    let named: Vec<(String, &Window)> = rolling
        .iter()
        .enumerate()
        .map(|(index, w)| (format!("windows.rolling[{index}]"), w))
        .chain([("forecast.window".to_owned(), forecast)])
        .collect();
    let nanos = |w: &Window| w.length.as_nanos();
    let (Some(shortest), Some(longest)) = (
        named.iter().min_by_key(|(_, w)| nanos(w)),
        named.iter().max_by_key(|(_, w)| nanos(w)),
    ) else {
        return Ok(());
    };
    if nanos(longest.1) <= MAX_WINDOW_RATIO * nanos(shortest.1) {
        return Ok(());
    }
    let ratio = nanos(longest.1) as f64 / nanos(shortest.1) as f64;
    let key = if shortest.0.starts_with("forecast") || longest.0.starts_with("forecast") {
        "forecast.window"
    } else {
        "windows.rolling"
    };
    Err(invalid(
        format!(
            "{:?} ({}) is {} times as long as {:?} ({}); windows.rolling and forecast.window share \
             one set of time buckets, so the longest may be at most {MAX_WINDOW_RATIO} times the \
             shortest",
            longest.1.label,
            longest.0,
            (ratio * 10.0).round() / 10.0,
            shortest.1.label,
            shortest.0
        ),
        key,
    ))
}

/// A duration checked by `parse`, at most `max_days` long.
fn at_most_days(
    key: &str,
    text: &str,
    parse: fn(&str, &str) -> Result<SignedDuration, ConfigError>,
    max_days: i64,
) -> Result<SignedDuration, ConfigError> {
    let duration = parse(key, text)?;
    if duration > SignedDuration::from_hours(24 * max_days) {
        return Err(invalid(
            format!("{text:?} is too long; the maximum is \"P{max_days}D\""),
            key,
        ));
    }
    Ok(duration)
}
