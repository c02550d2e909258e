//! The workforce: hiring and promotions, trainees becoming experienced, mentoring, capacity and
//! the production pressure (slot C), and employees leaving (slot G).

use super::{
    CompactEvent, Cursor, Employee, NONE, Pending, Role, Scheduled, Sim, lerp, remove_item,
};

impl Sim {
    pub(super) fn capacity(&self, employee: u32, day: u32) -> f64 {
        let emp = &self.employees[employee as usize];
        let productivity = &self.scenario.productivity;
        if emp.experienced {
            match emp.role {
                Role::Caseworker => productivity.caseworker,
                Role::Mentor => productivity.mentor,
                Role::DecisionOfficer => productivity.decision_officer,
            }
        } else {
            let ramp_progress = f64::from(day.saturating_sub(emp.joined_day))
                / f64::from(productivity.ramp_days.max(1));
            lerp(
                productivity.trainee_start,
                productivity.trainee_end,
                ramp_progress.min(1.0),
            )
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        day: u32,
        role: Role,
        experienced: bool,
        temporary: bool,
        group: u16,
    ) {
        let employee = self.employees.len() as u32;
        let location = (employee as usize % self.scenario.cases.locations.len()) as u16;
        self.employees.push(Employee {
            role,
            experienced,
            temporary,
            active: true,
            group,
            joined_day: day,
            active_pos: self.active.len() as u32,
            role_pos: self.by_role[role as usize].len() as u32,
            mentor: NONE,
            cases: Vec::new(),
            mentees: Vec::new(),
        });
        self.active.push(employee);
        self.by_role[role as usize].push(employee);
        let time = cursor.next(1);
        self.emit(
            out,
            time,
            CompactEvent::Joined {
                employee,
                role,
                experienced,
                temporary,
                location,
                existing: day == 0 && experienced,
            },
        );
        if let Some(staff_group) = self.scenario.staff.get(usize::from(group))
            && temporary
            && staff_group.contract_days > 0
        {
            let (days, jitter) = (staff_group.contract_days, staff_group.contract_jitter_days);
            let end = day
                + self
                    .rng
                    .between(days.saturating_sub(jitter), days + jitter)
                    .max(1);
            self.schedule(end, Scheduled::ContractEnd(employee));
        }
        if !experienced {
            let productivity = &self.scenario.productivity;
            let (after, jitter) = (
                productivity.experienced_after_days,
                productivity.experienced_after_jitter_days,
            );
            let at = day
                + self
                    .rng
                    .between(after.saturating_sub(jitter), after + jitter)
                    .max(1);
            self.schedule(at, Scheduled::Experienced(employee));
            if self.scenario.mentoring.assign_mentors {
                match self.least_loaded_mentor() {
                    Some(mentor) => {
                        self.set_mentor(employee, mentor);
                        let time = cursor.next(1);
                        self.emit(
                            out,
                            time,
                            CompactEvent::MentorAssigned {
                                mentor,
                                mentee: employee,
                            },
                        );
                    }
                    None => self.unmentored.push(employee),
                }
            }
        }
    }

    /// Promotes a random experienced caseworker to `role`; false when there is none.
    pub(super) fn promote(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        role: Role,
    ) -> bool {
        let pool = Role::Caseworker as usize;
        for _ in 0..64 {
            if self.by_role[pool].is_empty() {
                return false;
            }
            let employee = self.by_role[pool][self.rng.index(self.by_role[pool].len())];
            if !self.employees[employee as usize].experienced {
                continue;
            }
            self.remove_from_role(employee);
            let emp = &mut self.employees[employee as usize];
            emp.role = role;
            emp.role_pos = self.by_role[role as usize].len() as u32;
            self.by_role[role as usize].push(employee);
            let time = cursor.next(1);
            self.emit(out, time, CompactEvent::RoleChanged { employee, role });
            return true;
        }
        false
    }

    pub(super) fn become_experienced(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        employee: u32,
    ) {
        let emp = &self.employees[employee as usize];
        if !emp.active || emp.experienced {
            return;
        }
        self.employees[employee as usize].experienced = true;
        let time = cursor.next(1);
        self.emit(out, time, CompactEvent::BecameExperienced { employee });
        if self.employees[employee as usize].mentor != NONE {
            self.clear_mentor(employee);
            let time = cursor.next(1);
            self.emit(
                out,
                time,
                CompactEvent::MentorUnassigned { mentee: employee },
            );
        }
    }

    pub(super) fn leave(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        employee: u32,
        day: u32,
        replace: bool,
    ) {
        let time = cursor.next(1 + self.rng.below(600) as i64);
        self.emit(out, time, CompactEvent::Left { employee });
        self.remove_from_role(employee);
        let pos = self.employees[employee as usize].active_pos as usize;
        self.active.swap_remove(pos);
        if let Some(&moved) = self.active.get(pos) {
            self.employees[moved as usize].active_pos = pos as u32;
        }
        let emp = &mut self.employees[employee as usize];
        emp.active = false;
        // The daemon unassigns their cases and ends their mentoring; mirror that.
        let cases = std::mem::take(&mut emp.cases);
        let mentees = std::mem::take(&mut emp.mentees);
        for &slot in cases.iter().rev() {
            self.cases[slot as usize].employee = NONE;
            self.enqueue(slot, true);
        }
        for mentee in mentees {
            self.employees[mentee as usize].mentor = NONE;
            self.unmentored.push(mentee);
        }
        self.clear_mentor(employee);
        if replace && self.scenario.attrition.replace_leavers {
            self.schedule(
                day + self.scenario.attrition.replace_after_days.max(1),
                Scheduled::Hire,
            );
        }
    }

    fn remove_from_role(&mut self, employee: u32) {
        let emp = &self.employees[employee as usize];
        let (list, pos) = (emp.role as usize, emp.role_pos as usize);
        self.by_role[list].swap_remove(pos);
        if let Some(&moved) = self.by_role[list].get(pos) {
            self.employees[moved as usize].role_pos = pos as u32;
        }
    }

    pub(super) fn update_pressure(&mut self, day: u32) {
        let capacity: f64 = self.active.iter().map(|&e| self.capacity(e, day)).sum();
        let per_day = capacity * self.working_fraction;
        let backlog_days = self.open.len() as f64 / per_day.max(0.01);
        let thresholds = &self.scenario.pressure;
        self.pressure = ((backlog_days - thresholds.free_backlog_days)
            / (thresholds.full_backlog_days - thresholds.free_backlog_days))
            .clamp(0.0, 1.0);
    }

    /// The mentor with the fewest mentees among those with room (`mentoring.max_mentees`).
    fn least_loaded_mentor(&self) -> Option<u32> {
        let max = self.scenario.mentoring.max_mentees as usize;
        self.by_role[Role::Mentor as usize]
            .iter()
            .copied()
            .filter(|&m| max == 0 || self.employees[m as usize].mentees.len() < max)
            .min_by_key(|&m| (self.employees[m as usize].mentees.len(), m))
    }

    fn clear_mentor(&mut self, mentee: u32) {
        let old = self.employees[mentee as usize].mentor;
        if old != NONE {
            remove_item(&mut self.employees[old as usize].mentees, mentee);
            self.employees[mentee as usize].mentor = NONE;
        }
    }

    fn set_mentor(&mut self, mentee: u32, mentor: u32) {
        self.clear_mentor(mentee);
        self.employees[mentee as usize].mentor = mentor;
        self.employees[mentor as usize].mentees.push(mentee);
    }

    /// Gives trainees without a mentor one, and after new mentors arrived, evens out the load.
    pub(super) fn fix_mentoring(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        mentors_added: bool,
    ) {
        if !self.scenario.mentoring.assign_mentors || self.by_role[Role::Mentor as usize].is_empty()
        {
            return;
        }
        for mentee in std::mem::take(&mut self.unmentored) {
            let emp = &self.employees[mentee as usize];
            if !emp.active || emp.experienced || emp.mentor != NONE {
                continue;
            }
            if let Some(mentor) = self.least_loaded_mentor() {
                self.set_mentor(mentee, mentor);
                let time = cursor.next(1);
                self.emit(out, time, CompactEvent::MentorAssigned { mentor, mentee });
            } else {
                // Every mentor is full: the newcomer keeps waiting.
                self.unmentored.push(mentee);
            }
        }
        if !(mentors_added && self.scenario.mentoring.rebalance) {
            return;
        }
        loop {
            let mentors = &self.by_role[Role::Mentor as usize];
            let load = |mentor: u32| self.employees[mentor as usize].mentees.len();
            let Some(most) = mentors
                .iter()
                .copied()
                .max_by_key(|&mentor| (load(mentor), std::cmp::Reverse(mentor)))
            else {
                return;
            };
            let Some(least) = self.least_loaded_mentor() else {
                return;
            };
            if load(most) <= load(least) + 1 {
                return;
            }
            let Some(&mentee) = self.employees[most as usize].mentees.last() else {
                return;
            };
            self.set_mentor(mentee, least);
            let time = cursor.next(1);
            self.emit(
                out,
                time,
                CompactEvent::MentorAssigned {
                    mentor: least,
                    mentee,
                },
            );
        }
    }
}
