//! The JSON answers of the HTTP API as Rust types (docs/http.md): one type per answer, which the
//! server serializes and every reader (the report, `backlogd forecast`, `backlogd send`, the tests)
//! deserializes. A field the writer renames or leaves out is a compile error in the crate, and a
//! decode error naming the field for a reader of another version: no field is optional by default
//! (`Option` fields must be present, as `null` when they have no value), so nothing decodes to a
//! silent 0 or an empty string.
//!
//! Instants are RFC 3339 text, days `YYYY-MM-DD`, both decoded into `jiff` types (a malformed one
//! is a decode error).

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use jiff::Timestamp;
pub use jiff::civil::Date;

/// Decodes one answer; the error names the answer and, for a missing field, the field.
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|error| DecodeError {
        what: what.to_owned(),
        error,
    })
}

/// An answer that is not the JSON the API promises (`what`: the request, e.g. `GET /v1/targets`).
#[derive(Debug, thiserror::Error)]
#[error("the daemon's {what} answer: {error}")]
pub struct DecodeError {
    pub what: String,
    pub error: serde_json::Error,
}

/// A nullable field that must be present: `null` is `None`, a missing field is an error (serde
/// would otherwise take a missing `Option` for `None`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

/// An instant as RFC 3339 text.
mod instant {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::instant::parse_rfc3339(&text).map_err(D::Error::custom)
    }
}

/// A nullable instant that must be present.
mod nullable_instant {
    use super::*;

    pub fn serialize<S: Serializer>(
        t: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => serializer.collect_str(t),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => crate::instant::parse_rfc3339(&text)
                .map(Some)
                .map_err(D::Error::custom),
        }
    }
}

/// A day as `YYYY-MM-DD`.
mod day {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Date, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::instant::parse_day(&text).map_err(D::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/events

/// The 200 and 422 answer of `POST /v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestAnswer {
    pub accepted: u64,
    pub duplicates: u64,
    /// The first `server.max_rejections_reported` rejections.
    pub rejected: Vec<Rejected>,
    /// All rejections; present only when there are any (docs/http.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_total: Option<u64>,
}

impl IngestAnswer {
    /// Every rejection, listed or not: `rejected_total`, or the listed ones when it is absent.
    pub fn rejections(&self) -> u64 {
        self.rejected_total.unwrap_or(self.rejected.len() as u64)
    }
}

/// One rejected event of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// Position of the event in the body, from 0.
    pub index: usize,
    /// The event's id, when it could be read.
    #[serde(deserialize_with = "nullable")]
    pub id: Option<String>,
    pub reason: String,
    pub message: String,
}

// ---------------------------------------------------------------------------------------------
// GET /v1/cases/overdue

/// One case of `GET /v1/cases/overdue` (the answer is an array of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverdueCase {
    pub case: String,
    pub track: String,
    pub location: String,
    #[serde(deserialize_with = "nullable")]
    pub employee: Option<String>,
    #[serde(with = "instant")]
    pub deadline: Timestamp,
    pub overdue_seconds: f64,
    pub penalty_euros: f64,
}

// ---------------------------------------------------------------------------------------------
// GET /v1/targets

/// One target of `GET /v1/targets` (the answer is an array of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub target: String,
    /// `None`: all tracks together.
    #[serde(deserialize_with = "nullable")]
    pub track: Option<String>,
    #[serde(with = "nullable_instant")]
    pub configured_clear_by: Option<Timestamp>,
    #[serde(with = "instant")]
    pub clear_by: Timestamp,
    /// `None`: the backlog is not shrinking.
    #[serde(with = "nullable_instant")]
    pub projected_clearance: Option<Timestamp>,
    /// The kept announcements (the newest `limits.max_announcements_per_target`, or the newest
    /// `announcements=N` of the query), oldest first.
    pub announcements: Vec<Announcement>,
    /// Every announcement applied for the target, kept or not.
    pub announcements_total: u64,
}

/// One announcement of a target, with the projection when it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    #[serde(with = "instant")]
    pub announced_at: Timestamp,
    #[serde(deserialize_with = "nullable")]
    pub track: Option<String>,
    #[serde(with = "instant")]
    pub clear_by: Timestamp,
    #[serde(deserialize_with = "nullable")]
    pub announced_by: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub note: Option<String>,
    /// `None`: the backlog was not shrinking then.
    #[serde(with = "nullable_instant")]
    pub projected_clearance: Option<Timestamp>,
    pub behind_projection: bool,
    pub verdict: String,
}

// ---------------------------------------------------------------------------------------------
// GET /v1/history

/// The answer of `GET /v1/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// `forecast.window` as written now.
    pub decision_window: String,
    /// `forecast.new_staff_weeks` now.
    pub new_staff_weeks: u32,
    /// The rows of the range, oldest first.
    pub days: Vec<HistoryDay>,
}

/// One row of the daily history: the state at the midnight that ended `day`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryDay {
    #[serde(with = "day")]
    pub day: Date,
    #[serde(with = "instant")]
    pub at: Timestamp,
    /// The window the row's decision counts are over (`forecast.window` when it was taken).
    pub decision_window: String,
    /// The `forecast.new_staff_weeks` of the row's `by_new_staff_in_window`.
    pub new_staff_weeks: u32,
    /// Per track name.
    pub tracks: BTreeMap<String, HistoryTrack>,
    pub employees: HistoryEmployees,
    pub audits: HistoryAudits,
    pub decisions: HistoryDecisions,
}

