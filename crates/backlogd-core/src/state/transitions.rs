//! The per-event-type rules of `State::apply`: validation against the state, then the change.

use jiff::Timestamp;

use super::{Case, Class, Employee, Links, NO_TIMER, NONE, State, UNKNOWN_LOCATION};
use crate::aggregates::TrackAggregates;
use crate::event::{
    Contract, EventKind, Extension, MAX_TEXT_BYTES, Outcome, RejectReason, Rejection,
};
use crate::time::{EpochNanos, SUPPORTED_RANGE, from_nanos, to_supported_nanos};

/// The fields of an `employee.joined`.
struct Joining<'a> {
    employee: &'a str,
    role: &'a str,
    experienced: bool,
    contract: Contract,
    location: Option<&'a str>,
    since: Option<Timestamp>,
}

impl State {
    pub(super) fn apply_kind(
        &mut self,
        kind: &EventKind,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        match kind {
            EventKind::CaseRegistered {
                case,
                track,
                received_at,
                location,
                deadline,
            } => self.register(
                case,
                track,
                *received_at,
                location.as_deref(),
                *deadline,
                time,
            ),
            EventKind::CaseAssigned { case, employee } => {
                let index = self.open_case(case)?;
                let employee = self.active_employee(employee, "employee")?;
                self.assign(index, employee);
                Ok(())
            }
            EventKind::CaseUnassigned { case } => {
                let index = self.open_case(case)?;
                self.assign(index, NONE);
                Ok(())
            }
            EventKind::CasePhaseChanged { case, phase } => self.change_phase(case, phase),
            EventKind::CaseHearingHeld { case } => {
                let index = self.open_case(case)?;
                self.track_of(index).hearings_held += 1;
                Ok(())
            }
            EventKind::CaseHearingCancelled { case, .. } => {
                let index = self.open_case(case)?;
                self.track_of(index).hearings_cancelled += 1;
                Ok(())
            }
            EventKind::CaseDeadlineExtended { case, extension } => {
                self.extend_deadline(case, extension)
            }
            EventKind::CaseSuspended { case } => self.suspend(case, time),
            EventKind::CaseResumed { case } => self.resume(case, time),
            EventKind::CaseTransferred { case, location } => {
                let index = self.open_case(case)?;
                self.check_text(location, "data.location")?;
                let location_id = self.location_id(location);
                self.update_open_case(index, |case| case.location = location_id);
                self.track_of(index).transfers += 1;
                Ok(())
            }
            EventKind::CaseDecided {
                case,
                outcome,
                decided_by,
                basis,
                additional_investigation,
            } => self.decide(
                case,
                *outcome,
                decided_by,
                basis.as_deref(),
                *additional_investigation,
                time,
            ),
            EventKind::CaseClosed { case, reason } => {
                let index = self.open_case(case)?;
                let (_, penalty) = self.close(index, time);
                let reason_index = reason.index();
                let aggregates = self.track_of(index);
                aggregates.closed_by_reason[reason_index] += 1;
                aggregates.penalty_incurred_cents += penalty;
                Ok(())
            }
            EventKind::CaseReopened {
                case,
                deadline,
                track,
            } => self.reopen(case, *deadline, track.as_deref(), time),
            EventKind::EmployeeJoined {
                employee,
                role,
                experienced,
                contract,
                location,
                since,
            } => self.join(
                Joining {
                    employee,
                    role,
                    experienced: *experienced,
                    contract: *contract,
                    location: location.as_deref(),
                    since: *since,
                },
                time,
            ),
            EventKind::EmployeeUpdated {
                employee,
                role,
                experienced,
                contract,
                location,
            } => self.update_employee(
                employee,
                role.as_deref(),
                *experienced,
                *contract,
                location.as_deref(),
                time,
            ),
            EventKind::EmployeeLeft { employee } => {
                let index = self.active_employee(employee, "employee")?;
                self.leave(index, time);
                Ok(())
            }
            EventKind::MentorAssigned { mentor, mentee } => {
                self.assign_mentor(mentor, mentee, time)
            }
            EventKind::MentorUnassigned { mentee } => {
                let mentee_index = self.active_employee(mentee, "mentee")?;
                let previous = self.employees[mentee_index as usize].mentor;
                self.set_mentor(mentee_index, NONE);
                if previous != NONE {
                    self.recount_capacity(previous, time);
                }
                Ok(())
            }
            EventKind::QualityAudit { passed, .. } => self.record_audit(*passed, time),
            EventKind::TargetAnnounced {
                target,
                track,
                clear_by,
                announced_by,
                note,
            } => self.announce_target(
                target,
                track.as_deref(),
                *clear_by,
                announced_by.as_deref(),
                note.as_deref(),
                time,
            ),
        }
    }

