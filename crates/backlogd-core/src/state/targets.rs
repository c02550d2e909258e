//! Announced clearance targets (`target.announced`): each target's history of promised dates, with
//! the projection backlogd made at the moment of each announcement, and the list of targets in
//! effect (configured ones, overridden by their latest announcement, then announced-only ones).

use jiff::Timestamp;

use super::State;
use crate::aggregates::clearance_seconds;
use crate::event::{MAX_TARGETS, RejectReason, Rejection};
use crate::time::{EpochNanos, NANOS_PER_SECOND, from_nanos, seconds_f64};

/// One announcement of a clearance date.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// Event time of the announcement.
    pub time: EpochNanos,
    /// The track the date is about; `None`: all tracks.
    pub track: Option<u8>,
    /// The date promised.
    pub clear_by: EpochNanos,
    pub announced_by: Option<String>,
    pub note: Option<String>,
    /// The projected clearance instant (seconds since the epoch) at the state's clock when the
    /// announcement was applied; +Inf when the backlog was not shrinking.
    pub projected_clearance: f64,
}

impl Announcement {
    /// Whether the projection at the moment already said the promised date would be missed (the
    /// projected clearance is after it, or never).
    pub fn behind_projection(&self) -> bool {
        self.projected_clearance > seconds_f64(self.clear_by)
    }
}

/// The announcements of one target name, oldest first: the newest
/// `max_announcements_per_target`, and how many older ones were let go.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetHistory {
    pub name: String,
    pub announcements: Vec<Announcement>,
    /// Announcements applied but no longer kept (the oldest).
    pub forgotten: u64,
}

impl TargetHistory {
    /// Every announcement applied for the target, kept or not.
    pub fn total(&self) -> u64 {
        self.forgotten
            .saturating_add(self.announcements.len() as u64)
    }

    /// Lets the oldest announcements go until at most `keep` are left.
    pub(super) fn trim(&mut self, keep: u32) {
        let keep = usize::try_from(keep.max(1)).unwrap_or(usize::MAX);
        if self.announcements.len() > keep {
            let excess = self.announcements.len() - keep;
            self.announcements.drain(..excess);
            self.forgotten = self.forgotten.saturating_add(excess as u64);
        }
    }
}

/// A target in effect: its configured values overridden by its latest announcement.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetInEffect {
    pub name: String,
    pub track: Option<u8>,
    pub clear_by: EpochNanos,
    /// The configured date, when the target is configured.
    pub configured_clear_by: Option<EpochNanos>,
    /// Index in `State::target_histories`, when announced.
    pub history: Option<usize>,
}

/// A target's figures at the state's clock, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetFigures {
    pub name: String,
    /// The date in effect, in seconds since the epoch.
    pub clear_by_seconds: f64,
    /// Now plus the clearance time at the current net outflow; +Inf when not shrinking.
    pub projected_clearance: f64,
    /// Every announcement applied, kept or not.
    pub announcements: u64,
    /// The announcements kept (at most `max_announcements_per_target`).
    pub announcements_kept: u64,
    /// Whether the latest announcement promised a date its projection already said would be missed.
    pub latest_behind_projection: bool,
}

/// One target of `GET /v1/targets`, with names instead of ids.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetReport {
    pub name: String,
    pub track: Option<String>,
    pub configured_clear_by: Option<Timestamp>,
    pub clear_by: Timestamp,
    pub projected_clearance: Option<Timestamp>,
    /// The kept announcements, oldest first.
    pub announcements: Vec<AnnouncementReport>,
    /// Every announcement applied, kept or not.
    pub announcements_total: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnnouncementReport {
    pub time: Timestamp,
    pub track: Option<String>,
    pub clear_by: Timestamp,
    pub announced_by: Option<String>,
    pub note: Option<String>,
    /// `None`: at the observed rate the backlog was not shrinking (never cleared).
    pub projected_clearance: Option<Timestamp>,
    pub behind_projection: bool,
}

/// An instant in seconds (possibly +Inf or beyond the supported range) as a timestamp, or `None`.
fn timestamp_of_seconds(seconds: f64) -> Option<Timestamp> {
    if !seconds.is_finite() {
        return None;
    }
    let nanos = seconds * NANOS_PER_SECOND as f64;
    if nanos >= i64::MAX as f64 || nanos <= i64::MIN as f64 {
        return None;
    }
    Some(from_nanos(nanos as i64))
}

impl State {
    /// Applies a `target.announced` (validated fields first, then the change).
    pub(super) fn announce_target(
        &mut self,
        target: &str,
        track: Option<&str>,
        clear_by: Timestamp,
        announced_by: Option<&str>,
        note: Option<&str>,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        self.check_text(target, "data.target")?;
        let track_id = match track {
            Some(track) => Some(self.track_id(track, "data.track")?),
            None => None,
        };
        if let Some(by) = announced_by {
            self.check_text(by, "data.announced_by")?;
        }
        let clear_by = self.checked_nanos(clear_by, "data.clear_by")?;
        let configured = self.settings.targets.iter().find(|t| t.name == target);
        let known = self.target_histories.iter().position(|h| h.name == target);
        if known.is_none() && configured.is_none() {
            let announced_only = self
                .target_histories
                .iter()
                .filter(|h| !self.settings.targets.iter().any(|t| t.name == h.name))
                .count();
            if self.settings.targets.len() + announced_only >= MAX_TARGETS {
                return Err(Rejection::new(
                    RejectReason::TooManyTargets,
                    format!(
                        "field `data.target`: \"{target}\" would be target number {}; at most {MAX_TARGETS} are kept (announce a known target instead)",
                        MAX_TARGETS + 1
                    ),
                ));
            }
        }
        let track = track_id.or_else(|| configured.and_then(|t| t.track));
        let announcement = Announcement {
            time,
            track,
            clear_by,
            announced_by: announced_by.map(str::to_owned),
            note: note.map(str::to_owned),
            projected_clearance: self.projected_clearance(track),
        };
        let keep = self.settings.max_announcements_per_target;
        match known {
            Some(index) => {
                let history = &mut self.target_histories[index];
                history.announcements.push(announcement);
                history.trim(keep);
            }
            None => self.target_histories.push(TargetHistory {
                name: target.to_owned(),
                announcements: vec![announcement],
                forgotten: 0,
            }),
        }
        Ok(())
    }

