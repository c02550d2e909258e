//! `backlogd backfill`: the state's history as OpenMetrics text for
//! `promtool tsdb create-blocks-from openmetrics`.
//!
//! The events are read in file order, as the daemon would receive them, and each is applied through
//! the core with `now` = its own event time: rejections and deduplication are the daemon's. Before
//! the first event later than a step instant, the state is advanced to that instant and its families
//! are written exactly as `/metrics` would show them then (`metrics::history_families` of the view
//! the engine would publish), with the instant as the sample timestamp. Memory is the state's: one
//! step's families at a time, whatever the number of steps.
//!
//! Refused, before or while writing, with the line or the figure named: an event earlier than the
//! latest event time read so far by more than `ingest.max_future_skew` (its step would already have
//! been written), and a run that would write more than `max_samples` samples.

pub mod openmetrics;
pub mod store;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::config::Config;
use crate::core::State;
use crate::core::state::Applied;
use crate::core::time::{EpochNanos, duration_nanos, from_nanos, to_nanos};
use crate::engine::view_of;
use crate::workforce::{EdgeSettings, WorkforceBuilder};

/// The default of `--max-samples`: about 5 GB of OpenMetrics text, and far more than two years of
/// a large agency at one-hour steps.
pub const DEFAULT_MAX_SAMPLES: u64 = 50_000_000;

/// How many rejected lines are named one by one in the summary.
const REJECTIONS_NAMED: usize = 20;

/// What to backfill.
#[derive(Debug, Clone)]
pub struct Options {
    /// The event files, read in this order.
    pub files: Vec<PathBuf>,
    /// Distance between step instants (positive).
    pub step: SignedDuration,
    /// First step instant; default: the first event's time, rounded up to a multiple of `step`
    /// since the Unix epoch.
    pub from: Option<Timestamp>,
    /// Last step instant at most; default: the latest event time.
    pub to: Option<Timestamp>,
    /// Refuse to write more samples than this.
    pub max_samples: u64,
    /// Labels added to every sample, e.g. `job` and `instance` as Prometheus scrapes the live
    /// daemon, so that backfilled and live series are the same series.
    pub labels: Vec<(String, String)>,
    /// Refuse an event later than this, and a `to` beyond it: a store for a daemon (`--store`)
    /// must not be ahead of its clock, where the daemon would have refused the event
    /// (`time_in_future`).
    pub not_after: Option<Timestamp>,
    /// Draw progress on standard error when it is a terminal (`crate::progress`).
    pub progress: bool,
}

/// What a backfill read and wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub lines: u64,
    pub applied: u64,
    pub duplicates: u64,
    /// Rejected events per reason (`invalid_json`, `unknown_case`, ...).
    pub rejected: BTreeMap<&'static str, u64>,
    /// The first rejected lines: `file:line: reason: message`.
    pub rejections_named: Vec<String>,
    pub steps: u64,
    pub samples: u64,
    pub first_step: Option<Timestamp>,
    pub last_step: Option<Timestamp>,
}