    /// The case moves to another phase.
    fn change_phase(&mut self, case: &str, phase: &str) -> Result<(), Rejection> {
        let index = self.open_case(case)?;
        let phase_id = self.settings.phase_index(phase).ok_or_else(|| {
            Rejection::new(
                RejectReason::UnknownPhase,
                format!(
                    "field `data.phase`: \"{phase}\" is not one of the configured phases ({})",
                    self.settings.phases.join(", ")
                ),
            )
        })?;
        self.update_open_case(index, |case| case.phase = phase_id);
        Ok(())
    }

    /// The deadline moves by a calendar span or to an instant.
    fn extend_deadline(&mut self, case: &str, extension: &Extension) -> Result<(), Rejection> {
        let index = self.open_case(case)?;
        let current = self.cases[index as usize].deadline;
        let new_deadline = match extension {
            Extension::By(span) => {
                let moved = self.settings.add_calendar(from_nanos(current), *span);
                to_supported_nanos(moved).ok_or_else(|| {
                    Rejection::new(
                        RejectReason::InvalidField,
                        format!(
                            "field `data.by`: \"{span}\" moves the deadline to {moved}, out of the supported range ({SUPPORTED_RANGE})"
                        ),
                    )
                })?
            }
            Extension::To(at) => self.checked_nanos(*at, "data.deadline")?,
        };
        self.update_open_case(index, |case| case.deadline = new_deadline);
        self.track_of(index).deadline_extensions += 1;
        Ok(())
    }

    /// The deadline stops; `suspended_at` remembers when.
    fn suspend(&mut self, case: &str, time: EpochNanos) -> Result<(), Rejection> {
        let index = self.open_case(case)?;
        if self.cases[index as usize].suspended {
            return Err(Rejection::new(
                RejectReason::CaseSuspended,
                format!("case \"{case}\" is already suspended"),
            ));
        }
        self.update_open_case(index, |case| {
            case.suspended = true;
            case.suspended_at = time;
        });
        Ok(())
    }

    /// The deadline moves on by the time the case was suspended.
    fn resume(&mut self, case: &str, time: EpochNanos) -> Result<(), Rejection> {
        let index = self.open_case(case)?;
        if !self.cases[index as usize].suspended {
            return Err(Rejection::new(
                RejectReason::CaseNotSuspended,
                format!("case \"{case}\" is not suspended"),
            ));
        }
        self.update_open_case(index, |case| {
            case.deadline = effective_deadline(case, time);
            case.suspended = false;
        });
        Ok(())
    }

    /// A decision: the case closes, and the decision is counted for whoever held it.
    fn decide(
        &mut self,
        case: &str,
        outcome: Outcome,
        decided_by: &str,
        basis: Option<&str>,
        additional_investigation: Option<bool>,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        let index = self.open_case(case)?;
        let decider = self.active_employee(decided_by, "decided_by")?;
        let inexperienced = !self.employees[decider as usize].experienced;
        // The work is credited to whoever holds the case; `decided_by` may only sign.
        let worker = match self.cases[index as usize].employee {
            NONE => decider,
            assigned => assigned,
        };
        self.count_decision(worker, time);
        let (overdue, penalty) = self.close(index, time);
        let outcome_index = outcome.index();
        let lead_start = self.cases[index as usize].lead_start;
        let aggregates = self.track_of(index);
        aggregates.decided_by_outcome[outcome_index] += 1;
        aggregates.penalty_incurred_cents += penalty;
        aggregates.decisions_overdue += u64::from(overdue);
        aggregates.decisions_by_inexperienced += u64::from(inexperienced);
        aggregates.decisions_benefit_of_doubt += u64::from(basis == Some("benefit_of_doubt"));
        aggregates.decisions_without_investigation +=
            u64::from(additional_investigation == Some(false));
        aggregates
            .lead_time
            .observe(time.saturating_sub(lead_start).max(0));
        Ok(())
    }

