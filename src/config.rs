//! Configuration (docs/configuration.md): the TOML file plus `BACKLOGD__SECTION__KEY` environment overrides, turned
//! into the typed, validated [`Config`] the rest of the daemon reads.
//!
//! "Parse, then validate": the `config` crate merges the file and the environment into a private
//! serde `RawConfig` whose fields are all optional strings, numbers and lists, with
//! `deny_unknown_fields` on every table so a misspelt key is an error rather than a silently
//! ignored setting. [`Config`] is then built from it by hand: defaults filled in, durations parsed
//! with jiff, every range and cross-reference checked. Every error names the full key path and
//! quotes the bad value, e.g. `windows.rolling[0]: "P1M" has no fixed length; write it in days,
//! e.g. "P30D"`.
//!
//! Durations come in two kinds. Calendar spans (`decision_period`, `penalty_grace`) keep their
//! months and years as a [`jiff::Span`], because "six months" is added on the civil calendar in
//! `time.timezone`. Every other duration must have a fixed length: days count as 24 hours and weeks
//! as 7 days, and months or years are rejected.
//!
//! The external crate is always written `::config::…` here, so that it cannot be confused with this
//! module, `crate::config`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::fmt::temporal::SpanParser;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Reads the TOML file at `path`, applies `BACKLOGD__SECTION__KEY` environment overrides on top
/// (e.g. `BACKLOGD__SERVER__LISTEN=127.0.0.1:0`), and validates the result.
///
/// Every environment variable whose name starts with `BACKLOGD__` must name a known key: a typo
/// is an error, not an ignored setting. List values (`phases`, `windows.rolling`, …) and arrays of
/// tables (`targets`, penalty tiers) can only be set in the file.
///
/// # Errors
///
/// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Syntax`] when it is not
/// TOML, [`ConfigError::Invalid`] naming the first key whose value is unusable.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    ConfigSource::read(path)?.load()
}

/// What a configuration is built from: the file's text and the `BACKLOGD__…` environment
/// overrides. The engine records it in the store whenever the settings in force change, so that the
/// log is replayed under the settings each event was applied with (docs/store.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ConfigSource {
    /// Where the text came from (a path, or the inline/built-in configuration), for messages.
    pub origin: String,
    pub text: String,
    /// `BACKLOGD__…` variables, by name.
    pub environment: BTreeMap<String, String>,
}

impl ConfigSource {
    /// The file at `path` and this process' `BACKLOGD__…` environment variables.
    pub fn read(path: &Path) -> Result<ConfigSource, ConfigError> {
        // The file is read here rather than by the `config` crate so that a missing or unreadable
        // file is reported as such, with the operating system's reason.
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let environment = std::env::vars()
            .filter(|(name, _)| {
                name.get(..ENV_PREFIX.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
            })
            .collect();
        Ok(ConfigSource {
            origin: path.display().to_string(),
            text,
            environment,
        })
    }

    /// TOML text without environment overrides.
    pub fn inline(text: &str) -> ConfigSource {
        ConfigSource {
            origin: INLINE_ORIGIN.to_owned(),
            text: text.to_owned(),
            environment: BTreeMap::new(),
        }
    }

    /// Validates the configuration this source describes.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let file = ::config::File::from_str(&self.text, ::config::FileFormat::Toml);
        let mut builder = ::config::Config::builder().add_source(file);
        if !self.environment.is_empty() {
            let variables = self
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            builder = builder.add_source(environment().source(Some(variables)));
        }
        build(builder, &self.origin)
    }

    /// The form stored in the event log and snapshots.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing strings and a map of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ConfigSource, String> {
        serde_json::from_slice(bytes)
            .map_err(|e| format!("a stored configuration source is unreadable: {e}"))
    }
}

const ENV_PREFIX: &str = "BACKLOGD__";

/// Validates configuration given as TOML text, without environment overrides. Used by tests and
/// for the default configuration embedded in the binary.
///
/// # Errors
///
/// As [`load`], except that there is no file to read.
pub fn load_from_str(toml: &str) -> Result<Config, ConfigError> {
    ConfigSource::inline(toml).load()
}

/// Why a configuration was refused. The `Display` form is complete and meant for the operator:
/// `{key}: {problem}`, e.g. `tracks.asylum.decision_period: missing`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML. `message` carries the line, column and reason.
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    /// A key has a value the daemon cannot use (wrong type, out of range, unknown reference), is
    /// missing although required, or is not a known key at all.
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
    /// Any other failure reported by the `config` crate.
    #[error("{0}")]
    Other(String),
}