/// Why a backfill stopped. The output written so far is incomplete (it lacks `# EOF`).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("--step {0:#}: the step must be positive")]
    BadStep(SignedDuration),
    #[error(
        "--label {0}: not a label name (letters, digits and _, not starting with a digit or __)"
    )]
    BadLabel(String),
    #[error("--from {from} is later than --to {to}")]
    EmptyRange { from: Timestamp, to: Timestamp },
    #[error(
        "--from {from} to --to {to} at --step {step:#} is {steps} steps, more than --max-samples {limit} samples even at one sample a step; use a larger --step or a shorter range"
    )]
    TooManySteps {
        from: Timestamp,
        to: Timestamp,
        step: SignedDuration,
        steps: u64,
        limit: u64,
    },
    #[error(
        "the step at {at} would bring the samples written to {total}, more than --max-samples {limit} ({steps} steps written so far, {per_step} samples in this one{}); use a larger --step, a shorter --from/--to range, or raise --max-samples",
        reached_by.as_deref().map(|by| format!("; the steps up to {by}")).unwrap_or_default()
    )]
    TooManySamples {
        at: Timestamp,
        total: u64,
        limit: u64,
        steps: u64,
        per_step: u64,
        /// The event whose time the steps were being written up to (`file:line (time)`): an event
        /// far ahead of the others (a mistyped year) shows here.
        reached_by: Option<String>,
    },
    #[error(
        "{path}:{line}: event time {time} is {behind:#} earlier than the latest event time read before it ({latest}), more than ingest.max_future_skew ({skew:#}): the file is not in time order; sort it by time (docs/backfill.md)"
    )]
    OutOfOrder {
        path: PathBuf,
        line: u64,
        time: Timestamp,
        latest: Timestamp,
        behind: SignedDuration,
        skew: SignedDuration,
    },
    #[error(
        "{path}:{line}: event time {time} is later than now plus ingest.max_future_skew ({limit}): a store must not be ahead of the daemon's clock, which would refuse the event (time_in_future)"
    )]
    Ahead {
        path: PathBuf,
        line: u64,
        time: Timestamp,
        limit: Timestamp,
    },
    #[error(
        "--to {to} is later than now plus ingest.max_future_skew ({limit}): a store must not be ahead of the daemon's clock"
    )]
    ToAhead { to: Timestamp, limit: Timestamp },
    #[error("no event in the files was applied, so there is no first step; give --from and --to")]
    NoEvents,
    /// The configuration's edge settings (e.g. `workforce.pseudonym_key_file`) cannot be used.
    #[error(transparent)]
    Edge(crate::workforce::EdgeError),
    #[error(
        "no step to write: the first step instant{} is after --to {to} (the first event is later than --to?)",
        from.map(|f| format!(" {f}")).unwrap_or_default()
    )]
    NoSteps {
        from: Option<Timestamp>,
        to: Timestamp,
    },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the output: {0}")]
    Write(#[source] io::Error),
}

/// The state and everything needed to render it, plus the step cursor.
struct Backfill<'a, W: Write> {
    options: &'a Options,
    /// `None` when no OpenMetrics text is wanted (only the final state, `--store` alone).
    out: Option<W>,
    state: State,
    settings: Arc<crate::core::CoreSettings>,
    edge: Arc<EdgeSettings>,
    workforce: WorkforceBuilder,
    step: EpochNanos,
    target: Vec<prometheus::proto::LabelPair>,
    /// The next step instant to write; `None` until the first event fixes it (without `--from`).
    next: Option<EpochNanos>,
    to: Option<EpochNanos>,
    summary: Summary,
    /// The latest event time applied so far.
    latest: Option<EpochNanos>,
    /// `ingest.max_future_skew`: how far an event may lie behind the latest one.
    skew: SignedDuration,
}

/// Runs a backfill into `out`, ending it with `# EOF` on success.
pub fn run(config: &Config, options: &Options, out: impl Write) -> Result<Summary, BackfillError> {
    run_to_state(config, options, Some(out)).map(|(summary, _)| summary)
}

/// Runs a backfill into `out` (ending it with `# EOF`), or with `out = None` only applies the
/// events up to `--to`, and returns the state at the end: advanced to `--to`, or to the latest
/// event time. Its daily history holds a row for every midnight in between (`store::write` makes a
/// store of it that the daemon starts from).
pub fn run_to_state<W: Write>(
    config: &Config,
    options: &Options,
    out: Option<W>,
) -> Result<(Summary, State), BackfillError> {
    let writing = out.is_some();
    let step = duration_nanos(options.step);
    check_options(options, writing, step)?;
    let settings = crate::config::core_settings(config);
    let edge = EdgeSettings::from_config(config).map_err(BackfillError::Edge)?;
    let mut backfill = Backfill {
        options,
        out,
        state: State::new(settings.clone()),
        settings: Arc::new(settings),
        edge: Arc::new(edge),
        workforce: WorkforceBuilder::default(),
        step,
        target: options
            .labels
            .iter()
            .map(|(name, value)| openmetrics::label_pair(name, value))
            .collect(),
        next: options.from.map(nanos_saturating),
        to: options.to.map(nanos_saturating),
        summary: Summary::default(),
        latest: None,
        skew: config.ingest.max_future_skew,
    };
    let mut line = Vec::new();
    let progress = crate::progress::Progress::new(
        crate::progress::bytes_of(&options.files),
        "events",
        !options.progress,
    );
    let mut done_bytes = 0u64;
    'files: for path in &options.files {
        let read_error = |source| BackfillError::Read {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut number = 0u64;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(read_error)? == 0 {
                break;
            }
            number += 1;
            done_bytes += line.len() as u64;
            if number.is_multiple_of(4096) {
                progress.advance(done_bytes, 4096);
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if backfill.feed(path, number, text)? == Flow::PastTo {
                break 'files;
            }
        }
    }
    progress.finish();
    backfill.finish()
}