    /// Changes the given attributes of an active employee; their counts move with them.
    fn update_employee(
        &mut self,
        employee: &str,
        role: Option<&str>,
        experienced: Option<bool>,
        contract: Option<Contract>,
        location: Option<&str>,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        let index = self.active_employee(employee, "employee")?;
        let role_id = match role {
            Some(role) => Some(self.role_id(role)?),
            None => None,
        };
        if let Some(location) = location {
            self.check_text(location, "data.location")?;
        }
        self.count_employee(index, -1);
        let e = &mut self.employees[index as usize];
        if let Some(role_id) = role_id {
            e.role = role_id;
        }
        if let Some(experienced) = experienced {
            e.experienced = experienced;
        }
        if let Some(contract) = contract {
            e.contract = contract;
        }
        if let Some(location) = location {
            e.location = Some(location.into());
        }
        self.count_employee(index, 1);
        self.recount_capacity(index, time);
        Ok(())
    }

    /// The mentee gets a (new) mentor; both mentors' capacity classes are recounted.
    fn assign_mentor(
        &mut self,
        mentor: &str,
        mentee: &str,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        let mentor_index = self.active_employee(mentor, "mentor")?;
        let mentee_index = self.active_employee(mentee, "mentee")?;
        if mentor_index == mentee_index {
            return Err(Rejection::new(
                RejectReason::SameEmployee,
                format!(
                    "fields `data.mentor` and `data.mentee` are both \"{mentor}\": an employee cannot mentor themselves"
                ),
            ));
        }
        let previous = self.employees[mentee_index as usize].mentor;
        self.set_mentor(mentee_index, mentor_index);
        self.recount_capacity(mentor_index, time);
        if previous != NONE {
            self.recount_capacity(previous, time);
        }
        Ok(())
    }

    /// A quality audit, counted in the totals and the rolling window.
    fn record_audit(&mut self, passed: bool, time: EpochNanos) -> Result<(), Rejection> {
        if passed {
            self.aggregates.audits_passed += 1;
            self.audits_passed_rolling
                .add(self.quality_shape, self.now, time, 1);
        } else {
            self.aggregates.audits_failed += 1;
        }
        self.audits_rolling
            .add(self.quality_shape, self.now, time, 1);
        let last = &mut self.aggregates.last_audit_time;
        *last = Some(last.map_or(time, |t| t.max(time)));
        Ok(())
    }

    fn register(
        &mut self,
        case: &str,
        track: &str,
        received_at: Option<Timestamp>,
        location: Option<&str>,
        deadline: Option<Timestamp>,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        self.check_text(case, "data.case")?;
        if self.case_ids.get(case).is_some() {
            return Err(Rejection::new(
                RejectReason::CaseExists,
                format!("case \"{case}\" is already registered"),
            ));
        }
        if !self.case_ids.has_room_for(case) {
            return Err(Rejection::new(
                RejectReason::TooManyCases,
                format!(
                    "field `data.case`: \"{case}\" would take the case ids past {} bytes, the most one \
                     daemon holds; partition the cases over instances (docs/scaling.md)",
                    super::super::ids::MAX_ARENA_BYTES
                ),
            ));
        }
        let track_id = self.track_id(track, "data.track")?;
        if let Some(location) = location {
            self.check_text(location, "data.location")?;
        }
        let received = match received_at {
            Some(at) => self.checked_nanos(at, "data.received_at")?,
            None => time,
        };
        let deadline = match deadline {
            Some(at) => self.checked_nanos(at, "data.deadline")?,
            None => self.default_deadline(
                track_id,
                received,
                if received_at.is_some() {
                    "data.received_at"
                } else {
                    "time"
                },
            )?,
        };
        let location_id = self.location_id(location.unwrap_or(UNKNOWN_LOCATION));
        let index = self.case_ids.intern(case);
        debug_assert_eq!(index as usize, self.cases.len());
        self.cases.push(Case {
            deadline,
            lead_start: received,
            suspended_at: 0,
            timer: NO_TIMER,
            employee: NONE,
            of_employee: Links::DETACHED,
            location: location_id,
            track: track_id,
            phase: 0,
            open: true,
            suspended: false,
            class: Class::default(),
        });
        self.attach(index);
        self.track_of(index).registered += 1;
        self.inflow[usize::from(track_id)].add(self.flow_shape, self.now, time, 1);
        Ok(())
    }

