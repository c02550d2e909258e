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

mod raw;
mod sources;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use serde::Deserialize;

use raw::RawConfig;

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

    /// Reads the form `to_bytes` wrote.
    ///
    /// # Errors
    ///
    /// [`ConfigError::StoredSource`] when the bytes are not such a form.
    pub fn from_bytes(bytes: &[u8]) -> Result<ConfigSource, ConfigError> {
        serde_json::from_slice(bytes).map_err(ConfigError::StoredSource)
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
    /// A configuration source stored in the event log or a snapshot cannot be decoded.
    #[error("a stored configuration source is unreadable: {0}")]
    StoredSource(serde_json::Error),
    /// Several problems, each of the variants above, in the order found (at most 64).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Many(Vec<ConfigError>),
}

/// The validated configuration. Lists that other modules look names up in are sorted by name.
#[derive(Debug, Clone, PartialEq)]
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
    pub report: ReportConfig,
    /// `[sources.nats]`, when present.
    pub nats: Option<NatsConfig>,
}

/// `[sources.nats]`: events consumed from a NATS JetStream stream (docs/scaling.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    pub url: String,
    pub stream: String,
    /// Never empty.
    pub subjects: Vec<String>,
    pub durable: String,
    pub create_stream: bool,
    pub credentials_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    /// At least 1.
    pub max_in_flight: usize,
    pub dead_letter_subject: Option<String>,
    /// The number of case partitions P (at least 1; 1: no partitioning).
    pub partitions: u32,
    /// The partitions this instance applies the case events of: sorted, unique, each below
    /// `partitions`; all of them by default.
    pub owned_partitions: Vec<u32>,
    /// Where to start reading the stream when the store has no position in it yet: after this
    /// stream sequence. Required when such a store already holds events (docs/scaling.md).
    pub start_after: Option<u64>,
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

#[derive(Debug, Clone, PartialEq)]
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
    /// `/metrics` password checks (bcrypt) waiting or running at once, over all peers; beyond it
    /// 503 with Retry-After. Each peer has at most one.
    pub metrics_auth_queue: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub durability: Durability,
    pub snapshot_interval: Duration,
    /// Events logged since the last snapshot that trigger the next one (bounds replay by work).
    pub snapshot_every_events: u64,
    /// Log bytes written since the last snapshot that trigger the next one.
    pub snapshot_every_bytes: u64,
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

#[derive(Debug, Clone, PartialEq)]
pub struct TimeConfig {
    pub timezone: TimeZone,
    /// The name as written in the configuration, e.g. `Europe/Amsterdam`.
    pub timezone_name: String,
    pub tick: Duration,
}

#[derive(Debug, Clone, PartialEq)]
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

