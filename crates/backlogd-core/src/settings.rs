//! What the core needs to know of the configuration, in the core's own terms.
//!
//! The configuration module (`crate::config`) parses and validates the TOML file and builds this; the
//! core never sees the file, serde or environment variables.

use jiff::{SignedDuration, Span, Timestamp, tz::TimeZone};

use super::time::EpochNanos;

/// The settings the state core runs with. Built once per (re)load; indices into the vectors (track,
/// phase, role, window) are the compact ids the core stores per case and employee.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreSettings {
    pub timezone: TimeZone,
    /// Events whose time is further ahead of "now" than this are rejected (`time_in_future`).
    pub max_future_skew: SignedDuration,
    /// Configured tracks, in the order their ids are used.
    pub tracks: Vec<TrackSettings>,
    /// Configured phases; phase id 0 is the implicit `none`, configured phase `i` has id `i + 1`.
    pub phases: Vec<String>,
    pub roles: Vec<String>,
    /// Due-soon windows: a case is due soon for window `w` when its deadline is at most `w` ahead.
    pub due_soon_windows: Vec<WindowSettings>,
    /// Windows of the rolling inflow/outflow counts.
    pub rolling_windows: Vec<WindowSettings>,
    /// Window of the clearance forecast's net outflow rate.
    pub forecast_window: WindowSettings,
    /// Staff count as new for the first this many weeks after their (latest) join.
    pub new_staff_weeks: u32,
    /// Window of the quality pass ratio.
    pub quality_window: WindowSettings,
    /// Clearance targets to compare the forecast with.
    pub targets: Vec<TargetSettings>,
    /// Locations beyond this many distinct values are counted as `other`.
    pub max_locations: u32,
    /// Announcements kept per target (the newest); older ones are only counted. At least 1.
    pub max_announcements_per_target: u32,
    /// How long applied event ids are remembered, by arrival time.
    pub dedup_window: SignedDuration,
}

#[derive(Debug, Clone)]
pub struct TrackSettings {
    pub name: String,
    pub decision_period: Span,
    pub penalty_grace: Span,
    pub penalty: PenaltySchedule,
}

/// Spans compare field by field (`P1M` is not `P30D`): as written, which is what a change of the
/// configuration is.
impl PartialEq for TrackSettings {
    fn eq(&self, other: &TrackSettings) -> bool {
        self.name == other.name
            && self.decision_period.fieldwise() == other.decision_period.fieldwise()
            && self.penalty_grace.fieldwise() == other.penalty_grace.fieldwise()
            && self.penalty == other.penalty
    }
}

/// A configured clearance target: the backlog of `track` (or of all tracks) should be cleared by
/// `clear_by`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSettings {
    pub name: String,
    pub track: Option<u8>,
    pub clear_by: EpochNanos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WindowSettings {
    /// The duration exactly as written in the config, used as the `window` label.
    pub label: String,
    pub length: SignedDuration,
}

impl WindowSettings {
    pub fn nanos(&self) -> EpochNanos {
        // The configuration refuses windows beyond i64 nanoseconds; saturate rather than wrap.
        super::time::duration_nanos(self.length)
    }
}

/// A penalty schedule: tiers applied one after another, each `days` long at `per_day_cents`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PenaltySchedule {
    pub tiers: Vec<PenaltyTierSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PenaltyTierSettings {
    pub days: u32,
    pub per_day_cents: i64,
}

impl PenaltySchedule {
    /// The number of overdue days after which the amount no longer grows (the schedule's cap).
    pub fn cap_days(&self) -> u32 {
        self.tiers
            .iter()
            .fold(0u32, |total, tier| total.saturating_add(tier.days))
    }

    /// Accrued amount in cents after `days` whole overdue days:
    /// Σ over tiers of min(max(d − start_of_tier, 0), tier.days) × tier.per_day.
    pub fn accrued_cents(&self, days: u32) -> i64 {
        let mut start = 0u32;
        let mut total = 0i64;
        for tier in &self.tiers {
            let in_tier = days.saturating_sub(start).min(tier.days);
            total += i64::from(in_tier) * tier.per_day_cents;
            start = start.saturating_add(tier.days);
        }
        total
    }
}