    /// Lets every target's oldest announcements go beyond `max_announcements_per_target` (after a
    /// load or a change of settings).
    pub(super) fn trim_target_histories(&mut self) {
        let keep = self.settings.max_announcements_per_target;
        for history in &mut self.target_histories {
            history.trim(keep);
        }
    }

    /// Per track: the net outflow over the forecast window, per second.
    fn net_outflow(&self) -> Vec<f64> {
        let forecast = self.settings.forecast_window.nanos();
        let forecast_seconds = seconds_f64(forecast);
        let (now, shape) = (self.now, self.flow_shape);
        (0..self.aggregates.tracks.len())
            .map(|t| {
                let out = self.outflow[t].sum(shape, now, forecast) as f64;
                let into = self.inflow[t].sum(shape, now, forecast) as f64;
                (out - into) / forecast_seconds
            })
            .collect()
    }

    /// Now plus the clearance time of `track` (or of all tracks) at the net outflow `net` (per
    /// track, from `net_outflow`), in seconds since the epoch; +Inf when not shrinking.
    fn projected_clearance_at(&self, net: &[f64], track: Option<u8>) -> f64 {
        let seconds = match track {
            Some(t) => {
                let t = usize::from(t);
                clearance_seconds(self.aggregates.tracks[t].open(), net[t])
            }
            None => clearance_seconds(self.open_cases(), net.iter().sum()),
        };
        seconds_f64(self.now) + seconds
    }

    /// `projected_clearance_at` with the current net outflow.
    pub(super) fn projected_clearance(&self, track: Option<u8>) -> f64 {
        self.projected_clearance_at(&self.net_outflow(), track)
    }

    /// The announcement histories, in the order of each target's first announcement.
    pub fn target_histories(&self) -> &[TargetHistory] {
        &self.target_histories
    }

    /// The targets in effect: the configured ones (in configuration order), each overridden by its
    /// latest announcement, then the announced-only ones in the order of their first announcement.
    pub fn targets_in_effect(&self) -> Vec<TargetInEffect> {
        let latest = |index: usize| self.target_histories[index].announcements.last();
        let mut out: Vec<TargetInEffect> = self
            .settings
            .targets
            .iter()
            .map(|configured| {
                let history = self
                    .target_histories
                    .iter()
                    .position(|h| h.name == configured.name);
                let announced = history.and_then(latest);
                TargetInEffect {
                    name: configured.name.clone(),
                    track: announced.map_or(configured.track, |a| a.track),
                    clear_by: announced.map_or(configured.clear_by, |a| a.clear_by),
                    configured_clear_by: Some(configured.clear_by),
                    history,
                }
            })
            .collect();
        for (index, history) in self.target_histories.iter().enumerate() {
            if out.iter().any(|t| t.name == history.name) {
                continue;
            }
            if let Some(announced) = latest(index) {
                out.push(TargetInEffect {
                    name: history.name.clone(),
                    track: announced.track,
                    clear_by: announced.clear_by,
                    configured_clear_by: None,
                    history: Some(index),
                });
            }
        }
        out
    }

    /// The figures of every target in effect at the state's clock.
    pub fn target_figures(&self) -> Vec<TargetFigures> {
        let net = self.net_outflow();
        self.targets_in_effect()
            .into_iter()
            .map(|t| {
                let history = t.history.map(|i| &self.target_histories[i]);
                TargetFigures {
                    clear_by_seconds: seconds_f64(t.clear_by),
                    projected_clearance: self.projected_clearance_at(&net, t.track),
                    announcements: history.map_or(0, TargetHistory::total),
                    announcements_kept: history.map_or(0, |h| h.announcements.len() as u64),
                    latest_behind_projection: history
                        .and_then(|h| h.announcements.last())
                        .is_some_and(Announcement::behind_projection),
                    name: t.name,
                }
            })
            .collect()
    }

    /// Every target in effect with its history, for `GET /v1/targets`.
    pub fn target_reports(&self) -> Vec<TargetReport> {
        let net = self.net_outflow();
        let track_name =
            |track: Option<u8>| track.map(|t| self.settings.tracks[usize::from(t)].name.clone());
        self.targets_in_effect()
            .into_iter()
            .map(|t| TargetReport {
                track: track_name(t.track),
                configured_clear_by: t.configured_clear_by.map(from_nanos),
                clear_by: from_nanos(t.clear_by),
                projected_clearance: timestamp_of_seconds(
                    self.projected_clearance_at(&net, t.track),
                ),
                announcements: t
                    .history
                    .map(|i| self.target_histories[i].announcements.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|a| AnnouncementReport {
                        time: from_nanos(a.time),
                        track: track_name(a.track),
                        clear_by: from_nanos(a.clear_by),
                        announced_by: a.announced_by.clone(),
                        note: a.note.clone(),
                        projected_clearance: timestamp_of_seconds(a.projected_clearance),
                        behind_projection: a.behind_projection(),
                    })
                    .collect(),
                announcements_total: t.history.map_or(0, |i| self.target_histories[i].total()),
                name: t.name,
            })
            .collect()
    }
}
