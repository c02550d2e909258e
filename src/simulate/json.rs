//! Writes generated events as CloudEvents JSON lines (docs/events.md), by hand: the shapes are fixed, the
//! ids are ASCII, and every scenario-provided string is JSON-escaped once up front.

use std::fmt::Write;

use super::model::{CompactEvent, Role};
use super::scenario::Scenario;
use super::time::push_rfc3339;
use crate::core::event::{CloseReason, Contract, Outcome};

pub(crate) struct Formatter {
    /// `{scenario}-{seed}`: the prefix of event, case and employee ids.
    prefix: String,
    track: String,
    locations: Vec<String>,
    phases: Vec<String>,
    reasons: Vec<String>,
    extension_by: String,
    /// The `data` of each announcement, as JSON object members.
    announcements: Vec<String>,
    /// The `since` of the staff there before day 0: a year before it.
    existing_since: String,
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Formatter {
    /// `from`: the start of the simulated history (day 0), in Unix seconds.
    pub(crate) fn new(scenario: &Scenario, seed: u64, from: i64) -> Formatter {
        Formatter {
            prefix: format!("{}-{seed}", scenario.name),
            track: quoted(&scenario.cases.track),
            locations: scenario.cases.locations.iter().map(|l| quoted(l)).collect(),
            phases: scenario.cases.phases.iter().map(|p| quoted(p)).collect(),
            reasons: scenario
                .hearings
                .reasons
                .iter()
                .map(|r| quoted(r))
                .collect(),
            extension_by: quoted(&scenario.case_events.extension_by),
            existing_since: {
                let mut since = String::new();
                push_rfc3339(&mut since, from - 365 * crate::simulate::time::DAY);
                since
            },
            announcements: scenario
                .target
                .announcements
                .iter()
                .map(|a| {
                    let mut data = format!(
                        "\"target\":\"backlog\",\"track\":{},\"clear_by\":\"",
                        quoted(&scenario.cases.track)
                    );
                    push_rfc3339(
                        &mut data,
                        from + i64::from(a.clear_by_days) * crate::simulate::time::DAY,
                    );
                    data.push('"');
                    if !a.announced_by.is_empty() {
                        let _ = write!(data, ",\"announced_by\":{}", quoted(&a.announced_by));
                    }
                    if !a.note.is_empty() {
                        let _ = write!(data, ",\"note\":{}", quoted(&a.note));
                    }
                    data
                })
                .collect(),
        }
    }

    fn case(&self, out: &mut String, key: &str, n: u64) {
        let _ = write!(out, "\"{key}\":\"{}-c{n}\"", self.prefix);
    }

    fn employee(&self, out: &mut String, key: &str, index: u32) {
        let _ = write!(out, "\"{key}\":\"{}-e{:04}\"", self.prefix, index + 1);
    }

    /// The JSON line (without newline) of event number `n` at `time` (Unix seconds).
    pub(crate) fn line(&self, n: u64, time: i64, event: &CompactEvent) -> String {
        let mut s = String::with_capacity(240);
        let _ = write!(
            s,
            "{{\"specversion\":\"1.0\",\"id\":\"{}-{n}\",\"type\":\"{}\",\"source\":\"backlogd-simulate\",\"time\":\"",
            self.prefix,
            event.event_type().as_str()
        );
        push_rfc3339(&mut s, time);
        s.push_str("\",\"data\":{");
        match *event {
            CompactEvent::Registered {
                case,
                received,
                location,
            } => {
                self.case(&mut s, "case", case);
                let _ = write!(s, ",\"track\":{}", self.track);
                if let Some(at) = received {
                    s.push_str(",\"received_at\":\"");
                    push_rfc3339(&mut s, at);
                    s.push('"');
                }
                let _ = write!(s, ",\"location\":{}", self.locations[usize::from(location)]);
            }
            CompactEvent::Assigned { case, employee } => {
                self.case(&mut s, "case", case);
                s.push(',');
                self.employee(&mut s, "employee", employee);
            }
            CompactEvent::Unassigned { case }
            | CompactEvent::HearingHeld { case }
            | CompactEvent::Suspended { case }
            | CompactEvent::Resumed { case }
            | CompactEvent::Reopened { case } => self.case(&mut s, "case", case),
            CompactEvent::Phase { case, phase } => {
                self.case(&mut s, "case", case);
                let _ = write!(s, ",\"phase\":{}", self.phases[usize::from(phase)]);
            }
            CompactEvent::HearingCancelled { case, reason } => {
                self.case(&mut s, "case", case);
                let _ = write!(s, ",\"reason\":{}", self.reasons[usize::from(reason)]);
            }
            CompactEvent::Extended { case } => {
                self.case(&mut s, "case", case);
                let _ = write!(s, ",\"by\":{}", self.extension_by);
            }
            CompactEvent::Transferred { case, location } => {
                self.case(&mut s, "case", case);
                let _ = write!(s, ",\"location\":{}", self.locations[usize::from(location)]);
            }
            CompactEvent::Decided {
                case,
                outcome,
                by,
                benefit_of_doubt,
                investigation,
            } => {
                self.case(&mut s, "case", case);
                let _ = write!(
                    s,
                    ",\"outcome\":\"{}\",",
                    Outcome::NAMES[usize::from(outcome)]
                );
                self.employee(&mut s, "decided_by", by);
                if benefit_of_doubt {
                    s.push_str(",\"basis\":\"benefit_of_doubt\"");
                }
                let _ = write!(s, ",\"additional_investigation\":{investigation}");
            }
            CompactEvent::Closed { case, reason } => {
                self.case(&mut s, "case", case);
                let _ = write!(
                    s,
                    ",\"reason\":\"{}\"",
                    CloseReason::NAMES[usize::from(reason)]
                );
            }
            CompactEvent::Joined {
                employee,
                role,
                experienced,
                temporary,
                location,
                existing,
            } => {
                self.employee(&mut s, "employee", employee);
                let _ = write!(
                    s,
                    ",\"role\":\"{}\",\"experienced\":{experienced},\"contract\":\"{}\",\"location\":{}",
                    role.as_str(),
                    if temporary {
                        Contract::Temporary
                    } else {
                        Contract::Permanent
                    },
                    self.locations[usize::from(location)]
                );
                if existing {
                    let _ = write!(s, ",\"since\":\"{}\"", self.existing_since);
                }
            }
            CompactEvent::BecameExperienced { employee } => {
                self.employee(&mut s, "employee", employee);
                s.push_str(",\"experienced\":true");
            }
            CompactEvent::RoleChanged { employee, role } => {
                self.employee(&mut s, "employee", employee);
                let _ = write!(s, ",\"role\":\"{}\"", Role::as_str(role));
            }
            CompactEvent::MadePermanent { employee } => {
                self.employee(&mut s, "employee", employee);
                let _ = write!(s, ",\"contract\":\"{}\"", Contract::Permanent);
            }
            CompactEvent::Left { employee } => self.employee(&mut s, "employee", employee),
            CompactEvent::MentorAssigned { mentor, mentee } => {
                self.employee(&mut s, "mentor", mentor);
                s.push(',');
                self.employee(&mut s, "mentee", mentee);
            }
            CompactEvent::MentorUnassigned { mentee } => self.employee(&mut s, "mentee", mentee),
            CompactEvent::Audit { passed, case } => {
                let _ = write!(s, "\"passed\":{passed}");
                if let Some(case) = case {
                    s.push(',');
                    self.case(&mut s, "case", case);
                }
            }
            CompactEvent::TargetAnnounced { index } => {
                if let Some(data) = self.announcements.get(usize::from(index)) {
                    s.push_str(data);
                }
            }
        }
        s.push_str("}}");
        s
    }
}