/// The validated configuration. Lists that other modules look names up in are sorted by name.
#[derive(Debug, Clone)]
pub struct Config {
    /// The phases a case can be in, in order. Never empty, unique, never `none`.
    pub phases: Vec<String>,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub time: TimeConfig,
    pub ingest: IngestConfig,
    /// Sorted by name; at least one.
    pub tracks: Vec<TrackConfig>,
    pub windows: WindowsConfig,
    pub forecast: ForecastConfig,
    /// In file order; names unique.
    pub targets: Vec<TargetConfig>,
    pub workforce: WorkforceConfig,
    pub mentoring: MentoringConfig,
    pub quality: QualityConfig,
    /// `[thresholds]`, sorted by name.
    pub thresholds: Vec<(String, f64)>,
    pub limits: LimitsConfig,
    pub log: LogConfig,
}

impl Config {
    /// The configured track called `name`, if any.
    pub fn track(&self, name: &str) -> Option<&TrackConfig> {
        self.tracks
            .binary_search_by(|track| track.name.as_str().cmp(name))
            .ok()
            .map(|index| &self.tracks[index])
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    /// `None` when the key is absent or empty: ingestion needs no token.
    pub ingest_tokens_file: Option<PathBuf>,
    /// Required (true) to listen on a non-loopback address without ingest tokens.
    pub allow_unauthenticated: bool,
    /// `Some` when `server.tls_cert_file` and `server.tls_key_file` are both set: the listener
    /// speaks TLS. Whether the files are readable is checked at start and on reload, not here.
    pub tls: Option<TlsFiles>,
    /// `None` when the key is absent or empty: `/metrics` needs no credentials. Otherwise a file
    /// of `user:bcrypt-hash` lines for HTTP basic auth on `/metrics` (read at start and on reload).
    pub metrics_users_file: Option<PathBuf>,
    pub limits: ServerLimits,
}

/// The PEM files of the listener's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `server.tls_cert_file`: the certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// `server.tls_key_file`: the private key of the first certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// What one client, or all of them together, may take from the daemon (docs/http.md, "Limits").
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// Events (lines, array elements) in one request body; more is refused with 413.
    pub max_events_per_request: usize,
    /// Rejections listed in one answer; the rest are only counted (`rejected_total`).
    pub max_rejections_reported: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections; beyond it new connections are closed at once.
    pub max_connections: usize,
    /// Bytes of request bodies being read or waiting for the engine, over all requests; a request
    /// that would exceed it gets 503 with Retry-After.
    pub max_inflight_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub durability: Durability,
    pub snapshot_interval: Duration,
    pub dedup_window: SignedDuration,
    pub segment_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge after `fdatasync`.
    Fsync,
    /// Acknowledge after `write()`.
    None,
}

#[derive(Debug, Clone)]
pub struct TimeConfig {
    pub timezone: TimeZone,
    /// The name as written in the configuration, e.g. `Europe/Amsterdam`.
    pub timezone_name: String,
    pub tick: Duration,
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub max_future_skew: SignedDuration,
}

#[derive(Debug, Clone)]
pub struct TrackConfig {
    pub name: String,
    /// Positive; may contain months and years (calendar arithmetic in `time.timezone`).
    pub decision_period: Span,
    /// Not negative; may contain months and years.
    pub penalty_grace: Span,
    /// Consecutive tiers; empty means no penalty.
    pub penalty: Vec<PenaltyTier>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PenaltyTier {
    pub days: u32,
    pub per_day_cents: i64,
}

#[derive(Debug, Clone)]
pub struct WindowsConfig {
    pub rolling: Vec<Window>,
    pub due_soon: Vec<Window>,
}

/// A fixed-length window and its label as written in the configuration (the `window` label of
/// the metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub label: String,
    /// Always positive.
    pub length: SignedDuration,
}

#[derive(Debug, Clone)]
pub struct ForecastConfig {
    pub window: Window,
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub name: String,
    /// A configured track, or `None` for all tracks together.
    pub track: Option<String>,
    pub clear_by: Timestamp,
}

