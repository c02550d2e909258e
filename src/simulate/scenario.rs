//! Scenario files: `config/scenarios/NAME.toml`, the parameters of one simulated agency. Every key is
//! documented in the shipped files; omitted keys take the defaults below (a small, steady service).
//!
//! Parsed with the `config` crate (already used for the daemon's own file) into serde structs with
//! `deny_unknown_fields`, then checked by [`Scenario::validate`], so a misspelt parameter is an error
//! rather than a silently ignored one.

use std::path::{Path, PathBuf};

use crate::core::event::{Contract, MAX_TEXT_BYTES};
use serde::Deserialize;

/// The scenarios shipped in `config/scenarios/`, embedded so `backlogd simulate --scenario NAME`
/// works from any directory.
pub const BUILTIN: &[(&str, &str)] = &[
    ("steady", include_str!("../../config/scenarios/steady.toml")),
    (
        "taskforce",
        include_str!("../../config/scenarios/taskforce.toml"),
    ),
    ("scale", include_str!("../../config/scenarios/scale.toml")),
];

/// One scenario. Counts of cases and employees are nominal: `--scale`, `--cases` and `--employees`
/// multiply them (see [`super::Options`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The scenario's name (from the file name); part of every generated id.
    #[serde(skip)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub calendar: Calendar,
    #[serde(default)]
    pub target: Target,
    #[serde(default)]
    pub cases: Cases,
    #[serde(default)]
    pub inflow: Inflow,
    #[serde(default)]
    pub staff: Vec<StaffGroup>,
    #[serde(default)]
    pub productivity: Productivity,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub pressure: Pressure,
    #[serde(default)]
    pub mentoring: Mentoring,
    #[serde(default)]
    pub hearings: Hearings,
    #[serde(default)]
    pub decisions: Decisions,
    #[serde(default)]
    pub audits: Audits,
    #[serde(default)]
    pub case_events: CaseEvents,
    #[serde(default)]
    pub attrition: Attrition,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendar {
    /// Default `--from`: a date (UTC midnight) or an RFC 3339 instant.
    pub start: String,
    /// Default length of the history in days (`--to` = start + days).
    pub days: u32,
    /// Whether staff work on Saturdays and Sundays; applications arrive every day regardless.
    pub weekend_work: bool,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            start: "2025-01-06".into(),
            days: 365,
            weekend_work: false,
        }
    }
}

/// The stated clear-by date, for whoever configures the daemon's `[[targets]]` for this scenario
/// (the demo and the tests), and the dates announced in public along the way, which the simulator
/// sends as `target.announced` events of the target `backlog` on the scenario's track.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Target {
    /// Days after the start by which the backlog was promised to be cleared (0 = no target).
    pub clear_by_days: u32,
    pub announcements: Vec<Announcement>,
}

/// One public announcement of a clearance date.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Announcement {
    /// The day of the announcement (days after the start).
    pub day: u32,
    /// The date promised (days after the start).
    pub clear_by_days: u32,
    /// Who announced it (text; may be empty).
    pub announced_by: String,
    /// The words used (at most 1024 bytes; may be empty).
    pub note: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cases {
    pub track: String,
    pub phases: Vec<String>,
    pub hearing_phase: String,
    pub phase_effort: Vec<f64>,
    pub decision_period_days: u32,
    pub locations: Vec<String>,
    pub initial_open: f64,
    pub initial_age_days: Vec<u32>,
}