/// Refusals that need no event: a step of zero, a bad label name, a `--to` ahead of now, an empty
/// range, too many steps.
fn check_options(options: &Options, writing: bool, step: EpochNanos) -> Result<(), BackfillError> {
    if writing && step <= 0 {
        return Err(BackfillError::BadStep(options.step));
    }
    for (name, _) in &options.labels {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with("__");
        if !valid {
            return Err(BackfillError::BadLabel(name.clone()));
        }
    }
    if let (Some(to), Some(limit)) = (options.to, options.not_after)
        && to > limit
    {
        return Err(BackfillError::ToAhead { to, limit });
    }
    if let (Some(from), Some(to)) = (options.from, options.to) {
        if from > to {
            return Err(BackfillError::EmptyRange { from, to });
        }
        let span = i128::from(nanos_saturating(to)) - i128::from(nanos_saturating(from));
        let steps = span as u128 / step as u128 + 1;
        if writing && steps > u128::from(options.max_samples) {
            return Err(BackfillError::TooManySteps {
                from,
                to,
                step: options.step,
                steps: u64::try_from(steps).unwrap_or(u64::MAX),
                limit: options.max_samples,
            });
        }
    }
    Ok(())
}

/// Whether reading goes on after an event.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Next,
    /// The event lies after `--to`: it and everything after it are left out.
    PastTo,
}

impl<W: Write> Backfill<'_, W> {
    /// One event line (`number` of `path`): parsed, checked against the order and the limits,
    /// the steps before it written, then applied.
    fn feed(&mut self, path: &Path, number: u64, text: &str) -> Result<Flow, BackfillError> {
        self.summary.lines += 1;
        let event = match crate::wire::parse_event(text) {
            Ok(event) => event,
            Err(rejected) => {
                self.reject(path, number, &rejected.rejection);
                return Ok(Flow::Next);
            }
        };
        let Some(time) = to_nanos(event.time) else {
            // Out of the supported range: the core names it.
            let now = self.latest.unwrap_or(0);
            if let Err(rejection) = self.state.apply(&event, now) {
                self.reject(path, number, &rejection);
            }
            return Ok(Flow::Next);
        };
        if let Some(limit) = self.options.not_after.map(nanos_saturating)
            && time > limit
        {
            return Err(BackfillError::Ahead {
                path: path.to_owned(),
                line: number,
                time: event.time,
                limit: from_nanos(limit),
            });
        }
        if let Some(latest) = self.latest
            && time < latest.saturating_sub(duration_nanos(self.skew))
        {
            return Err(BackfillError::OutOfOrder {
                path: path.to_owned(),
                line: number,
                time: event.time,
                latest: from_nanos(latest),
                behind: SignedDuration::from_nanos(latest - time),
                skew: self.skew,
            });
        }
        if self.out.is_some() && self.next.is_none() {
            let floor = time.div_euclid(self.step).saturating_mul(self.step);
            self.next = Some(if floor == time {
                time
            } else {
                floor.saturating_add(self.step)
            });
        }
        // Reading stops at the first event after `--to`, whether steps are written or not:
        // the events between the last step and `--to` are applied too (the store ends at
        // `--to`; the steps are unchanged by them).
        if self.to.is_some_and(|to| time > to) {
            return Ok(Flow::PastTo);
        }
        // Every step before this event's time is complete: write them (an event within the
        // skew of an earlier, later one belongs to a step already written, as in the daemon).
        self.write_steps_before(time).map_err(|e| match e {
            BackfillError::TooManySamples {
                at,
                total,
                limit,
                steps,
                per_step,
                reached_by: None,
            } => BackfillError::TooManySamples {
                at,
                total,
                limit,
                steps,
                per_step,
                reached_by: Some(format!("{}:{number} ({})", path.display(), event.time)),
            },
            other => other,
        })?;
        match self.state.apply(&event, time) {
            Ok(Applied::New) => self.summary.applied += 1,
            Ok(Applied::Duplicate) => self.summary.duplicates += 1,
            Err(rejection) => self.reject(path, number, &rejection),
        }
        self.latest = Some(self.latest.map_or(time, |l| l.max(time)));
        Ok(Flow::Next)
    }

    /// After the last event: the steps up to the end written, `# EOF`, and the state advanced to
    /// `--to` (or the latest event).
    fn finish(mut self) -> Result<(Summary, State), BackfillError> {
        let last = match (self.to, self.latest) {
            (Some(to), _) => to,
            (None, Some(latest)) => latest,
            (None, None) => return Err(BackfillError::NoEvents),
        };
        self.to = Some(last);
        if self.out.is_none() {
            self.state.advance(last);
            return Ok((self.summary, self.state));
        }
        if self.next.is_none() {
            return Err(BackfillError::NoEvents);
        }
        self.write_steps_before(last.saturating_add(1))?;
        // The last step may lie before `last`; the state (a store's snapshot) ends at `last`.
        self.state.advance(last);
        if self.summary.steps == 0 {
            return Err(BackfillError::NoSteps {
                from: self.next.map(from_nanos),
                to: from_nanos(last),
            });
        }
        if let Some(out) = &mut self.out {
            openmetrics::write_eof(out).map_err(BackfillError::Write)?;
            out.flush().map_err(BackfillError::Write)?;
        }
        Ok((self.summary, self.state))
    }

    fn reject(&mut self, path: &Path, line: u64, rejection: &crate::core::event::Rejection) {
        *self
            .summary
            .rejected
            .entry(rejection.reason.as_str())
            .or_default() += 1;
        if self.summary.rejections_named.len() < REJECTIONS_NAMED {
            self.summary
                .rejections_named
                .push(format!("{}:{line}: {rejection}", path.display()));
        }
    }

    /// Writes every step instant before `before` (and not after `--to`).
    fn write_steps_before(&mut self, before: EpochNanos) -> Result<(), BackfillError> {
        if self.out.is_none() {
            return Ok(());
        }
        while let Some(at) = self.next {
            if self.to.is_some_and(|to| at > to) || at >= before {
                return Ok(());
            }
            self.write_step(at)?;
            self.next = at.checked_add(self.step);
        }
        Ok(())
    }

    fn write_step(&mut self, at: EpochNanos) -> Result<(), BackfillError> {
        self.state.advance(at);
        let (workforce, _) = self.workforce.build(&self.state, &self.edge);
        let mut view = view_of(
            &self.state,
            self.settings.clone(),
            Arc::new(workforce),
            self.edge.clone(),
        );
        // Before any event the state's clock has not moved; the scrape would be at `at`.
        view.now = at;
        let families = crate::metrics::history_families(&view);
        let per_step: u64 = families.iter().map(sample_count).sum();
        let total = self.summary.samples + per_step;
        if total > self.options.max_samples {
            return Err(BackfillError::TooManySamples {
                at: from_nanos(at),
                total,
                limit: self.options.max_samples,
                steps: self.summary.steps,
                per_step,
                reached_by: None,
            });
        }
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        openmetrics::write_families(out, &families, at.div_euclid(1_000_000), &self.target)
            .map_err(BackfillError::Write)?;
        self.summary.samples = total;
        self.summary.steps += 1;
        self.summary.first_step.get_or_insert(from_nanos(at));
        self.summary.last_step = Some(from_nanos(at));
        Ok(())
    }
}