/// Spans compare field by field (`P1M` is not `P30D`): as written.
impl PartialEq for TrackConfig {
    fn eq(&self, other: &TrackConfig) -> bool {
        self.name == other.name
            && self.decision_period.fieldwise() == other.decision_period.fieldwise()
            && self.penalty_grace.fieldwise() == other.penalty_grace.fieldwise()
            && self.penalty == other.penalty
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PenaltyTier {
    pub days: u32,
    pub per_day_cents: i64,
}

#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, PartialEq)]
pub struct ForecastConfig {
    pub window: Window,
    /// Staff count as new in their first this many weeks after joining (the share of decisions by
    /// new staff).
    pub new_staff_weeks: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    pub name: String,
    /// A configured track, or `None` for all tracks together.
    pub track: Option<String>,
    pub clear_by: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, PartialEq)]
pub struct MentoringConfig {
    pub max_mentees: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    pub window: Window,
    /// Between 0 and 1.
    pub min_pass_ratio: f64,
    /// Positive.
    pub max_audit_gap: SignedDuration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    pub max_locations: u32,
    pub max_employee_series: u32,
    /// Announcements kept per target (the newest), 1 to 10,000.
    pub max_announcements_per_target: u32,
}

/// `[report]`: the HTML report (`GET /report`, `backlogd report`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportConfig {
    /// The language of its texts when the request does not name one.
    pub language: ReportLanguage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportLanguage {
    En,
    Nl,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `windows.rolling` and `forecast.window` are counted in one set of time buckets per track, each
/// at most 1/1000 of the shortest window wide (docs/metrics.md), kept for the longest window: a counter holds
/// about 1000 × longest / shortest buckets. Bounding the ratio keeps that at about 10,000 buckets
/// (80 KB) per counter, and the work of summing the windows at each publish small.
pub const MAX_WINDOW_RATIO: i128 = 10;

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
    let mut root = merged.cache;
    // Every problem in one pass: validate, and on a problem at a key, note it, take the key out
    // (so that its default or its absence is used) and validate again, until the rest is valid or
    // a problem names nothing that can be taken out. Each pass removes a key, so it ends.
    let mut problems = Vec::new();
    let mut taken = Vec::new();
    for _ in 0..MAX_PROBLEMS {
        let result = root
            .clone()
            .try_deserialize::<RawConfig>()
            .map_err(|error| from_config_error(error, origin))
            .and_then(validate::validate);
        let error = match result {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(_) => break,
            Err(error) => error,
        };
        let found = match error {
            ConfigError::Many(found) => found,
            one => vec![one],
        };
        let mut removed = false;
        for problem in found {
            if let ConfigError::Invalid { key, .. } = &problem {
                // A problem of a key taken out before, of a table around one, or inside one, is
                // the taking out's consequence ("missing" after a bad required value, "no
                // track" after the only track's table): not named, nothing more taken out. (So
                // after a bad required key the rest of its table is not checked.)
                let consequence = taken.iter().any(|taken: &String| {
                    let within = |outer: &str, inner: &str| {
                        inner == outer
                            || inner.starts_with(&format!("{outer}."))
                            || inner.starts_with(&format!("{outer}["))
                    };
                    within(taken, key) || within(key, taken)
                });
                if consequence {
                    continue;
                }
                if let Some(path) = remove_key(&mut root, key) {
                    removed = true;
                    taken.push(path);
                }
            }
            // A problem seen again (its key could not be taken out) is named once.
            if !problems
                .iter()
                .any(|seen: &ConfigError| seen.to_string() == problem.to_string())
            {
                problems.push(problem);
            }
        }
        if !removed {
            break;
        }
    }
    Err(if problems.len() == 1 {
        problems.remove(0)
    } else {
        ConfigError::Many(problems)
    })
}

/// At most this many problems are reported at once.
const MAX_PROBLEMS: usize = 64;

/// Takes `key` (`a.b[2].c`) out of the configuration tree, or, when it is absent (a required key
/// reported missing), the table that should have held it; returns what was taken out.
fn remove_key(root: &mut ::config::Value, key: &str) -> Option<String> {
    let segments: Vec<&str> = key.split('.').collect();
    (1..=segments.len())
        .rev()
        .find(|&depth| remove_path(root, &segments[..depth]))
        .map(|depth| segments[..depth].join("."))
}

fn remove_path(root: &mut ::config::Value, path: &[&str]) -> bool {
    use ::config::ValueKind;
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = root;
    for segment in parents {
        let (name, index) = split_index(segment);
        let ValueKind::Table(table) = &mut node.kind else {
            return false;
        };
        let Some(child) = table.get_mut(name) else {
            return false;
        };
        node = match index {
            None => child,
            Some(i) => match &mut child.kind {
                ValueKind::Array(items) => match items.get_mut(i) {
                    Some(item) => item,
                    None => return false,
                },
                _ => return false,
            },
        };
    }
    let (name, index) = split_index(last);
    let ValueKind::Table(table) = &mut node.kind else {
        return false;
    };
    match index {
        None => table.remove(name).is_some(),
        Some(i) => match table.get_mut(name).map(|child| &mut child.kind) {
            Some(ValueKind::Array(items)) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
    }
}

/// `name[3]` → (`name`, Some(3)); `name` → (`name`, None).
fn split_index(segment: &str) -> (&str, Option<usize>) {
    match segment.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
        None => (segment, None),
    }
}

impl ConfigError {
    /// Each problem: the one, or each of `Many`.
    pub fn problems(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Many(problems) => problems.iter().collect(),
            one => vec![one],
        }
    }

