//! Instants as Unix seconds: parsing the command line's dates and writing RFC 3339 quickly.

use jiff::{Span, Timestamp};

pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;

/// Why a date or a duration of the command line or a scenario was refused. The text quotes it.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    #[error(transparent)]
    Instant(crate::instant::InstantError),
    #[error("{text:?} is not an ISO 8601 duration: {error}")]
    NotADuration { text: String, error: jiff::Error },
    #[error("{text:?} must be positive")]
    NotPositive { text: String },
}

/// An instant as every command reads one (`crate::instant`: RFC 3339 with `Z` or an offset,
/// `YYYY-MM-DD` as midnight UTC, or `now`), as Unix seconds.
pub fn parse_instant(text: &str) -> Result<i64, TimeError> {
    crate::instant::parse_instant(text, Timestamp::now())
        .map(|t| t.as_second())
        .map_err(TimeError::Instant)
}

/// The length of an ISO 8601 duration in seconds, months and years taken at their average length
/// (the daemon does the exact calendar arithmetic; the simulator only needs an estimate).
pub fn approx_span_seconds(text: &str) -> Result<i64, TimeError> {
    let span: Span = text.parse().map_err(|error| TimeError::NotADuration {
        text: text.to_owned(),
        error,
    })?;
    if span.is_negative() || span.is_zero() {
        return Err(TimeError::NotPositive {
            text: text.to_owned(),
        });
    }
    let days = f64::from(span.get_years()) * 365.25
        + f64::from(span.get_months()) * 30.44
        + f64::from(span.get_weeks()) * 7.0
        + f64::from(span.get_days());
    Ok((days * DAY as f64) as i64
        + i64::from(span.get_hours()) * HOUR
        + span.get_minutes() * 60
        + span.get_seconds())
}

/// Appends `YYYY-MM-DDTHH:MM:SSZ`.
pub fn push_rfc3339(out: &mut String, secs: i64) {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / HOUR, rem % HOUR / 60, rem % 60);
    push_digits(out, y, 4);
    out.push('-');
    push_digits(out, i64::from(m), 2);
    out.push('-');
    push_digits(out, i64::from(d), 2);
    out.push('T');
    push_digits(out, hh, 2);
    out.push(':');
    push_digits(out, mm, 2);
    out.push(':');
    push_digits(out, ss, 2);
    out.push('Z');
}

pub fn rfc3339(secs: i64) -> String {
    let mut s = String::with_capacity(20);
    push_rfc3339(&mut s, secs);
    s
}

/// Day of the week of a Unix day number: 0 = Monday … 6 = Sunday.
pub fn weekday(days: i64) -> u32 {
    // 1970-01-01 was a Thursday.
    (days + 3).rem_euclid(7) as u32
}

fn push_digits(out: &mut String, value: i64, width: u32) {
    let mut buf = [b'0'; 20];
    let mut v = value.unsigned_abs();
    let mut i = buf.len();
    while v > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = (buf.len() - width as usize).min(i);
    // Safe: only ASCII digits.
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or("0"));
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a Unix day number.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_jiff() {
        for secs in [
            0,
            951_782_400,
            1_709_164_800,
            1_735_689_599,
            4_102_444_800,
            1_000_000_007,
        ] {
            let ours = rfc3339(secs);
            let theirs = Timestamp::from_second(secs).unwrap().to_string();
            assert_eq!(ours, theirs, "{secs}");
        }
    }

    #[test]
    fn parses_dates_instants_and_durations() {
        assert_eq!(parse_instant("1970-01-02").unwrap(), DAY);
        assert_eq!(parse_instant("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_instant("yesterday").is_err());
        assert_eq!(approx_span_seconds("P1D").unwrap(), DAY);
        assert_eq!(approx_span_seconds("PT1H").unwrap(), HOUR);
        assert!(approx_span_seconds("P9M").unwrap() > 270 * DAY);
        assert!(approx_span_seconds("P0D").is_err());
        assert_eq!(weekday(0), 3);
    }
}
