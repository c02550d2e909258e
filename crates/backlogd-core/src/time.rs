//! Instants inside the core: nanoseconds since the Unix epoch in an `i64`.
//!
//! Hot structures store this compact form (8 bytes instead of a 12-byte `jiff::Timestamp`); calendar
//! arithmetic converts to `jiff` and back at the edges of a computation. The supported range (years
//! 1900–2189, `MIN_SUPPORTED`..`END_SUPPORTED`) is checked when an event enters the core, and on
//! the deadlines computed from one.

use jiff::{SignedDuration, Timestamp};

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub type EpochNanos = i64;

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;

/// The first supported instant, 1900-01-01T00:00:00Z. Supported instants are less than 292 years
/// apart (290), so the difference of any two of them (how long overdue, a lead time) fits in an
/// `i64` of nanoseconds and never saturates.
pub const MIN_SUPPORTED: EpochNanos = -2_208_988_800 * NANOS_PER_SECOND;
/// The first instant after the supported range, 2190-01-01T00:00:00Z.
pub const END_SUPPORTED: EpochNanos = 6_942_585_600 * NANOS_PER_SECOND;
/// The supported range, as rejections name it.
pub const SUPPORTED_RANGE: &str = "years 1900 to 2189";

/// Converts a timestamp of an event (or computed from one), or `None` when it lies outside the
/// supported range.
pub fn to_supported_nanos(at: Timestamp) -> Option<EpochNanos> {
    to_nanos(at).filter(|nanos| (MIN_SUPPORTED..END_SUPPORTED).contains(nanos))
}

/// Converts a timestamp, or `None` when it lies outside what an `i64` of nanoseconds holds.
pub fn to_nanos(at: Timestamp) -> Option<EpochNanos> {
    i64::try_from(at.as_nanosecond()).ok()
}

/// Converts a timestamp, saturating at the ends of the representable range (used for computed
/// deadlines, which may legitimately land far in the future).
pub fn to_nanos_saturating(at: Timestamp) -> EpochNanos {
    saturate(at.as_nanosecond())
}

/// A duration in nanoseconds, saturating at the ends of the `i64` range (the configuration refuses
/// durations that do not fit, so this only guards settings built by hand).
pub fn duration_nanos(duration: SignedDuration) -> EpochNanos {
    saturate(duration.as_nanos())
}

/// `nanos` clamped to the `i64` range.
fn saturate(nanos: i128) -> EpochNanos {
    // After the clamp the value fits, so the conversion cannot fail.
    i64::try_from(nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX))).unwrap_or(i64::MAX)
}

pub fn from_nanos(nanos: EpochNanos) -> Timestamp {
    // Every i64 nanosecond count is within jiff's range (±9999 years).
    Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(Timestamp::MAX)
}

/// Seconds as a float, for gauges.
pub fn seconds_f64(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_SECOND as f64
}