impl CoreSettings {
    /// A small, valid configuration for tests and examples: one `asylum` track with the Dutch default
    /// penalty schedule, the default phases and roles, due-soon windows P7D and P28D.
    pub fn example() -> CoreSettings {
        let days = |n: i64| WindowSettings {
            label: format!("P{n}D"),
            length: SignedDuration::from_hours(24 * n),
        };
        CoreSettings {
            timezone: TimeZone::get("Europe/Amsterdam").unwrap_or(TimeZone::UTC),
            max_future_skew: SignedDuration::from_mins(5),
            tracks: vec![TrackSettings {
                name: "asylum".into(),
                decision_period: Span::new().months(6),
                penalty_grace: Span::new(),
                penalty: PenaltySchedule {
                    tiers: vec![
                        PenaltyTierSettings {
                            days: 14,
                            per_day_cents: 2300,
                        },
                        PenaltyTierSettings {
                            days: 14,
                            per_day_cents: 3500,
                        },
                        PenaltyTierSettings {
                            days: 14,
                            per_day_cents: 4500,
                        },
                    ],
                },
            }],
            phases: ["intake", "hearing", "intention", "view", "decision"]
                .map(String::from)
                .to_vec(),
            roles: ["caseworker", "mentor", "decision_officer"]
                .map(String::from)
                .to_vec(),
            due_soon_windows: vec![days(7), days(28)],
            rolling_windows: vec![days(7), days(28)],
            forecast_window: days(28),
            new_staff_weeks: 12,
            quality_window: days(91),
            targets: vec![TargetSettings {
                name: "backlog".into(),
                track: Some(0),
                clear_by: 1_814_392_800 * super::time::NANOS_PER_SECOND,
            }],
            max_locations: 64,
            max_announcements_per_target: 100,
            dedup_window: SignedDuration::from_hours(24 * 30),
        }
    }

    pub fn track_index(&self, name: &str) -> Option<u8> {
        self.tracks
            .iter()
            .position(|t| t.name == name)
            .and_then(|i| u8::try_from(i).ok())
    }

    /// Phase id of a configured phase (`none` is id 0 and not configurable).
    pub fn phase_index(&self, name: &str) -> Option<u8> {
        self.phases
            .iter()
            .position(|p| p == name)
            .and_then(|i| u8::try_from(i + 1).ok())
    }

    pub fn role_index(&self, name: &str) -> Option<u8> {
        self.roles
            .iter()
            .position(|r| r == name)
            .and_then(|i| u8::try_from(i).ok())
    }

    /// Phase label of a phase id.
    pub fn phase_name(&self, id: u8) -> &str {
        match id {
            0 => "none",
            n => self.phases.get(usize::from(n) - 1).map_or("none", |s| s),
        }
    }

    /// Adds a calendar span to an instant in the configured time zone (months clamp to the month's
    /// end; a wall-clock time in a DST gap resolves to the later offset). Saturates at the far future
    /// when the result is out of range.
    pub fn add_calendar(&self, at: Timestamp, span: Span) -> Timestamp {
        at.to_zoned_datetime(self.timezone.clone())
            .checked_add(span)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_schedule_caps_at_1442_euros() {
        let schedule = CoreSettings::example().tracks[0].penalty.clone();
        assert_eq!(schedule.cap_days(), 42);
        assert_eq!(schedule.accrued_cents(0), 0);
        assert_eq!(schedule.accrued_cents(1), 2300);
        assert_eq!(schedule.accrued_cents(14), 14 * 2300);
        assert_eq!(schedule.accrued_cents(15), 14 * 2300 + 3500);
        assert_eq!(schedule.accrued_cents(42), 144_200);
        assert_eq!(schedule.accrued_cents(1000), 144_200);
    }

    #[test]
    fn month_end_clamps_and_keeps_wall_clock_time() {
        let settings = CoreSettings::example();
        let jan31: Timestamp = "2024-01-31T10:00:00+01:00".parse().unwrap();
        let feb = settings.add_calendar(jan31, Span::new().months(1));
        assert_eq!(
            feb,
            "2024-02-29T10:00:00+01:00".parse::<Timestamp>().unwrap()
        );
        let jan31_2023: Timestamp = "2023-01-31T10:00:00+01:00".parse().unwrap();
        let feb = settings.add_calendar(jan31_2023, Span::new().months(1));
        assert_eq!(
            feb,
            "2023-02-28T10:00:00+01:00".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn six_months_across_dst_keeps_wall_clock_time() {
        let settings = CoreSettings::example();
        // Winter time (+01:00) to summer time (+02:00): same 09:00 wall clock, one hour less elapsed.
        let jan: Timestamp = "2025-01-15T09:00:00+01:00".parse().unwrap();
        let jul = settings.add_calendar(jan, Span::new().months(6));
        assert_eq!(
            jul,
            "2025-07-15T09:00:00+02:00".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn wall_clock_in_dst_gap_resolves_to_later_offset() {
        let settings = CoreSettings::example();
        // 2025-03-30 02:30 does not exist in Amsterdam (clocks jump 02:00 -> 03:00).
        let start: Timestamp = "2025-03-29T02:30:00+01:00".parse().unwrap();
        let next = settings.add_calendar(start, Span::new().days(1));
        assert_eq!(
            next,
            "2025-03-30T03:30:00+02:00".parse::<Timestamp>().unwrap()
        );
    }
}
