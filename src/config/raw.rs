//! The raw, unvalidated form of the configuration: exactly what the file and the environment say.
//! Every table has `deny_unknown_fields`; `validate.rs` turns it into the typed `Config`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawConfig {
    pub(super) phases: Option<Vec<String>>,
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) time: RawTime,
    #[serde(default)]
    pub(super) ingest: RawIngest,
    #[serde(default)]
    pub(super) tracks: BTreeMap<String, RawTrack>,
    #[serde(default)]
    pub(super) windows: RawWindows,
    #[serde(default)]
    pub(super) forecast: RawForecast,
    #[serde(default)]
    pub(super) targets: Vec<RawTarget>,
    #[serde(default)]
    pub(super) workforce: RawWorkforce,
    #[serde(default)]
    pub(super) mentoring: RawMentoring,
    #[serde(default)]
    pub(super) quality: RawQuality,
    #[serde(default)]
    pub(super) thresholds: BTreeMap<String, f64>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) report: RawReport,
    #[serde(default)]
    pub(super) sources: RawSources,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawSources {
    pub(super) nats: Option<RawNats>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawNats {
    pub(super) url: Option<String>,
    pub(super) stream: Option<String>,
    pub(super) subjects: Option<StringList>,
    pub(super) durable: Option<String>,
    pub(super) create_stream: Option<bool>,
    pub(super) credentials_file: Option<String>,
    pub(super) tls_ca_file: Option<String>,
    pub(super) max_in_flight: Option<Integer>,
    pub(super) dead_letter_subject: Option<String>,
    pub(super) partitions: Option<Integer>,
    pub(super) owned_partitions: Option<IntegerList>,
    pub(super) start_after: Option<Integer>,
}

/// A list of whole numbers, or (from the environment) one string of comma-separated ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of integers, or one string of comma-separated integers"
)]
pub(super) enum IntegerList {
    List(Vec<Integer>),
    Text(String),
}

/// A list of strings, or (from the environment, where every value is a string) one string of
/// comma-separated items.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of strings, or one string of comma-separated items"
)]
pub(super) enum StringList {
    List(Vec<String>),
    Text(String),
}

impl StringList {
    pub(super) fn into_items(self) -> Vec<String> {
        match self {
            StringList::List(items) => items,
            StringList::Text(text) => text.split(',').map(|item| item.trim().to_owned()).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawServer {
    pub(super) listen: Option<String>,
    pub(super) max_body_bytes: Option<Integer>,
    pub(super) ingest_tokens_file: Option<String>,
    pub(super) allow_unauthenticated: Option<bool>,
    pub(super) tls_cert_file: Option<String>,
    pub(super) tls_key_file: Option<String>,
    pub(super) metrics_users_file: Option<String>,
    pub(super) max_events_per_request: Option<Integer>,
    pub(super) max_rejections_reported: Option<Integer>,
    pub(super) header_timeout: Option<String>,
    pub(super) body_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) max_connections: Option<Integer>,
    pub(super) max_inflight_bytes: Option<Integer>,
    pub(super) metrics_auth_queue: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawStore {
    pub(super) path: Option<String>,
    pub(super) durability: Option<String>,
    pub(super) snapshot_interval: Option<String>,
    pub(super) snapshot_every_events: Option<Integer>,
    pub(super) snapshot_every_bytes: Option<Integer>,
    pub(super) dedup_window: Option<String>,
    pub(super) segment_bytes: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawTime {
    pub(super) timezone: Option<String>,
    pub(super) tick: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawIngest {
    pub(super) max_future_skew: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawTrack {
    pub(super) decision_period: Option<String>,
    pub(super) penalty_grace: Option<String>,
    #[serde(default)]
    pub(super) penalty: Vec<RawPenaltyTier>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPenaltyTier {
    pub(super) days: Option<Integer>,
    /// Euros per day; an integer or a float in the file.
    pub(super) per_day: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawWindows {
    pub(super) rolling: Option<Vec<String>>,
    pub(super) due_soon: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawForecast {
    pub(super) window: Option<String>,
    pub(super) new_staff_weeks: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawTarget {
    pub(super) name: Option<String>,
    pub(super) track: Option<String>,
    pub(super) clear_by: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawWorkforce {
    pub(super) roles: Option<Vec<String>>,
    pub(super) employee_label: Option<String>,
    pub(super) pseudonym_key_file: Option<String>,
    pub(super) max_open_cases: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawMentoring {
    pub(super) max_mentees: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawQuality {
    pub(super) window: Option<String>,
    pub(super) min_pass_ratio: Option<f64>,
    pub(super) max_audit_gap: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawLimits {
    pub(super) max_locations: Option<Integer>,
    pub(super) max_employee_series: Option<Integer>,
    pub(super) max_announcements_per_target: Option<Integer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawLog {
    pub(super) format: Option<String>,
    pub(super) level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawReport {
    pub(super) language: Option<String>,
}

/// A whole number as written in the file (or an environment string that parses as one).
///
/// The `config` crate would otherwise round a float into an integer field (`days = 14.5` would
/// silently become 15); this type refuses it instead.
#[derive(Debug, Clone, Copy)]
pub(super) struct Integer(pub(super) i64);

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