impl Default for Cases {
    fn default() -> Self {
        Cases {
            track: "asylum".into(),
            phases: ["intake", "hearing", "intention", "view", "decision"]
                .map(String::from)
                .to_vec(),
            hearing_phase: "hearing".into(),
            phase_effort: vec![0.15, 0.3, 0.25, 0.1, 0.2],
            decision_period_days: 182,
            locations: vec!["ter-apel".into()],
            initial_open: 0.0,
            initial_age_days: vec![0, 90],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inflow {
    pub per_week: f64,
    pub ramp: Vec<RampPoint>,
}

impl Default for Inflow {
    fn default() -> Self {
        Inflow {
            per_week: 100.0,
            ramp: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RampPoint {
    pub day: u32,
    pub per_week: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaffGroup {
    pub name: String,
    pub role: String,
    pub count: f64,
    pub experienced: bool,
    pub contract: String,
    pub join_day: u32,
    pub join_over_days: u32,
    pub contract_days: u32,
    pub contract_jitter_days: u32,
    pub stay_share: f64,
    pub promote: bool,
}

impl Default for StaffGroup {
    fn default() -> Self {
        StaffGroup {
            name: String::new(),
            role: "caseworker".into(),
            count: 0.0,
            experienced: true,
            contract: "permanent".into(),
            join_day: 0,
            join_over_days: 0,
            contract_days: 0,
            contract_jitter_days: 0,
            stay_share: 0.0,
            promote: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Productivity {
    pub caseworker: f64,
    pub mentor: f64,
    pub decision_officer: f64,
    pub trainee_start: f64,
    pub trainee_end: f64,
    pub ramp_days: u32,
    pub experienced_after_days: u32,
    pub experienced_after_jitter_days: u32,
    pub daily_variation: f64,
}

impl Default for Productivity {
    fn default() -> Self {
        Productivity {
            caseworker: 0.5,
            mentor: 0.2,
            decision_officer: 0.3,
            trainee_start: 0.1,
            trainee_end: 0.4,
            ramp_days: 180,
            experienced_after_days: 270,
            experienced_after_jitter_days: 45,
            daily_variation: 0.3,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    pub cases_in_hand: f64,
    pub cases_in_hand_under_pressure: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            cases_in_hand: 6.0,
            cases_in_hand_under_pressure: 6.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pressure {
    pub free_backlog_days: f64,
    pub full_backlog_days: f64,
}

impl Default for Pressure {
    fn default() -> Self {
        Pressure {
            free_backlog_days: 90.0,
            full_backlog_days: 365.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mentoring {
    pub assign_mentors: bool,
    pub rebalance: bool,
    /// Mentees a mentor takes on at most (0: no limit). A newcomer who finds every mentor full
    /// waits unmentored until one has room (a mentee becomes experienced or leaves, or new mentors
    /// arrive).
    pub max_mentees: u32,
}

impl Default for Mentoring {
    fn default() -> Self {
        Mentoring {
            assign_mentors: true,
            rebalance: true,
            max_mentees: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hearings {
    pub cancel_share: f64,
    pub cancel_share_under_pressure: f64,
    pub reschedule_days: u32,
    pub retry_effort: f64,
    pub reasons: Vec<String>,
}

impl Default for Hearings {
    fn default() -> Self {
        Hearings {
            cancel_share: 0.05,
            cancel_share_under_pressure: 0.05,
            reschedule_days: 14,
            retry_effort: 0.02,
            reasons: vec!["interpreter unavailable".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Decisions {
    pub granted_share: f64,
    pub rejected_share: f64,
    pub trainee_decides_share: f64,
    pub trainee_decides_share_under_pressure: f64,
    pub benefit_of_doubt_share: f64,
    pub benefit_of_doubt_share_under_pressure: f64,
    pub without_investigation_share: f64,
    pub without_investigation_share_under_pressure: f64,
    pub reopen_share: f64,
    pub reopen_after_days: Vec<u32>,
}

impl Default for Decisions {
    fn default() -> Self {
        Decisions {
            granted_share: 0.5,
            rejected_share: 0.45,
            trainee_decides_share: 0.05,
            trainee_decides_share_under_pressure: 0.05,
            benefit_of_doubt_share: 0.01,
            benefit_of_doubt_share_under_pressure: 0.01,
            without_investigation_share: 0.1,
            without_investigation_share_under_pressure: 0.1,
            reopen_share: 0.01,
            reopen_after_days: vec![60, 240],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audits {
    pub per_week: f64,
    pub from_day: u32,
    pub until_day: u32,
    pub pass_share: f64,
    pub pass_share_under_pressure: f64,
}

impl Default for Audits {
    fn default() -> Self {
        Audits {
            per_week: 10.0,
            from_day: 0,
            until_day: u32::MAX,
            pass_share: 0.9,
            pass_share_under_pressure: 0.9,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseEvents {
    pub extension_per_year: f64,
    pub extension_by: String,
    pub suspension_per_year: f64,
    pub suspension_days: Vec<u32>,
    pub transfer_per_year: f64,
    pub transfer_unassign_share: f64,
    pub closure_per_year: f64,
    pub close_reasons: CloseReasons,
}

impl Default for CaseEvents {
    fn default() -> Self {
        CaseEvents {
            extension_per_year: 0.02,
            extension_by: "P3M".into(),
            suspension_per_year: 0.02,
            suspension_days: vec![14, 60],
            transfer_per_year: 0.02,
            transfer_unassign_share: 0.5,
            closure_per_year: 0.03,
            close_reasons: CloseReasons::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloseReasons {
    pub withdrawn: f64,
    pub transferred_out: f64,
    pub merged: f64,
    pub other: f64,
}

impl Default for CloseReasons {
    fn default() -> Self {
        CloseReasons {
            withdrawn: 0.7,
            transferred_out: 0.15,
            merged: 0.1,
            other: 0.05,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Attrition {
    pub leave_per_year: f64,
    pub replace_leavers: bool,
    pub replace_after_days: u32,
}

impl Default for Attrition {
    fn default() -> Self {
        Attrition {
            leave_per_year: 0.05,
            replace_leavers: true,
            replace_after_days: 30,
        }
    }
}

/// Why a scenario cannot be used. Each message names the file or the parameter.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A parameter out of range, inconsistent or of the wrong type (`problem` names it).
    #[error("scenario {scenario}: {problem}")]
    Invalid { scenario: String, problem: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A scenario file that does not parse or validate.
    #[error("{path}: {problem}")]
    InFile {
        path: PathBuf,
        problem: Box<ScenarioError>,
    },
    #[error(
        "no scenario {name:?}: not a file, not in config/scenarios/, not one of the built-in {builtin}"
    )]
    Unknown { name: String, builtin: String },
}

/// A problem `validate` finds; `from_toml` names the scenario.
fn invalid(problem: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        scenario: String::new(),
        problem: problem.into(),
    }
}

/// The roles the simulator knows how to play (they must also be in the daemon's `workforce.roles`).
pub const ROLES: [&str; 3] = ["caseworker", "mentor", "decision_officer"];

impl Scenario {
    /// Parses and validates scenario TOML; `name` becomes part of every generated id.
    pub fn from_toml(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let source = ::config::File::from_str(text, ::config::FileFormat::Toml);
        let mut scenario: Scenario = ::config::Config::builder()
            .add_source(source)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ScenarioError::Invalid {
                scenario: name.to_owned(),
                problem: e.to_string(),
            })?;
        scenario.name = name.to_owned();
        scenario.validate().map_err(|e| match e {
            ScenarioError::Invalid { problem, .. } => ScenarioError::Invalid {
                scenario: name.to_owned(),
                problem,
            },
            other => other,
        })?;
        Ok(scenario)
    }

    /// A shipped scenario by name (`steady`, `taskforce`, `scale`), as embedded in the binary.
    pub fn builtin(name: &str) -> Option<Scenario> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Scenario::from_toml(n, text).expect("shipped scenarios are valid"))
    }

    /// Resolves `name_or_path`: an existing file; else `config/scenarios/NAME.toml` in the working
    /// directory, then next to the binary; else the built-in scenario of that name.
    pub fn resolve(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        let direct = Path::new(name_or_path);
        let mut candidates: Vec<PathBuf> = Vec::new();
        if direct.extension().is_some_and(|e| e == "toml") || name_or_path.contains('/') {
            candidates.push(direct.to_path_buf());
        } else {
            let file = format!("{name_or_path}.toml");
            candidates.push(Path::new("config/scenarios").join(&file));
            if let Some(dir) = std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                candidates.push(dir.join("config/scenarios").join(&file));
            }
        }
        for path in candidates {
            if path.is_file() {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ScenarioError::Read {
                        path: path.clone(),
                        source,
                    })?;
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("scenario");
                return Scenario::from_toml(stem, &text).map_err(|e| ScenarioError::InFile {
                    path: path.clone(),
                    problem: Box::new(e),
                });
            }
        }
        if let Some(scenario) = Scenario::builtin(name_or_path) {
            return Ok(scenario);
        }
        Err(ScenarioError::Unknown {
            name: name_or_path.to_owned(),
            builtin: BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Checks ranges and cross-references; every error names the parameter.
    fn validate(&self) -> Result<(), ScenarioError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 40
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(invalid(format!(
                "the scenario name {:?} must be 1-40 characters of a-z, 0-9, _ and -",
                self.name
            )));
        }
        crate::simulate::time::parse_instant(&self.calendar.start)
            .map_err(|e| invalid(format!("calendar.start: {e}")))?;
        for (i, a) in self.target.announcements.iter().enumerate() {
            if !a.announced_by.is_empty() {
                check_text(
                    &a.announced_by,
                    &format!("target.announcements[{i}].announced_by"),
                )?;
            }
            if a.note.len() > crate::core::event::MAX_NOTE_BYTES {
                return Err(invalid(format!(
                    "target.announcements[{i}].note: at most {} bytes",
                    crate::core::event::MAX_NOTE_BYTES
                )));
            }
        }
        if self.calendar.days == 0 {
            return Err(invalid("calendar.days: must be at least 1"));
        }
        let c = &self.cases;
        check_text(&c.track, "cases.track")?;
        if c.phases.is_empty() {
            return Err(invalid("cases.phases: at least one phase"));
        }
        for (i, p) in c.phases.iter().enumerate() {
            check_text(p, &format!("cases.phases[{i}]"))?;
        }
        if !c.phases.contains(&c.hearing_phase) {
            return Err(invalid(format!(
                "cases.hearing_phase: {:?} is not one of cases.phases",
                c.hearing_phase
            )));
        }
        if c.phase_effort.len() != c.phases.len() {
            return Err(invalid(format!(
                "cases.phase_effort: {} values for {} phases",
                c.phase_effort.len(),
                c.phases.len()
            )));
        }
        if c.phase_effort.iter().any(|e| !(*e > 0.0 && *e <= 10.0)) {
            return Err(invalid(
                "cases.phase_effort: every value must be above 0 and at most 10",
            ));
        }
        if c.locations.is_empty() {
            return Err(invalid("cases.locations: at least one location"));
        }
        for (i, l) in c.locations.iter().enumerate() {
            check_text(l, &format!("cases.locations[{i}]"))?;
        }
        nonneg(c.initial_open, "cases.initial_open")?;
        range(&c.initial_age_days, "cases.initial_age_days")?;
        nonneg(self.inflow.per_week, "inflow.per_week")?;
        let mut last = 0;
        for (i, point) in self.inflow.ramp.iter().enumerate() {
            nonneg(point.per_week, &format!("inflow.ramp[{i}].per_week"))?;
            if i > 0 && point.day <= last {
                return Err(invalid(format!("inflow.ramp[{i}].day: days must increase")));
            }
            last = point.day;
        }
        for (i, g) in self.staff.iter().enumerate() {
            let key = format!("staff[{i}]");
            if !ROLES.contains(&g.role.as_str()) {
                return Err(invalid(format!(
                    "{key}.role: {:?} is not one of {}",
                    g.role,
                    ROLES.join(", ")
                )));
            }
            if Contract::parse(&g.contract).is_none() {
                return Err(invalid(format!(
                    "{key}.contract: {:?} is not \"permanent\" or \"temporary\"",
                    g.contract
                )));
            }
            nonneg(g.count, &format!("{key}.count"))?;
            share(g.stay_share, &format!("{key}.stay_share"))?;
            if g.promote && g.role == "caseworker" {
                return Err(invalid(format!(
                    "{key}.promote: caseworkers are promoted to another role, not to caseworker"
                )));
            }
        }
        let p = &self.productivity;
        for (value, key) in [
            (p.caseworker, "productivity.caseworker"),
            (p.mentor, "productivity.mentor"),
            (p.decision_officer, "productivity.decision_officer"),
            (p.trainee_start, "productivity.trainee_start"),
            (p.trainee_end, "productivity.trainee_end"),
        ] {
            nonneg(value, key)?;
        }
        share(p.daily_variation, "productivity.daily_variation")?;
        nonneg(self.workload.cases_in_hand, "workload.cases_in_hand")?;
        nonneg(
            self.workload.cases_in_hand_under_pressure,
            "workload.cases_in_hand_under_pressure",
        )?;
        if !(self.pressure.full_backlog_days > self.pressure.free_backlog_days
            && self.pressure.free_backlog_days >= 0.0)
        {
            return Err(invalid(
                "pressure: full_backlog_days must be above free_backlog_days, both at least 0",
            ));
        }
        let h = &self.hearings;
        share(h.cancel_share, "hearings.cancel_share")?;
        share(
            h.cancel_share_under_pressure,
            "hearings.cancel_share_under_pressure",
        )?;
        nonneg(h.retry_effort, "hearings.retry_effort")?;
        if h.reasons.is_empty() {
            return Err(invalid("hearings.reasons: at least one reason"));
        }
        let d = &self.decisions;
        for (value, key) in [
            (d.granted_share, "decisions.granted_share"),
            (d.rejected_share, "decisions.rejected_share"),
            (d.trainee_decides_share, "decisions.trainee_decides_share"),
            (
                d.trainee_decides_share_under_pressure,
                "decisions.trainee_decides_share_under_pressure",
            ),
            (d.benefit_of_doubt_share, "decisions.benefit_of_doubt_share"),
            (
                d.benefit_of_doubt_share_under_pressure,
                "decisions.benefit_of_doubt_share_under_pressure",
            ),
            (
                d.without_investigation_share,
                "decisions.without_investigation_share",
            ),
            (
                d.without_investigation_share_under_pressure,
                "decisions.without_investigation_share_under_pressure",
            ),
            (d.reopen_share, "decisions.reopen_share"),
        ] {
            share(value, key)?;
        }
        if d.granted_share + d.rejected_share > 1.0 {
            return Err(invalid(
                "decisions: granted_share + rejected_share must be at most 1",
            ));
        }
        range(&d.reopen_after_days, "decisions.reopen_after_days")?;
        if d.reopen_after_days[0] == 0 {
            return Err(invalid("decisions.reopen_after_days: at least 1 day"));
        }
        let a = &self.audits;
        nonneg(a.per_week, "audits.per_week")?;
        share(a.pass_share, "audits.pass_share")?;
        share(
            a.pass_share_under_pressure,
            "audits.pass_share_under_pressure",
        )?;
        let e = &self.case_events;
        for (value, key) in [
            (e.extension_per_year, "case_events.extension_per_year"),
            (e.suspension_per_year, "case_events.suspension_per_year"),
            (e.transfer_per_year, "case_events.transfer_per_year"),
            (e.closure_per_year, "case_events.closure_per_year"),
        ] {
            nonneg(value, key)?;
        }
        share(
            e.transfer_unassign_share,
            "case_events.transfer_unassign_share",
        )?;
        crate::simulate::time::approx_span_seconds(&e.extension_by)
            .map_err(|m| invalid(format!("case_events.extension_by: {m}")))?;
        range(&e.suspension_days, "case_events.suspension_days")?;
        if e.suspension_days[0] == 0 {
            return Err(invalid("case_events.suspension_days: at least 1 day"));
        }
        let r = &e.close_reasons;
        for (value, key) in [
            (r.withdrawn, "withdrawn"),
            (r.transferred_out, "transferred_out"),
            (r.merged, "merged"),
            (r.other, "other"),
        ] {
            nonneg(value, &format!("case_events.close_reasons.{key}"))?;
        }
        nonneg(self.attrition.leave_per_year, "attrition.leave_per_year")?;
        Ok(())
    }

    /// Cases per week arriving on day `day` (piecewise linear through the ramp points, starting
    /// from `inflow.per_week` at day 0, constant after the last point).
    pub fn inflow_per_week(&self, day: u32) -> f64 {
        let mut prev = (0u32, self.inflow.per_week);
        for point in &self.inflow.ramp {
            if day < point.day {
                let span = f64::from(point.day - prev.0);
                let x = f64::from(day - prev.0) / span;
                return prev.1 + (point.per_week - prev.1) * x;
            }
            prev = (point.day, point.per_week);
        }
        prev.1
    }

    /// Cases the scenario registers over its nominal length: the stock plus the inflow.
    pub fn nominal_cases(&self) -> f64 {
        self.cases.initial_open
            + (0..self.calendar.days)
                .map(|d| self.inflow_per_week(d) / 7.0)
                .sum::<f64>()
    }

    /// Employees the scenario hires (promotions move existing staff and do not count).
    pub fn nominal_employees(&self) -> f64 {
        self.staff
            .iter()
            .filter(|g| !g.promote)
            .map(|g| g.count)
            .sum()
    }
}

fn check_text(value: &str, key: &str) -> Result<(), ScenarioError> {
    if value.is_empty() || value.len() > MAX_TEXT_BYTES {
        return Err(invalid(format!(
            "{key}: must be 1 to {MAX_TEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

fn nonneg(value: f64, key: &str) -> Result<(), ScenarioError> {
    if !(value >= 0.0 && value.is_finite()) {
        return Err(invalid(format!(
            "{key}: must be a number at least 0, got {value}"
        )));
    }
    Ok(())
}

fn share(value: f64, key: &str) -> Result<(), ScenarioError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(invalid(format!(
            "{key}: must be a share from 0 to 1, got {value}"
        )));
    }
    Ok(())
}

fn range(values: &[u32], key: &str) -> Result<(), ScenarioError> {
    if values.len() != 2 || values[0] > values[1] {
        return Err(invalid(format!(
            "{key}: must be [low, high] with low <= high"
        )));
    }
    Ok(())
}