/// One track's figures in a history row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryTrack {
    pub open: i64,
    pub overdue: i64,
    /// Per due-soon window label (an ISO 8601 duration).
    pub due_soon: BTreeMap<String, i64>,
    /// Cumulative.
    pub inflow_total: u64,
    /// Cumulative.
    pub outflow_total: u64,
    pub penalty_exposure_euros: f64,
    /// Cumulative.
    pub penalty_incurred_euros: f64,
    /// `None`: the backlog was not shrinking.
    #[serde(deserialize_with = "nullable")]
    pub clearance_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEmployees {
    pub experienced: i64,
    pub inexperienced: i64,
    pub mentors: i64,
    pub mentees: i64,
    pub unmentored: i64,
    /// `None` without mentors.
    #[serde(deserialize_with = "nullable")]
    pub mentees_per_mentor: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryAudits {
    pub passed_total: u64,
    pub failed_total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryDecisions {
    pub in_window: u64,
    pub by_new_staff_in_window: u64,
}

// ---------------------------------------------------------------------------------------------
// GET /v1/forecast

/// The answer of `GET /v1/forecast` (docs/forecast.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    #[serde(with = "instant")]
    pub start: Timestamp,
    /// When the open cases reach zero within the horizon.
    #[serde(with = "nullable_instant")]
    pub clearance: Option<Timestamp>,
    /// Whether the backlog clears within the horizon, not within it, or never.
    pub clearance_outlook: ClearanceOutlook,
    pub parameters: ForecastParameters,
    pub observed: ForecastObserved,
    pub targets: Vec<ForecastTarget>,
    pub weeks: Vec<ForecastWeek>,
}

/// What the projection says of the clearance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearanceOutlook {
    /// `clearance` is the instant.
    WithinHorizon,
    /// Not within the horizon; a longer horizon may show it.
    NotWithinHorizon,
    /// Never: the inflow outpaces every employee, hires after the horizon included, at the best
    /// observed rate.
    Never,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastParameters {
    pub weeks: u32,
    pub hires: Vec<ForecastHire>,
    pub ramp_up_weeks: f64,
    #[serde(deserialize_with = "nullable")]
    pub mentor_ratio: Option<f64>,
    pub leavers_per_week: f64,
    #[serde(deserialize_with = "nullable")]
    pub inflow_per_week: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastHire {
    pub count: f64,
    pub week: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastObserved {
    pub open: f64,
    pub overdue: f64,
    pub staff_experienced: f64,
    pub staff_mentoring: f64,
    pub staff_inexperienced: f64,
    #[serde(deserialize_with = "nullable")]
    pub decisions_per_employee_week_experienced: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub decisions_per_employee_week_mentoring: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub decisions_per_employee_week_inexperienced: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub net_inflow_per_week: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub decision_period_weeks: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastTarget {
    pub target: String,
    #[serde(deserialize_with = "nullable")]
    pub track: Option<String>,
    #[serde(with = "instant")]
    pub clear_by: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastWeek {
    pub week: u32,
    #[serde(with = "instant")]
    pub end: Timestamp,
    pub open: f64,
    pub overdue_estimated: f64,
    pub decisions: f64,
    pub inflow: f64,
    pub staff_experienced: f64,
    pub staff_mentoring: f64,
    pub staff_inexperienced: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_is_an_error_naming_it_and_null_is_not_missing() {
        let day = serde_json::json!({
            "day": "2026-03-01", "at": "2026-03-01T23:00:00Z", "decision_window": "P28D",
            "new_staff_weeks": 12,
            "tracks": {"asylum": {"open": 3, "overdue": 0, "due_soon": {"P7D": 1}, "inflow_total": 3,
                "outflow_total": 0, "penalty_exposure_euros": 0.0, "penalty_incurred_euros": 0.0,
                "clearance_seconds": null}},
            "employees": {"experienced": 1, "inexperienced": 0, "mentors": 0, "mentees": 0,
                "unmentored": 0, "mentees_per_mentor": null},
            "audits": {"passed_total": 0, "failed_total": 0},
            "decisions": {"in_window": 0, "by_new_staff_in_window": 0},
        });
        let decoded: HistoryDay = serde_json::from_value(day.clone()).unwrap();
        assert_eq!(decoded.tracks["asylum"].clearance_seconds, None);
        assert_eq!(serde_json::to_value(&decoded).unwrap(), day, "round trip");
        for (path, field) in [
            (
                &["tracks", "asylum", "clearance_seconds"][..],
                "clearance_seconds",
            ),
            (
                &["employees", "mentees_per_mentor"][..],
                "mentees_per_mentor",
            ),
            (&["audits", "passed_total"][..], "passed_total"),
            (&["decision_window"][..], "decision_window"),
        ] {
            let mut without = day.clone();
            let mut at = &mut without;
            for key in &path[..path.len() - 1] {
                at = &mut at[*key];
            }
            at.as_object_mut().unwrap().remove(path[path.len() - 1]);
            let error = serde_json::from_value::<HistoryDay>(without)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(&format!("missing field `{field}`")),
                "{field}: {error}"
            );
        }
        let mut bad_day = day.clone();
        bad_day["day"] = serde_json::json!("20260301");
        let error = serde_json::from_value::<HistoryDay>(bad_day)
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"20260301\" is not a day"), "{error}");
    }

    #[test]
    fn an_ingest_answer_counts_its_rejections() {
        let answer: IngestAnswer =
            decode("ingest", br#"{"accepted":1,"duplicates":0,"rejected":[]}"#).unwrap();
        assert_eq!(answer.rejections(), 0);
        let error = decode::<IngestAnswer>("ingest", br#"{"accepted":1,"rejected":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing field `duplicates`"), "{error}");
    }
}
