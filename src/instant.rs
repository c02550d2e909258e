//! Instants and days as people write them, on the command line and in query parameters: one parser
//! for every command and endpoint that takes one, so that the daemon and the CLI read a text the
//! same way.
//!
//! - An instant is RFC 3339 exactly (`2026-11-01T15:00:00+01:00`, `…Z`, a fraction of a second
//!   allowed), a bare day `YYYY-MM-DD` when that is the whole text (its midnight in UTC), or `now`.
//! - A day (`from`/`to` of the daily history) is `YYYY-MM-DD` and nothing else.
//!
//! There is no fallback that keeps part of a text: jiff's own parsers are more liberal than RFC
//! 3339 (a date parser that takes a whole datetime and keeps its date, the basic format
//! `20261101T150000Z`, minutes without seconds, annotations in brackets), so the shape is checked
//! here first and jiff only converts what passed.

use jiff::Timestamp;
use jiff::civil::Date;

/// An example of every accepted form, for error messages and help texts.
pub const INSTANT_FORMS: &str = "RFC 3339 such as 2026-11-01T15:00:00+01:00 or 2026-11-01T14:00:00Z, a day such as 2026-11-01 (midnight UTC), or now";

/// Why a text is not an instant or a day. The message quotes the text and shows an example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstantError {
    #[error("{text:?} is not an instant ({INSTANT_FORMS})")]
    NotAnInstant { text: String },
    #[error("{text:?} is not a day (YYYY-MM-DD, such as 2026-11-01)")]
    NotADay { text: String },
    #[error("{text:?} is outside the supported range of dates: {reason}")]
    OutOfRange { text: String, reason: String },
}

/// An instant: RFC 3339 with `Z` or a numeric offset, exactly as written; a bare `YYYY-MM-DD` as
/// its midnight in UTC; or `now` (given, so that the caller decides what now is).
pub fn parse_instant(text: &str, now: Timestamp) -> Result<Timestamp, InstantError> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if is_day_shape(text) {
        let date = parse_day(text)?;
        return date
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| InstantError::OutOfRange {
                text: text.to_owned(),
                reason: e.to_string(),
            });
    }
    parse_rfc3339(text)
}

/// An RFC 3339 timestamp (section 5.6): `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T` and `Z` in
/// either case, a space for the `T` (the readability the RFC allows). Nothing else: no basic
/// format, no missing seconds, no comma fraction, no bracketed annotation, no six-digit year.
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, InstantError> {
    if !is_rfc3339_shape(text) {
        return Err(InstantError::NotAnInstant {
            text: text.to_owned(),
        });
    }
    text.parse::<Timestamp>()
        .map_err(|e| InstantError::OutOfRange {
            text: text.to_owned(),
            reason: e.to_string(),
        })
}

/// A day: exactly `YYYY-MM-DD`, a real calendar date.
pub fn parse_day(text: &str) -> Result<Date, InstantError> {
    if !is_day_shape(text) {
        return Err(InstantError::NotADay {
            text: text.to_owned(),
        });
    }
    text.parse::<Date>().map_err(|_| InstantError::NotADay {
        text: text.to_owned(),
    })
}

/// The clap value parser of an instant option (`--from`, `--to`): clap names the option.
pub fn instant_arg(text: &str) -> Result<Timestamp, String> {
    parse_instant(text, Timestamp::now()).map_err(|e| e.to_string())
}

/// The clap value parser of a day option (`backlogd report --from`).
pub fn day_arg(text: &str) -> Result<Date, String> {
    parse_day(text).map_err(|e| e.to_string())
}

fn digits(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

fn is_day_shape(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && digits(&b[0..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..10])
}

fn is_rfc3339_shape(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 20 || !is_day_shape(&text[..10]) || !matches!(b[10], b'T' | b't' | b' ') {
        return false;
    }
    let time = &b[11..];
    if !(digits(&time[0..2])
        && time[2] == b':'
        && digits(&time[3..5])
        && time[5] == b':'
        && digits(&time[6..8]))
    {
        return false;
    }
    let mut rest = &time[8..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let hours = [*h1, *h2];
            let minutes = [*m1, *m2];
            digits(&hours)
                && digits(&minutes)
                && (hours[0] - b'0') * 10 + (hours[1] - b'0') <= 23
                && (minutes[0] - b'0') * 10 + (minutes[1] - b'0') <= 59
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