    fn reopen(
        &mut self,
        case: &str,
        deadline: Option<Timestamp>,
        track: Option<&str>,
        time: EpochNanos,
    ) -> Result<(), Rejection> {
        let index = self.known_case(case)?;
        if self.cases[index as usize].open {
            return Err(Rejection::new(
                RejectReason::CaseOpen,
                format!("case \"{case}\" is open; only a closed case can be reopened"),
            ));
        }
        let track_id = match track {
            Some(track) => self.track_id(track, "data.track")?,
            None => self.cases[index as usize].track,
        };
        let deadline = match deadline {
            Some(at) => self.checked_nanos(at, "data.deadline")?,
            None => self.default_deadline(track_id, time, "time")?,
        };
        let c = &mut self.cases[index as usize];
        c.open = true;
        c.suspended = false;
        c.employee = NONE;
        c.phase = 0;
        c.track = track_id;
        c.deadline = deadline;
        c.lead_start = time;
        self.attach(index);
        self.track_of(index).reopened += 1;
        self.inflow[usize::from(track_id)].add(self.flow_shape, self.now, time, 1);
        Ok(())
    }

    /// Closes an open case at event time `time`; returns (decided after its deadline, accrued penalty
    /// in cents at `time`).
    fn close(&mut self, index: u32, time: EpochNanos) -> (bool, i64) {
        self.assign(index, NONE);
        self.detach(index);
        let case = &mut self.cases[index as usize];
        let deadline = effective_deadline(case, time);
        case.open = false;
        case.suspended = false;
        let track = usize::from(case.track);
        self.outflow[track].add(self.flow_shape, self.now, time, 1);
        let overdue = time > deadline;
        let penalty = if overdue {
            let days = self.penalty_days(track, deadline, time);
            self.settings.tracks[track].penalty.accrued_cents(days)
        } else {
            0
        };
        (overdue, penalty)
    }

    fn join(&mut self, joining: Joining<'_>, time: EpochNanos) -> Result<(), Rejection> {
        let Joining {
            employee,
            role,
            experienced,
            contract,
            location,
            since,
        } = joining;
        self.check_text(employee, "data.employee")?;
        let role_id = self.role_id(role)?;
        if let Some(location) = location {
            self.check_text(location, "data.location")?;
        }
        // A start later than the event counts from the event.
        let joined_at = match since {
            Some(since) => self.checked_nanos(since, "data.since")?.min(time),
            None => time,
        };
        let existing = self.employee_ids.get(employee).copied();
        if let Some(index) = existing
            && self.employees[index as usize].active
        {
            return Err(Rejection::new(
                RejectReason::EmployeeExists,
                format!("employee \"{employee}\" is already active"),
            ));
        }
        let mut record = Employee::new(employee, role_id, contract, experienced, location);
        record.joined_at = joined_at;
        let index = match existing {
            Some(index) => {
                self.employees[index as usize] = record;
                index
            }
            None => {
                let index = self.employees.len() as u32;
                self.employees.push(record);
                self.employee_ids.insert(employee.into(), index);
                index
            }
        };
        self.count_employee(index, 1);
        self.recount_capacity(index, time);
        Ok(())
    }

    fn leave(&mut self, index: u32, time: EpochNanos) {
        while self.employees[index as usize].first_case != NONE {
            let case = self.employees[index as usize].first_case;
            self.assign(case, NONE);
        }
        while self.employees[index as usize].first_mentee != NONE {
            let mentee = self.employees[index as usize].first_mentee;
            self.set_mentor(mentee, NONE);
        }
        let mentor = self.employees[index as usize].mentor;
        self.set_mentor(index, NONE);
        self.count_employee(index, -1);
        self.employees[index as usize].active = false;
        self.recount_capacity(index, time);
        if mentor != NONE {
            self.recount_capacity(mentor, time);
        }
    }

