use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use proptest::prelude::*;

use super::*;

fn now() -> Timestamp {
    "2026-12-07T12:34:56Z".parse().unwrap() // a literal instant: cannot fail
}

fn instant(text: &str) -> Result<Timestamp, InstantError> {
    parse_instant(text, now())
}

#[test]
fn an_offset_is_kept_not_cut_to_midnight() {
    // The reproduction: `+01:00` used to become UTC midnight of the civil date.
    assert_eq!(
        instant("2026-11-01T15:00:00+01:00").unwrap(),
        "2026-11-01T14:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        instant("2026-11-01T18:00:00-02:30").unwrap(),
        "2026-11-01T20:30:00Z".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn a_bare_day_is_utc_midnight_and_now_is_now() {
    assert_eq!(
        instant("2025-01-31").unwrap(),
        "2025-01-31T00:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(instant("now").unwrap(), now());
    assert_eq!(instant("  now ").unwrap(), now());
}

#[test]
fn looser_forms_than_rfc_3339_are_refused_not_truncated() {
    for text in [
        "2026-12-01T10:00Z",                 // no seconds
        "20261201T100000Z",                  // basic format
        "+002026-12-01T10:00:00Z",           // six-digit year
        "2026-12-01T10:00:00,5Z",            // comma fraction
        "2026-12-01T10:00:00+24:00",         // offset hour out of range
        "2026-12-01T10:00:00+01:00:30",      // offset seconds
        "2026-12-01T10:00:00+01",            // offset without minutes
        "2026-12-01T10:00:00",               // no offset at all
        "2026-12-01T10:00:00Z[u-ca=hebrew]", // annotation
        "2026-12-01T10:00:00.Z",             // empty fraction
        "2026-12-01Tabc",
        "yesterday",
        "",
    ] {
        assert_eq!(
            instant(text),
            Err(InstantError::NotAnInstant { text: text.into() }),
            "{text:?}"
        );
    }
    // A shape that is right but a date that does not exist: refused, naming the text.
    assert!(matches!(
        instant("2026-02-30T10:00:00Z"),
        Err(InstantError::OutOfRange { .. })
    ));
    assert!(matches!(
        instant("2026-02-30"),
        Err(InstantError::NotADay { .. })
    ));
}

#[test]
fn a_day_is_exactly_yyyy_mm_dd() {
    assert_eq!(
        parse_day("2024-04-01").unwrap(),
        jiff::civil::date(2024, 4, 1)
    );
    // The defects of the history's `from`/`to`: each of these was accepted and compared as text.
    for text in [
        "20240401",
        "2024-04-01T12:00",
        "+002024-04-01",
        "2024-4-1",
        "2024-04-01 ",
        "2024-13-01",
    ] {
        assert_eq!(
            parse_day(text),
            Err(InstantError::NotADay { text: text.into() }),
            "{text:?}"
        );
    }
}

#[test]
fn errors_show_an_example() {
    let message = instant("2026-11-01 15h").unwrap_err().to_string();
    assert_eq!(
        message,
        "\"2026-11-01 15h\" is not an instant (RFC 3339 such as 2026-11-01T15:00:00+01:00 or 2026-11-01T14:00:00Z, a day such as 2026-11-01 (midnight UTC), or now)"
    );
}

proptest! {
    /// Any instant of years 0001–9998, written in every accepted form with a random offset (whole
    /// minutes, as RFC 3339 writes them) and a random fraction, parses back to itself.
    #[test]
    fn every_written_form_parses_to_the_instant(
        second in -62_135_596_800i64..253_370_764_800,
        nanos in 0u32..1_000_000_000,
        offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59i32),
        digits in 0usize..=9,
        separator in prop::sample::select(vec!['T', 't', ' ']),
        zulu in prop::sample::select(vec!["", "Z", "z"]),
    ) {
        // One in three is written in UTC with `Z` or `z`.
        let offset_minutes = if zulu.is_empty() { offset_minutes } else { 0 };
        // Keep only the nanoseconds the written fraction can carry.
        let scale = 10u32.pow(9 - digits as u32);
        let nanos = nanos / scale * scale;
        let at = Timestamp::new(second, nanos as i32).unwrap(); // in jiff's range by construction
        let offset = Offset::from_seconds(offset_minutes * 60).unwrap(); // |offset| < 24h
        let civil = TimeZone::fixed(offset).to_datetime(at);
        let fraction = if digits == 0 {
            String::new()
        } else {
            format!(".{:0width$}", nanos / scale, width = digits)
        };
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let (hours, minutes) = (offset_minutes.abs() / 60, offset_minutes.abs() % 60);
        let date = civil.date();
        let base = format!(
            "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}{fraction}",
            date.year(), date.month(), date.day(),
            civil.hour(), civil.minute(), civil.second(),
        );
        let with_offset = format!("{base}{sign}{hours:02}:{minutes:02}");
        prop_assert_eq!(instant(&with_offset), Ok(at), "{}", with_offset);
        if !zulu.is_empty() {
            let with_z = format!("{base}{zulu}");
            prop_assert_eq!(instant(&with_z), Ok(at), "{}", with_z);
        }
        // The day alone is that day's midnight in UTC, and only that.
        let utc_day = TimeZone::UTC.to_datetime(at).date();
        let day_text = format!("{:04}-{:02}-{:02}", utc_day.year(), utc_day.month(), utc_day.day());
        let midnight = utc_day.to_zoned_datetime(TimeZone::UTC).unwrap().timestamp();
        prop_assert_eq!(instant(&day_text), Ok(midnight));
        prop_assert_eq!(parse_day(&day_text), Ok(utc_day));
        // Any text that is a datetime is never a day.
        prop_assert!(parse_day(&with_offset).is_err());
    }
}
