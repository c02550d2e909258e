//! `backlogd simulate`: a deterministic generator of case and workforce events (docs/events.md) modelled on
//! the situation the README opens with, for demos, benchmarks and end-to-end tests.
//!
//! # Model
//!
//! A discrete daily simulation ([`model`]) of one agency described by a scenario file
//! (`config/scenarios/NAME.toml`, see [`Scenario`]): a stock of open cases on day 0, a daily inflow
//! drawn around `inflow.per_week / 7` (with a piecewise-linear ramp), groups of staff joining on
//! given days (permanent or temporary, experienced or trainees), trainees whose productivity rises
//! along a ramp-up curve until they become experienced, mentors assigned to trainees (and rebalanced
//! when more mentors arrive), a production *pressure* (0–1, from the days of work in the backlog)
//! that raises the share of cancelled hearings, of decisions taken by trainees themselves, on the
//! benefit of the doubt and without additional investigation, and lowers the audit pass rate;
//! quality audits at a cadence within a window of days; extensions, suspensions, transfers,
//! closures and reopenings at small rates; employees leaving (and optionally being replaced), and
//! temporary contracts ending.
//!
//! # Determinism
//!
//! Same scenario, seed and options give the same bytes, on every platform: the random numbers
//! come from the module's own xoshiro256** ([`rng`]) and no libm function is used. Event ids are
//! `{scenario}-{seed}-{n}` (n counts from 0 in emission order), case ids `{scenario}-{seed}-c{n}`,
//! employee ids `{scenario}-{seed}-e{nnnn}`. The simulation does not depend on `to`: a run with an
//! earlier `to` is a prefix of one with a later `to` (same `from`), and [`Options::after`] skips
//! the events up to an instant without renumbering, so a history can be posted in phases.
//!
//! # Streaming API
//!
//! ```no_run
//! use backlogd::simulate::{Options, Scenario, generate};
//! let scenario = Scenario::resolve("taskforce")?;
//! let options = Options { seed: 7, ..Options::default() };
//! for event in generate(&scenario, &options)? {
//!     // event.time: Unix seconds (events come in time order); event.line: one JSON object.
//!     println!("{}", event.line);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`generate`] returns a [`Generator`], an iterator that simulates one day at a time: memory holds
//! the open cases, the employees and one day of events, never the whole history, and the work is
//! proportional to the number of events. A live demo can pass a `to` in the future and pace the
//! events by their `time`. [`post`] sends a stream to a daemon in batches with retries; the
//! command line is the binary's `src/cli/simulate.rs`.

mod json;
pub mod model;
pub mod post;
pub mod rng;
pub mod scenario;
pub mod time;

#[cfg(test)]
mod tests;
// A test module (named tests.rs, so that the architecture check reads it as one).
#[cfg(test)]
#[path = "validation/tests.rs"]
mod validation;

pub use model::StatsRow;
pub use scenario::{Scenario, ScenarioError};

/// How to run a scenario. Times are Unix seconds (see [`time::parse_instant`]).
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Start of the simulated history (day 0). Default: `to - calendar.days` when `to` is given,
    /// else the scenario's `calendar.start`.
    pub from: Option<i64>,
    /// End of the history: no event is later. Default: `from + calendar.days`.
    pub to: Option<i64>,
    /// Emit only events later than this instant (the simulation still starts at `from`).
    pub after: Option<i64>,
    /// Multiplies every count of cases (stock and inflow) and employees.
    pub scale: f64,
    /// Scale cases so that about this many are registered over the scenario's nominal length.
    pub cases: Option<u64>,
    /// Scale staff so that about this many employees are hired over the scenario.
    pub employees: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            from: None,
            to: None,
            after: None,
            scale: 1.0,
            cases: None,
            employees: None,
        }
    }
}