    /// `from` plus the track's decision period; refused naming `field` (where `from` came from)
    /// when that is out of the supported range.
    fn default_deadline(
        &self,
        track: u8,
        from: EpochNanos,
        field: &str,
    ) -> Result<EpochNanos, Rejection> {
        let track = &self.settings.tracks[usize::from(track)];
        let deadline = self
            .settings
            .add_calendar(from_nanos(from), track.decision_period);
        to_supported_nanos(deadline).ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidField,
                format!(
                    "field `{field}`: the deadline it gives ({deadline}, with the decision period {} of track {}) is out of the supported range ({SUPPORTED_RANGE}); send `data.deadline`",
                    track.decision_period, track.name
                ),
            )
        })
    }

    fn track_of(&mut self, index: u32) -> &mut TrackAggregates {
        let track = usize::from(self.cases[index as usize].track);
        &mut self.aggregates.tracks[track]
    }

    /// The id of a location name, remembered when new (whether it has a label is decided by its
    /// open cases: `locations.rs`).
    fn location_id(&mut self, name: &str) -> u16 {
        self.locations.id_or_add(name)
    }

    /// Remembers a new location name at the next id (the snapshot decoder's order).
    pub(super) fn add_location(&mut self, name: &str) -> u16 {
        self.locations.add(name)
    }

    fn known_case(&self, case: &str) -> Result<u32, Rejection> {
        self.case_ids.get(case).ok_or_else(|| {
            Rejection::new(
                RejectReason::UnknownCase,
                format!("case \"{case}\" was never registered"),
            )
        })
    }

    fn open_case(&self, case: &str) -> Result<u32, Rejection> {
        let index = self.known_case(case)?;
        if !self.cases[index as usize].open {
            return Err(Rejection::new(
                RejectReason::CaseClosed,
                format!("case \"{case}\" is closed; only case.reopened applies to it"),
            ));
        }
        Ok(index)
    }

    fn active_employee(&self, employee: &str, field: &str) -> Result<u32, Rejection> {
        match self.employee_ids.get(employee) {
            Some(&index) if self.employees[index as usize].active => Ok(index),
            Some(_) => Err(Rejection::new(
                RejectReason::UnknownEmployee,
                format!("field `data.{field}`: employee \"{employee}\" has left and is not active"),
            )),
            None => Err(Rejection::new(
                RejectReason::UnknownEmployee,
                format!("field `data.{field}`: employee \"{employee}\" has not joined"),
            )),
        }
    }

    pub(super) fn track_id(&self, track: &str, field: &str) -> Result<u8, Rejection> {
        self.settings.track_index(track).ok_or_else(|| {
            let known: Vec<&str> = self
                .settings
                .tracks
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            Rejection::new(
                RejectReason::UnknownTrack,
                format!(
                    "field `{field}`: track \"{track}\" is not configured (configured: {})",
                    known.join(", ")
                ),
            )
        })
    }

    fn role_id(&self, role: &str) -> Result<u8, Rejection> {
        self.settings.role_index(role).ok_or_else(|| {
            Rejection::new(
                RejectReason::UnknownRole,
                format!(
                    "field `data.role`: \"{role}\" is not one of the configured roles ({})",
                    self.settings.roles.join(", ")
                ),
            )
        })
    }

    pub(super) fn check_text(&self, value: &str, field: &str) -> Result<(), Rejection> {
        if value.is_empty() || value.len() > MAX_TEXT_BYTES {
            return Err(Rejection::new(
                RejectReason::InvalidField,
                format!(
                    "field `{field}`: must be 1 to {MAX_TEXT_BYTES} bytes, got {}",
                    value.len()
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn checked_nanos(
        &self,
        at: Timestamp,
        field: &str,
    ) -> Result<EpochNanos, Rejection> {
        to_supported_nanos(at).ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidField,
                format!("field `{field}`: {at} is out of the supported range ({SUPPORTED_RANGE})"),
            )
        })
    }
}

/// The deadline of a case as of `time`: a suspended case's deadline moves later by the time spent
/// suspended so far.
fn effective_deadline(case: &Case, time: EpochNanos) -> EpochNanos {
    if case.suspended {
        case.deadline
            .saturating_add(time.saturating_sub(case.suspended_at).max(0))
    } else {
        case.deadline
    }
}