#[derive(Debug, Clone)]
pub struct WorkforceConfig {
    /// Never empty, unique.
    pub roles: Vec<String>,
    pub employee_label: EmployeeLabel,
    /// Set whenever `employee_label` is `Pseudonym`; whether the file exists is not checked here.
    pub pseudonym_key_file: Option<PathBuf>,
    pub max_open_cases: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmployeeLabel {
    Id,
    Pseudonym,
    None,
}

#[derive(Debug, Clone)]
pub struct MentoringConfig {
    pub max_mentees: u32,
}

#[derive(Debug, Clone)]
pub struct QualityConfig {
    pub window: Window,
    /// Between 0 and 1.
    pub min_pass_ratio: f64,
    /// Positive.
    pub max_audit_gap: SignedDuration,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub max_locations: u32,
    pub max_employee_series: u32,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Names the origin of configuration text that did not come from a file.
const INLINE_ORIGIN: &str = "<inline configuration>";

/// The environment source (docs/configuration.md): `BACKLOGD__SERVER__LISTEN` sets `server.listen`.
///
/// `try_parsing` stays off on purpose. With it, the `config` crate turns every numeric-looking
/// value into a number before it knows the target type, so `BACKLOGD__STORE__PATH=0123` would
/// become the path `123`. Without it every value stays a string, and the `config` crate parses
/// the string when a field asks for a number or a boolean, so `BACKLOGD__SERVER__MAX_BODY_BYTES=1024`
/// and `BACKLOGD__SERVER__ALLOW_UNAUTHENTICATED=true` still arrive as the right types.
fn environment() -> ::config::Environment {
    ::config::Environment::with_prefix("BACKLOGD").separator("__")
}

fn build(
    builder: ::config::ConfigBuilder<::config::builder::DefaultState>,
    origin: &str,
) -> Result<Config, ConfigError> {
    let merged = builder
        .build()
        .map_err(|error| from_config_error(error, origin))?;
    let raw: RawConfig = merged
        .try_deserialize()
        .map_err(|error| from_config_error(error, origin))?;
    validate(raw)
}

/// Turns an error of the `config` crate into one that leads with the key path, keeping its reason.
fn from_config_error(error: ::config::ConfigError, origin: &str) -> ConfigError {
    match error {
        ::config::ConfigError::FileParse { cause, .. } => ConfigError::Syntax {
            origin: origin.to_owned(),
            message: cause.to_string().trim_end().to_owned(),
        },
        ::config::ConfigError::Type {
            origin: value_origin,
            unexpected,
            expected,
            key,
        } => invalid_at(
            key,
            format!("invalid type: {unexpected}, expected {expected}"),
            value_origin,
        ),
        ::config::ConfigError::At {
            error,
            origin: value_origin,
            key,
        } => invalid_at(key, error.to_string(), value_origin),
        ::config::ConfigError::NotFound(key) => invalid("missing", key),
        ::config::ConfigError::Message(message) => invalid_at(None, message, None),
        other => ConfigError::Other(other.to_string()),
    }
}

fn invalid_at(key: Option<String>, problem: String, value_origin: Option<String>) -> ConfigError {
    let parent = key.as_deref().map(normalize_key).unwrap_or_default();
    // serde reports an unknown key as a problem of the table that holds it
    // ("unknown field `lissten`, expected one of ..."); move the key's own name into the path.
    let (key, mut problem) = match split_unknown_field(&problem) {
        Some((name, expected)) => {
            let mut problem = format!("unknown key; {expected}");
            if name == "phases" && !parent.is_empty() {
                problem.push_str(
                    " (phases is a top-level key and must come before the first [table])",
                );
            }
            (join_key(&parent, name), problem)
        }
        None if parent.is_empty() => ("(top level)".to_owned(), problem),
        None => (parent, problem),
    };
    if let Some(value_origin) = value_origin {
        problem = format!("{problem} (set in {value_origin})");
    }
    ConfigError::Invalid { key, problem }
}

/// Puts the dot back that the `config` crate leaves out after a list index: it reports
/// `penalty[0]days` for `penalty[0].days`.
fn normalize_key(key: &str) -> String {
    let mut normalized = String::with_capacity(key.len() + 4);
    let mut after_index = false;
    for character in key.chars() {
        if after_index && character != '.' && character != '[' {
            normalized.push('.');
        }
        after_index = character == ']';
        normalized.push(character);
    }
    normalized
}

/// Splits serde's "unknown field `name`, expected ..." into the name and what was expected.
fn split_unknown_field(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, expected) = rest.split_once('`')?;
    Some((name, expected.trim_start_matches([',', ' '])))
}

fn join_key(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

fn invalid(problem: impl Into<String>, key: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The raw, unvalidated form: exactly what the file and the environment say.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawConfig {
    phases: Option<Vec<String>>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    time: RawTime,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    tracks: BTreeMap<String, RawTrack>,
    #[serde(default)]
    windows: RawWindows,
    #[serde(default)]
    forecast: RawForecast,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    workforce: RawWorkforce,
    #[serde(default)]
    mentoring: RawMentoring,
    #[serde(default)]
    quality: RawQuality,
    #[serde(default)]
    thresholds: BTreeMap<String, f64>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawServer {
    listen: Option<String>,
    max_body_bytes: Option<Integer>,
    ingest_tokens_file: Option<String>,
    allow_unauthenticated: Option<bool>,
    tls_cert_file: Option<String>,
    tls_key_file: Option<String>,
    metrics_users_file: Option<String>,
    max_events_per_request: Option<Integer>,
    max_rejections_reported: Option<Integer>,
    header_timeout: Option<String>,
    body_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<Integer>,
    max_inflight_bytes: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawStore {
    path: Option<String>,
    durability: Option<String>,
    snapshot_interval: Option<String>,
    dedup_window: Option<String>,
    segment_bytes: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawTime {
    timezone: Option<String>,
    tick: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawIngest {
    max_future_skew: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawTrack {
    decision_period: Option<String>,
    penalty_grace: Option<String>,
    #[serde(default)]
    penalty: Vec<RawPenaltyTier>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawPenaltyTier {
    days: Option<Integer>,
    /// Euros per day; an integer or a float in the file.
    per_day: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawWindows {
    rolling: Option<Vec<String>>,
    due_soon: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawForecast {
    window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawTarget {
    name: Option<String>,
    track: Option<String>,
    clear_by: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawWorkforce {
    roles: Option<Vec<String>>,
    employee_label: Option<String>,
    pseudonym_key_file: Option<String>,
    max_open_cases: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawMentoring {
    max_mentees: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawQuality {
    window: Option<String>,
    min_pass_ratio: Option<f64>,
    max_audit_gap: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawLimits {
    max_locations: Option<Integer>,
    max_employee_series: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

/// A whole number as written in the file (or an environment string that parses as one).
///
/// The `config` crate would otherwise round a float into an integer field (`days = 14.5` would
/// silently become 15); this type refuses it instead.
#[derive(Debug, Clone, Copy)]
struct Integer(i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntegerVisitor;

        impl Visitor<'_> for IntegerVisitor {
            type Value = Integer;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Integer, E> {
                Ok(Integer(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Integer, E> {
                i64::try_from(value)
                    .map(Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Integer, E> {
                value
                    .trim()
                    .parse()
                    .map(Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(value), &self))
            }
        }

        deserializer.deserialize_any(IntegerVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults (docs/configuration.md)

const DEFAULT_PHASES: [&str; 5] = ["intake", "hearing", "intention", "view", "decision"];
const DEFAULT_ROLES: [&str; 3] = ["caseworker", "mentor", "decision_officer"];
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
const MAX_NAME_BYTES: usize = 64;
const MAX_WINDOWS: usize = 8;
/// `windows.rolling` and `forecast.window` are counted in one set of time buckets per track, each
/// at most 1/1000 of the shortest window wide (docs/metrics.md), kept for the longest window: a counter holds
/// about 1000 × longest / shortest buckets. Bounding the ratio keeps that at about 10,000 buckets
/// (80 KB) per counter, and the work of summing the windows at each publish small.
pub const MAX_WINDOW_RATIO: i128 = 10;
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

// ---------------------------------------------------------------------------------------------
// Validation: raw values in, typed values out, every problem named by its key.

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let phases = names_list("phases", raw.phases, &DEFAULT_PHASES)?;
    if let Some(index) = phases.iter().position(|phase| phase == RESERVED_PHASE) {
        return Err(invalid(
            format!(
                "{RESERVED_PHASE:?} is reserved: it is the phase of a case before any phase event"
            ),
            format!("phases[{index}]"),
        ));
    }
    let tracks = validate_tracks(raw.tracks)?;
    let targets = validate_targets(raw.targets, &tracks)?;
    // The core numbers tracks, phases and roles with one byte each.
    if tracks.len() > MAX_LIST {
        return Err(invalid(
            format!("at most {MAX_LIST} tracks, got {}", tracks.len()),
            "tracks",
        ));
    }
    if phases.len() > MAX_LIST {
        return Err(invalid(
            format!("at most {MAX_LIST} phases, got {}", phases.len()),
            "phases",
        ));
    }
    let rolling = window_list("windows.rolling", raw.windows.rolling)?;
    let forecast = window(
        "forecast.window",
        raw.forecast.window.as_deref().unwrap_or("P28D"),
    )?;
    check_shared_buckets(&rolling, &forecast)?;
    Ok(Config {
        phases,
        server: validate_server(raw.server)?,
        store: validate_store(raw.store)?,
        time: validate_time(raw.time)?,
        ingest: IngestConfig {
            max_future_skew: at_most_days(
                "ingest.max_future_skew",
                raw.ingest.max_future_skew.as_deref().unwrap_or("PT5M"),
                non_negative_duration,
                MAX_FUTURE_SKEW_DAYS,
            )?,
        },
        tracks,
        windows: WindowsConfig {
            rolling: rolling.clone(),
            due_soon: window_list("windows.due_soon", raw.windows.due_soon)?,
        },
        forecast: ForecastConfig {
            window: forecast.clone(),
        },
        targets,
        workforce: validate_workforce(raw.workforce)?,
        mentoring: MentoringConfig {
            max_mentees: integer_u32("mentoring.max_mentees", raw.mentoring.max_mentees, 5, 0)?,
        },
        quality: validate_quality(raw.quality)?,
        thresholds: validate_thresholds(raw.thresholds)?,
        limits: LimitsConfig {
            // Location ids are 16-bit in the core; `other` takes the id after the last named one.
            max_locations: u32::try_from(integer_in(
                "limits.max_locations",
                raw.limits.max_locations,
                64,
                1,
                i64::from(u16::MAX),
            )?)
            .unwrap_or(u32::from(u16::MAX)),
            max_employee_series: integer_u32(
                "limits.max_employee_series",
                raw.limits.max_employee_series,
                20_000,
                0,
            )?,
        },
        log: validate_log(raw.log)?,
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
    }
    // A BTreeMap iterates in name order.
    Ok(raw.into_iter().collect())
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

/// A positive, fixed-length window; its label is the text exactly as written.
fn window(key: &str, text: &str) -> Result<Window, ConfigError> {
    Ok(Window {
        label: text.to_owned(),
        length: positive_duration(key, text)?,
    })
}

fn positive_duration(key: &str, text: &str) -> Result<SignedDuration, ConfigError> {
    let duration = fixed_duration(key, text)?;
    if !duration.is_positive() {
        return Err(invalid(format!("{text:?} must be longer than zero"), key));
    }
    Ok(duration)
}

fn non_negative_duration(key: &str, text: &str) -> Result<SignedDuration, ConfigError> {
    let duration = fixed_duration(key, text)?;
    if duration.is_negative() {
        return Err(invalid(format!("{text:?} must not be negative"), key));
    }
    Ok(duration)
}

/// An ISO 8601 duration with a fixed length: days are 24 hours, weeks 7 days; months and years,
/// whose length depends on the calendar, are refused with a suggestion in days.
fn fixed_duration(key: &str, text: &str) -> Result<SignedDuration, ConfigError> {
    let span = iso_span(key, text)?;
    if span.get_years() != 0 || span.get_months() != 0 {
        let approximate_days = i64::from(span.get_years()).abs() * 365
            + i64::from(span.get_months()).abs() * 30
            + i64::from(span.get_weeks()).abs() * 7
            + i64::from(span.get_days()).abs();
        return Err(invalid(
            format!(
                "{text:?} has no fixed length; write it in days, e.g. \"P{approximate_days}D\""
            ),
            key,
        ));
    }
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|error| invalid(format!("{text:?} is too long ({error})"), key))?;
    // The core counts in i64 nanoseconds (about 292 years either way).
    if i64::try_from(duration.as_nanos()).is_err() {
        let max_days = i64::MAX / crate::core::time::NANOS_PER_DAY;
        return Err(invalid(
            format!("{text:?} is too long; the maximum is \"P{max_days}D\""),
            key,
        ));
    }
    Ok(duration)
}

/// An ISO 8601 duration that may use months and years (added on the civil calendar).
fn calendar_span(key: &str, text: &str) -> Result<Span, ConfigError> {
    iso_span(key, text)
}

fn iso_span(key: &str, text: &str) -> Result<Span, ConfigError> {
    // Only the ISO 8601 form (docs/configuration.md), not jiff's "friendly" one ("6 months"): the text ends up
    // as a metric label and in alert rules, where one spelling per duration keeps things simple.
    static PARSER: SpanParser = SpanParser::new();
    PARSER.parse_span(text.trim()).map_err(|error| {
        invalid(
            format!(
                "{text:?} is not an ISO 8601 duration such as \"P6M\", \"P14D\" or \"PT5M\" \
                 ({error})"
            ),
            key,
        )
    })
}

fn optional_path(raw: Option<String>) -> Option<PathBuf> {
    raw.filter(|path| !path.is_empty()).map(PathBuf::from)
}

fn integer_u32(
    key: &str,
    raw: Option<Integer>,
    default: u32,
    min: u32,
) -> Result<u32, ConfigError> {
    let value = integer_in(
        key,
        raw,
        i64::from(default),
        i64::from(min),
        i64::from(u32::MAX),
    )?;
    Ok(u32::try_from(value).unwrap_or(u32::MAX))
}

fn integer_in(
    key: &str,
    raw: Option<Integer>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let value = raw.map_or(default, |Integer(value)| value);
    if value < min {
        return Err(invalid(
            format!("{value} is too small; the minimum is {min}"),
            key,
        ));
    }
    if value > max {
        return Err(invalid(
            format!("{value} is too large; the maximum is {max}"),
            key,
        ));
    }
    Ok(value)
}

/// The part of the configuration the state core runs with, in the core's own terms.
pub fn core_settings(config: &Config) -> crate::core::CoreSettings {
    use crate::core::settings::{
        CoreSettings, PenaltySchedule, PenaltyTierSettings, TargetSettings, TrackSettings,
        WindowSettings,
    };
    let window = |window: &Window| WindowSettings {
        label: window.label.clone(),
        length: window.length,
    };
    CoreSettings {
        timezone: config.time.timezone.clone(),
        max_future_skew: config.ingest.max_future_skew,
        tracks: config
            .tracks
            .iter()
            .map(|track| TrackSettings {
                name: track.name.clone(),
                decision_period: track.decision_period,
                penalty_grace: track.penalty_grace,
                penalty: PenaltySchedule {
                    tiers: track
                        .penalty
                        .iter()
                        .map(|tier| PenaltyTierSettings {
                            days: tier.days,
                            per_day_cents: tier.per_day_cents,
                        })
                        .collect(),
                },
            })
            .collect(),
        phases: config.phases.clone(),
        roles: config.workforce.roles.clone(),
        due_soon_windows: config.windows.due_soon.iter().map(window).collect(),
        rolling_windows: config.windows.rolling.iter().map(window).collect(),
        forecast_window: window(&config.forecast.window),
        quality_window: window(&config.quality.window),
        targets: config
            .targets
            .iter()
            .map(|target| TargetSettings {
                name: target.name.clone(),
                // Validated at load: a target's track is a configured one; tracks are sorted by
                // name, the same order the core numbers them in.
                track: target.track.as_ref().and_then(|name| {
                    config
                        .tracks
                        .iter()
                        .position(|t| &t.name == name)
                        .and_then(|i| u8::try_from(i).ok())
                }),
                clear_by: crate::core::time::to_nanos_saturating(target.clear_by),
            })
            .collect(),
        max_locations: config.limits.max_locations,
        dedup_window: config.store.dedup_window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../config/backlogd.toml");

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
        let labels = |windows: &[Window]| -> Vec<String> {
            windows.iter().map(|w| w.label.clone()).collect()
        };
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
            .starts_with(
                "targets[0].clear_by: \"2027-06-30T00:00:00\" is not an RFC 3339 timestamp"
            )
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
            private("BACKLOGD__SERVER__LISEN", "127.0.0.1:0")
                .starts_with("server.lisen: unknown key")
        );
        assert_eq!(
            private("BACKLOGD__SERVER__ALLOW_UNAUTHENTICATED", "maybe"),
            "server.allow_unauthenticated: invalid type: string \"maybe\", expected a boolean \
             (set in the environment)"
        );
    }
}
