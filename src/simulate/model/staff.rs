//! The workforce: hiring and promotions, trainees becoming experienced, mentoring, capacity and
//! the production pressure (slot C), and employees leaving (slot G).

use super::{Cursor, Emp, Ev, NONE, Pending, Role, Sched, Sim, lerp, remove_item};

impl Sim {
    pub(super) fn capacity(&self, e: u32, d: u32) -> f64 {
        let emp = &self.emps[e as usize];
        let p = &self.s.productivity;
        if emp.experienced {
            match emp.role {
                Role::Caseworker => p.caseworker,
                Role::Mentor => p.mentor,
                Role::DecisionOfficer => p.decision_officer,
            }
        } else {
            let x = f64::from(d.saturating_sub(emp.joined_day)) / f64::from(p.ramp_days.max(1));
            lerp(p.trainee_start, p.trainee_end, x.min(1.0))
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        d: u32,
        role: Role,
        experienced: bool,
        temporary: bool,
        group: u16,
    ) {
        let e = self.emps.len() as u32;
        let location = (e as usize % self.s.cases.locations.len()) as u16;
        self.emps.push(Emp {
            role,
            experienced,
            temporary,
            active: true,
            group,
            joined_day: d,
            active_pos: self.active.len() as u32,
            role_pos: self.by_role[role as usize].len() as u32,
            mentor: NONE,
            cases: Vec::new(),
            mentees: Vec::new(),
        });
        self.active.push(e);
        self.by_role[role as usize].push(e);
        let t = cursor.next(1);
        self.emit(
            out,
            t,
            Ev::Joined {
                employee: e,
                role,
                experienced,
                temporary,
                location,
            },
        );
        if let Some(g) = self.s.staff.get(usize::from(group))
            && temporary
            && g.contract_days > 0
        {
            let (days, jitter) = (g.contract_days, g.contract_jitter_days);
            let end = d + self
                .rng
                .between(days.saturating_sub(jitter), days + jitter)
                .max(1);
            self.schedule(end, Sched::ContractEnd(e));
        }
        if !experienced {
            let p = &self.s.productivity;
            let (after, jitter) = (p.experienced_after_days, p.experienced_after_jitter_days);
            let at = d + self
                .rng
                .between(after.saturating_sub(jitter), after + jitter)
                .max(1);
            self.schedule(at, Sched::Experienced(e));
            if self.s.mentoring.assign_mentors {
                match self.least_loaded_mentor() {
                    Some(m) => {
                        self.set_mentor(e, m);
                        let t = cursor.next(1);
                        self.emit(
                            out,
                            t,
                            Ev::MentorAssigned {
                                mentor: m,
                                mentee: e,
                            },
                        );
                    }
                    None => self.unmentored.push(e),
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
            let e = self.by_role[pool][self.rng.index(self.by_role[pool].len())];
            if !self.emps[e as usize].experienced {
                continue;
            }
            self.remove_from_role(e);
            let emp = &mut self.emps[e as usize];
            emp.role = role;
            emp.role_pos = self.by_role[role as usize].len() as u32;
            self.by_role[role as usize].push(e);
            let t = cursor.next(1);
            self.emit(out, t, Ev::RoleChanged { employee: e, role });
            return true;
        }
        false
    }

    pub(super) fn become_experienced(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        e: u32,
    ) {
        let emp = &self.emps[e as usize];
        if !emp.active || emp.experienced {
            return;
        }
        self.emps[e as usize].experienced = true;
        let t = cursor.next(1);
        self.emit(out, t, Ev::BecameExperienced { employee: e });
        if self.emps[e as usize].mentor != NONE {
            self.clear_mentor(e);
            let t = cursor.next(1);
            self.emit(out, t, Ev::MentorUnassigned { mentee: e });
        }
    }

    pub(super) fn leave(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        e: u32,
        d: u32,
        replace: bool,
    ) {
        let t = cursor.next(1 + self.rng.below(600) as i64);
        self.emit(out, t, Ev::Left { employee: e });
        self.remove_from_role(e);
        let pos = self.emps[e as usize].active_pos as usize;
        self.active.swap_remove(pos);
        if let Some(&moved) = self.active.get(pos) {
            self.emps[moved as usize].active_pos = pos as u32;
        }
        let emp = &mut self.emps[e as usize];
        emp.active = false;
        // The daemon unassigns their cases and ends their mentoring; mirror that.
        let cases = std::mem::take(&mut emp.cases);
        let mentees = std::mem::take(&mut emp.mentees);
        for &slot in cases.iter().rev() {
            self.cases[slot as usize].employee = NONE;
            self.enqueue(slot, true);
        }
        for m in mentees {
            self.emps[m as usize].mentor = NONE;
            self.unmentored.push(m);
        }
        self.clear_mentor(e);
        if replace && self.s.attrition.replace_leavers {
            self.schedule(d + self.s.attrition.replace_after_days.max(1), Sched::Hire);
        }
    }

    fn remove_from_role(&mut self, e: u32) {
        let emp = &self.emps[e as usize];
        let (list, pos) = (emp.role as usize, emp.role_pos as usize);
        self.by_role[list].swap_remove(pos);
        if let Some(&moved) = self.by_role[list].get(pos) {
            self.emps[moved as usize].role_pos = pos as u32;
        }
    }

    pub(super) fn update_pressure(&mut self, d: u32) {
        let capacity: f64 = self.active.iter().map(|&e| self.capacity(e, d)).sum();
        let per_day = capacity * self.working_fraction;
        let backlog_days = self.open.len() as f64 / per_day.max(0.01);
        let p = &self.s.pressure;
        self.pressure = ((backlog_days - p.free_backlog_days)
            / (p.full_backlog_days - p.free_backlog_days))
            .clamp(0.0, 1.0);
    }

    fn least_loaded_mentor(&self) -> Option<u32> {
        self.by_role[Role::Mentor as usize]
            .iter()
            .copied()
            .min_by_key(|&m| (self.emps[m as usize].mentees.len(), m))
    }

    fn clear_mentor(&mut self, mentee: u32) {
        let old = self.emps[mentee as usize].mentor;
        if old != NONE {
            remove_item(&mut self.emps[old as usize].mentees, mentee);
            self.emps[mentee as usize].mentor = NONE;
        }
    }

    fn set_mentor(&mut self, mentee: u32, mentor: u32) {
        self.clear_mentor(mentee);
        self.emps[mentee as usize].mentor = mentor;
        self.emps[mentor as usize].mentees.push(mentee);
    }

    /// Gives trainees without a mentor one, and after new mentors arrived, evens out the load.
    pub(super) fn fix_mentoring(
        &mut self,
        out: &mut Vec<Pending>,
        cursor: &mut Cursor,
        mentors_added: bool,
    ) {
        if !self.s.mentoring.assign_mentors || self.by_role[Role::Mentor as usize].is_empty() {
            return;
        }
        for e in std::mem::take(&mut self.unmentored) {
            let emp = &self.emps[e as usize];
            if !emp.active || emp.experienced || emp.mentor != NONE {
                continue;
            }
            if let Some(m) = self.least_loaded_mentor() {
                self.set_mentor(e, m);
                let t = cursor.next(1);
                self.emit(
                    out,
                    t,
                    Ev::MentorAssigned {
                        mentor: m,
                        mentee: e,
                    },
                );
            }
        }
        if !(mentors_added && self.s.mentoring.rebalance) {
            return;
        }
        loop {
            let mentors = &self.by_role[Role::Mentor as usize];
            let load = |m: u32| self.emps[m as usize].mentees.len();
            let Some(most) = mentors
                .iter()
                .copied()
                .max_by_key(|&m| (load(m), std::cmp::Reverse(m)))
            else {
                return;
            };
            let Some(least) = self.least_loaded_mentor() else {
                return;
            };
            if load(most) <= load(least) + 1 {
                return;
            }
            let Some(&mentee) = self.emps[most as usize].mentees.last() else {
                return;
            };
            self.set_mentor(mentee, least);
            let t = cursor.next(1);
            self.emit(
                out,
                t,
                Ev::MentorAssigned {
                    mentor: least,
                    mentee,
                },
            );
        }
    }
}