    /// The whole report for a person: one line per problem, `FILE:LINE: key: problem` when the
    /// line of the key in `text` can be told, else `FILE: key: problem`.
    pub fn report(&self, file: &str, text: &str) -> String {
        // Each problem with its line, found once.
        let mut problems: Vec<(Option<usize>, &ConfigError)> = self
            .problems()
            .into_iter()
            .map(|problem| match problem {
                ConfigError::Invalid { key, .. } => (line_of(text, key), problem),
                _ => (None, problem),
            })
            .collect();
        // In the order of the file; those without a line (environment, defaults) last.
        problems.sort_by_key(|(line, problem)| match problem {
            ConfigError::Invalid { .. } => line.unwrap_or(usize::MAX),
            _ => 0,
        });
        problems
            .iter()
            .map(|(line, problem)| match (problem, line) {
                (ConfigError::Invalid { .. }, Some(line)) => format!("{file}:{line}: {problem}"),
                // These name their file (or origin) and position themselves.
                (ConfigError::Read { .. } | ConfigError::Syntax { .. }, _) => problem.to_string(),
                _ => format!("{file}: {problem}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The line (from 1) of the TOML `text` that sets `key` (`server.listen`, `targets[1].clear_by`,
/// `tracks.asylum.penalty[0].days`), or of the table header of its nearest table that the text
/// has. A plain reading of table headers and `name =` lines, enough for the files people write;
/// `None` when the key is not in the text (an environment variable, a default).
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    // Without list indices, which name an element of an array, not a line.
    let plain: Vec<String> = key
        .split('.')
        .map(|segment| split_index(segment).0.to_owned())
        .collect();
    let index_of_table_array = key
        .split('.')
        .next()
        .map(split_index)
        .and_then(|(_, index)| index);
    let mut table: Vec<String> = Vec::new();
    let mut array_seen: Option<usize> = None;
    let mut best: Option<(usize, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix("[[").and_then(|h| h.split_once("]]")) {
            table = header.0.split('.').map(|s| s.trim().to_owned()).collect();
            if table.first() == plain.first() && table.len() == 1 {
                array_seen = Some(array_seen.map_or(0, |i| i + 1));
            }
        } else if let Some(header) = trimmed.strip_prefix('[').and_then(|h| h.split_once(']')) {
            table = header
                .0
                .split('.')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .collect();
        } else if let Some((name, _)) = trimmed.split_once('=') {
            let mut path = table.clone();
            path.extend(
                name.trim()
                    .trim_matches('"')
                    .split('.')
                    .map(|s| s.trim().to_owned()),
            );
            let in_element = match (index_of_table_array, array_seen) {
                (Some(wanted), Some(seen)) if table.first() == plain.first() => wanted == seen,
                (Some(_), _) => table.first() != plain.first(),
                _ => true,
            };
            if path == plain && in_element {
                return Some(n + 1);
            }
            continue;
        } else {
            continue;
        }
        // A header: the deepest table of the key the text opens, as a fallback.
        let depth = table.len();
        if depth <= plain.len()
            && plain[..depth] == table[..]
            && best.is_none_or(|(d, _)| depth > d)
        {
            best = Some((depth, n + 1));
        }
    }
    best.map(|(_, line)| line)
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
// Conversion

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
        new_staff_weeks: config.forecast.new_staff_weeks,
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
        max_announcements_per_target: config.limits.max_announcements_per_target,
        dedup_window: config.store.dedup_window,
    }
}

#[cfg(test)]
mod tests;