/// Options that do not fit the scenario or each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("--to ({to}) must be later than --from ({from})")]
    EmptySpan { from: String, to: String },
    #[error("--scale must be a positive number")]
    BadScale,
    #[error("--cases: scenario {0} registers no cases")]
    NoCases(String),
    #[error("--employees: scenario {0} hires no one")]
    NoEmployees(String),
    #[error("calendar.start: {0}")]
    Start(String),
}

impl Options {
    /// The simulated span `(from, to)` for `scenario`.
    pub fn span(&self, scenario: &Scenario) -> Result<(i64, i64), OptionsError> {
        let days = i64::from(scenario.calendar.days) * time::DAY;
        let (from, to) = match (self.from, self.to) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, from + days),
            (None, Some(to)) => (to - days, to),
            (None, None) => {
                let from = time::parse_instant(&scenario.calendar.start)
                    .map_err(|e| OptionsError::Start(e.to_string()))?;
                (from, from + days)
            }
        };
        if to <= from {
            return Err(OptionsError::EmptySpan {
                from: time::rfc3339(from),
                to: time::rfc3339(to),
            });
        }
        Ok((from, to))
    }

    /// The factors applied to the scenario's case and employee counts.
    pub fn factors(&self, scenario: &Scenario) -> Result<(f64, f64), OptionsError> {
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err(OptionsError::BadScale);
        }
        let mut cases = self.scale;
        if let Some(n) = self.cases {
            let nominal = scenario.nominal_cases();
            if nominal <= 0.0 {
                return Err(OptionsError::NoCases(scenario.name.clone()));
            }
            cases *= n as f64 / nominal;
        }
        let mut employees = self.scale;
        if let Some(n) = self.employees {
            let nominal = scenario.nominal_employees();
            if nominal <= 0.0 {
                return Err(OptionsError::NoEmployees(scenario.name.clone()));
            }
            employees *= n as f64 / nominal;
        }
        Ok((cases, employees))
    }
}

/// One generated event: its time (Unix seconds) and its JSON text (one line, no newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    pub time: i64,
    pub line: String,
}

/// The event stream of one scenario run; see the module documentation.
pub struct Generator {
    sim: model::Sim,
    format: json::Formatter,
    day: Vec<model::Pending>,
    pos: usize,
    next_id: u64,
    to: i64,
    after: Option<i64>,
    done: bool,
}

/// Starts a run of `scenario` with `options`. Fails only on inconsistent options.
pub fn generate(scenario: &Scenario, options: &Options) -> Result<Generator, OptionsError> {
    let (from, to) = options.span(scenario)?;
    let (case_factor, employee_factor) = options.factors(scenario)?;
    Ok(Generator {
        sim: model::Sim::new(scenario, options.seed, from, case_factor, employee_factor),
        format: json::Formatter::new(scenario, options.seed, from),
        day: Vec::new(),
        pos: 0,
        next_id: 0,
        to,
        after: options.after,
        done: false,
    })
}

impl Generator {
    /// Monthly figures of the simulation so far (every 30 days, plus the end once the stream is
    /// exhausted).
    pub fn stats(&self) -> &[StatsRow] {
        self.sim.stats()
    }

    /// Just the JSON lines.
    pub fn lines(self) -> impl Iterator<Item = String> {
        self.map(|event| event.line)
    }

    fn finish(&mut self) {
        self.done = true;
        self.day.clear();
        self.pos = 0;
        self.sim.record_stats();
    }
}

impl Iterator for Generator {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        loop {
            if let Some(pending) = self.day.get(self.pos) {
                self.pos += 1;
                if pending.time > self.to {
                    self.finish();
                    return None;
                }
                let n = self.next_id;
                self.next_id += 1;
                if self.after.is_some_and(|after| pending.time <= after) {
                    continue;
                }
                return Some(SimEvent {
                    time: pending.time,
                    line: self.format.line(n, pending.time, &pending.event),
                });
            }
            if self.done {
                return None;
            }
            if self.sim.day_start() > self.to {
                self.finish();
                return None;
            }
            self.sim.run_day(&mut self.day);
            self.pos = 0;
        }
    }
}
