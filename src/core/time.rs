//! Instants inside the core: nanoseconds since the Unix epoch in an `i64`.
//!
//! Hot structures store this compact form (8 bytes instead of a 12-byte `jiff::Timestamp`); calendar
//! arithmetic converts to `jiff` and back at the edges of a computation. The range (years 1678–2261)
//! is checked when an event enters the core.

use jiff::{SignedDuration, Timestamp};

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub type EpochNanos = i64;

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;

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
