//! Typed values from their configuration text: ISO 8601 durations and spans, bounded integers and
//! optional paths. Every error names the key.

use std::path::PathBuf;

use jiff::fmt::temporal::SpanParser;
use jiff::{SignedDuration, Span, SpanRelativeTo};

use super::raw::Integer;
use super::{ConfigError, Window, invalid};

/// A positive, fixed-length window; its label is the text exactly as written.
pub(super) fn window(key: &str, text: &str) -> Result<Window, ConfigError> {
    Ok(Window {
        label: text.to_owned(),
        length: positive_duration(key, text)?,
    })
}

pub(super) fn positive_duration(key: &str, text: &str) -> Result<SignedDuration, ConfigError> {
    let duration = fixed_duration(key, text)?;
    if !duration.is_positive() {
        return Err(invalid(format!("{text:?} must be longer than zero"), key));
    }
    Ok(duration)
}

pub(super) fn non_negative_duration(key: &str, text: &str) -> Result<SignedDuration, ConfigError> {
    let duration = fixed_duration(key, text)?;
    if duration.is_negative() {
        return Err(invalid(format!("{text:?} must not be negative"), key));
    }
    Ok(duration)
}

/// An ISO 8601 duration with a fixed length: days are 24 hours, weeks 7 days; months and years,
/// whose length depends on the calendar, are refused with a suggestion in days.
pub(super) fn fixed_duration(key: &str, text: &str) -> Result<SignedDuration, ConfigError> {
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
pub(super) fn calendar_span(key: &str, text: &str) -> Result<Span, ConfigError> {
    iso_span(key, text)
}

pub(super) fn iso_span(key: &str, text: &str) -> Result<Span, ConfigError> {
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

pub(super) fn optional_path(raw: Option<String>) -> Option<PathBuf> {
    raw.filter(|path| !path.is_empty()).map(PathBuf::from)
}

pub(super) fn integer_u32(
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

pub(super) fn integer_in(
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