/// The number of sample lines `openmetrics::write_families` writes for a family.
fn sample_count(family: &prometheus::proto::MetricFamily) -> u64 {
    use prometheus::proto::MetricType;
    family
        .get_metric()
        .iter()
        .map(|metric| match family.get_field_type() {
            MetricType::HISTOGRAM => {
                let buckets = metric.get_histogram().get_bucket();
                let inf = buckets.iter().any(|b| b.upper_bound() == f64::INFINITY);
                buckets.len() as u64 + u64::from(!inf) + 2
            }
            MetricType::SUMMARY => metric.get_summary().get_quantile().len() as u64 + 2,
            _ => 1,
        })
        .sum()
}

fn nanos_saturating(at: Timestamp) -> EpochNanos {
    crate::core::time::to_nanos_saturating(at)
}

/// A duration on the command line: `1h`, `5m`, `1d`, `90s`, or ISO 8601 (`PT1H`, `P1D`).
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let text = text.trim();
    let days = text
        .strip_suffix('d')
        .and_then(|n| n.parse::<i64>().ok())
        .map(|n| SignedDuration::from_hours(n.saturating_mul(24)));
    if let Some(days) = days {
        return Ok(days);
    }
    if let Ok(duration) = text.parse::<SignedDuration>() {
        return Ok(duration);
    }
    text.parse::<jiff::Span>()
        .and_then(|span| span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()))
        .map_err(|e| format!("{text:?} is not a duration (such as 1h, 5m, 1d, PT1H or P1D): {e}"))
}

#[cfg(test)]
mod tests;
