//! The snapshot encoding of a `State`: a compact, versioned byte format (no serde, no IO). The store
//! keeps these bytes in SQLite; decoding rebuilds every index and gauge from the cases themselves.
//!
//! Names (tracks, phases, roles) are stored as text and mapped to the ids of the current settings on
//! load, so reordering the configuration is harmless; a snapshot that names a track, phase or role
//! the configuration no longer has is refused with a message saying which.

use super::links::{Links, case_links, list_push};
use super::{Announcement, Case, Class, Employee, NO_TIMER, NONE, State, TargetHistory};
use crate::aggregates::{Capacity, LEAD_TIME_BUCKET_DAYS, TrackAggregates};
use crate::event::{CloseReason, Contract, Outcome};
use crate::ids::{Dedup, DedupExport};
use crate::presence::PresenceIntegral;
use crate::rolling::{RollingCounter, RollingShape};
use crate::settings::CoreSettings;

/// The format written. Version 3 added the events ahead of `now` of each rolling counter; version 4
/// remembers event ids under keyed 128-bit hashes, with the key (versions 2 and 3 stored unkeyed
/// 64-bit hashes, which load as the legacy generation of `Dedup`); version 5 added, at the end, the
/// history of announced targets and the capacity figures (employees' join times, presence and
/// decisions per capacity class); older versions load with no history, every employee present
/// throughout the window, and no decisions in it; version 6 added, at the end, the daily history
/// (older versions load without one); version 7 added to each history row the decisions in the
/// forecast window and those by new staff (rows of version 6 load with none); version 8 added to
/// the history the windows each row was counted over (rows of older versions load with those of
/// the settings they are decoded under); version 9 added, at the end, each target's count of
/// announcements no longer kept (older versions load with none).
const MAGIC: &[u8; 8] = b"BLGDSNP9";
/// Formats still read, with their version number.
const READ_MAGICS: [(&[u8; 8], u32); 8] = [
    (b"BLGDSNP2", 2),
    (b"BLGDSNP3", 3),
    (b"BLGDSNP4", 4),
    (b"BLGDSNP5", 5),
    (b"BLGDSNP6", 6),
    (b"BLGDSNP7", 7),
    (b"BLGDSNP8", 8),
    (MAGIC, 9),
];
/// The version `MAGIC` stands for.
const VERSION: u32 = 9;

/// Why `State::decode_snapshot` refused some bytes. The messages name what was wrong and, for
/// damaged bytes, where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a backlogd snapshot of a known version (bad magic)")]
    BadMagic,
    #[error("truncated at byte {at}")]
    Truncated { at: usize },
    #[error("bad text at byte {at}")]
    BadText { at: usize },
    #[error("expected a positive bucket width, got {0}")]
    BadBucketWidth(i64),
    #[error("{count} {what} at byte {at}: more than the bytes left or the format allows")]
    BadCount {
        count: usize,
        what: &'static str,
        at: usize,
    },
    #[error("list of {count} records at byte {at} is longer than the bytes left")]
    BadListLength { count: u64, at: usize },
    /// A track, phase or role the current configuration does not have.
    #[error("the snapshot uses {what} \"{name}\", which the configuration no longer has")]
    UnknownName { what: &'static str, name: String },
    /// A location, case, employee, track, phase or role listed twice.
    #[error("{what} \"{name}\" appears twice")]
    Duplicate { what: &'static str, name: String },
    #[error("case \"{case}\" has an unknown location id")]
    UnknownLocation { case: String },
    #[error("employee \"{employee}\" is its own mentor")]
    OwnMentor { employee: String },
    /// A reference to an id that the snapshot does not define (the text says which).
    #[error("{0}")]
    UnknownId(&'static str),
    #[error("{0} unexpected bytes after the end")]
    TrailingBytes(usize),
    /// A stored counter at or above `MAX_COUNTER`: no daemon counts that far, so the bytes are
    /// damaged (and the next increment could wrap it).
    #[error(
        "the counter {what} holds {value}, at or above 2^62, more than any daemon can count: the snapshot is damaged"
    )]
    ImpossibleCounter { what: &'static str, value: u64 },
}

/// Every stored counter is below this (2^62): at a billion events a second a counter takes 146
/// years to get there, so a snapshot that holds more is damaged, and a counter below it cannot
/// wrap at any increment a daemon makes.
pub const MAX_COUNTER: u64 = 1 << 62;

/// `value` if it is a possible counter, else `ImpossibleCounter` naming it.
fn possible(what: &'static str, value: u64) -> Result<u64, SnapshotError> {
    if value < MAX_COUNTER {
        Ok(value)
    } else {
        Err(SnapshotError::ImpossibleCounter { what, value })
    }
}

impl State {
    /// Encodes the whole state (cases, employees, counters, remembered event ids).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        self.encode(false, VERSION)
    }

    /// The encoding of format version 4 (without target history and capacity), for the tests that
    /// older snapshots still load.
    #[cfg(test)]
    pub(crate) fn encode_snapshot_v4(&self) -> Vec<u8> {
        self.encode(false, 4)
    }

    /// The encoding of format version 6 (history rows without their decisions), for the test that
    /// such snapshots still load.
    #[cfg(test)]
    pub(crate) fn encode_snapshot_v6(&self) -> Vec<u8> {
        self.encode(false, 6)
    }

    /// The encoding of format version 7 (history rows without their basis), for the test that
    /// such snapshots still load.
    #[cfg(test)]
    pub(crate) fn encode_snapshot_v7(&self) -> Vec<u8> {
        self.encode(false, 7)
    }

    /// The encoding of format version 8 (targets without their count of forgotten announcements),
    /// for the test that such snapshots still load.
    #[cfg(test)]
    pub(crate) fn encode_snapshot_v8(&self) -> Vec<u8> {
        self.encode(false, 8)
    }

    /// The encoding with the remembered ids sorted: equal states give equal bytes (the hash sets
    /// iterate in an order that depends on their history). For tests; sorting costs O(n log n).
    #[cfg(test)]
    pub(crate) fn encode_snapshot_canonical(&self) -> Vec<u8> {
        self.encode(true, VERSION)
    }

    fn encode(&self, sort_ids: bool, version: u32) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 + self.cases.len() * 48));
        let magic = READ_MAGICS
            .iter()
            .find(|&&(_, v)| v == version)
            .map_or(MAGIC, |&(magic, _)| magic);
        w.0.extend_from_slice(magic);
        w.i64(self.now);
        let names = |list: Vec<&str>, w: &mut Writer| {
            w.u32(list.len() as u32);
            for name in list {
                w.str(name);
            }
        };
        names(
            self.settings
                .tracks
                .iter()
                .map(|t| t.name.as_str())
                .collect(),
            &mut w,
        );
        names(
            self.settings.phases.iter().map(String::as_str).collect(),
            &mut w,
        );
        names(
            self.settings.roles.iter().map(String::as_str).collect(),
            &mut w,
        );
        names(self.locations.names().collect(), &mut w);
        self.write_tables(&mut w);
        self.write_track_aggregates(&mut w);
        w.u64(self.aggregates.audits_passed);
        w.u64(self.aggregates.audits_failed);
        w.opt_i64(self.aggregates.last_audit_time);
        w.opt_i64(self.aggregates.last_event_time);
        self.write_dedup(&mut w, sort_ids);
        w.i64(self.flow_shape.width);
        for counter in self.inflow.iter().chain(&self.outflow) {
            w.rolling(counter);
        }
        w.i64(self.quality_shape.width);
        w.rolling(&self.audits_passed_rolling);
        w.rolling(&self.audits_rolling);
        if version < 5 {
            return w.0;
        }
        w.u32(self.target_histories.len() as u32);
        for history in &self.target_histories {
            w.str(&history.name);
            w.u32(history.announcements.len() as u32);
            for a in &history.announcements {
                w.i64(a.time);
                w.opt_str(
                    a.track
                        .map(|t| self.settings.tracks[usize::from(t)].name.as_str()),
                );
                w.i64(a.clear_by);
                w.u64(a.projected_clearance.to_bits());
                w.opt_str(a.announced_by.as_deref());
                w.opt_str(a.note.as_deref());
            }
        }
        for e in &self.employees {
            w.i64(e.joined_at);
        }
        // Per role (in the order of the names above), experienced and mentoring: the class's
        // presence and decisions.
        for role in 0..self.settings.roles.len() as u8 {
            for experienced in [false, true] {
                for mentoring in [false, true] {
                    let class = Capacity::class(role, experienced, mentoring);
                    let (base, buckets) = self.presence[class].export();
                    w.i64(base);
                    w.u64(buckets.len() as u64);
                    for (bucket, delta, moment) in buckets {
                        w.i64(bucket);
                        w.i64(delta);
                        w.0.extend_from_slice(&moment.to_le_bytes());
                    }
                    w.rolling(&self.decisions_by_class[class]);
                }
            }
        }
        w.rolling(&self.decisions_by_new_staff);
        if version < 6 {
            return w.0;
        }
        history::write(&mut w, &self.history.rows, version);
        if version >= 9 {
            for history in &self.target_histories {
                w.u64(history.forgotten);
            }
        }
        w.0
    }

    /// The case table and the employees.
    fn write_tables(&self, w: &mut Writer) {
        w.u32(self.cases.len() as u32);
        for (index, case) in self.cases.iter().enumerate() {
            w.str(self.case_ids.str_of(index as u32));
            w.i64(case.deadline);
            w.i64(case.lead_start);
            w.i64(case.suspended_at);
            w.u32(case.employee);
            w.u16(case.location);
            w.u8(case.track);
            w.u8(case.phase);
            w.u8(u8::from(case.open) | u8::from(case.suspended) << 1);
        }
        w.u32(self.employees.len() as u32);
        for e in &self.employees {
            w.str(&e.id);
            w.u8(u8::from(e.active));
            w.u8(e.role);
            w.u8(Contract::ALL
                .iter()
                .position(|c| *c == e.contract)
                .unwrap_or(0) as u8);
            w.u8(u8::from(e.experienced));
            match &e.location {
                Some(location) => {
                    w.u8(1);
                    w.str(location);
                }
                None => w.u8(0),
            }
            w.u32(e.mentor);
        }
    }

    /// Each track's counters, in the order of the track names.
    fn write_track_aggregates(&self, w: &mut Writer) {
        for t in &self.aggregates.tracks {
            w.i64(t.penalty_incurred_cents);
            for value in [t.registered, t.reopened]
                .iter()
                .chain(&t.decided_by_outcome)
                .chain(&t.closed_by_reason)
                .chain(&[
                    t.decisions_overdue,
                    t.decisions_by_inexperienced,
                    t.decisions_benefit_of_doubt,
                    t.decisions_without_investigation,
                    t.deadline_extensions,
                    t.hearings_held,
                    t.hearings_cancelled,
                    t.transfers,
                ])
                .chain(&t.lead_time.bucket_counts)
            {
                w.u64(*value);
            }
            w.u64(t.lead_time.sum_seconds.to_bits());
        }
    }

    /// The remembered event ids (sorted when `sort_ids`, for canonical bytes).
    fn write_dedup(&self, w: &mut Writer, sort_ids: bool) {
        let mut dedup = self.dedup.export();
        if sort_ids {
            dedup.current.sort_unstable();
            dedup.previous.sort_unstable();
            dedup.legacy.sort_unstable();
        }
        w.u64(dedup.key[0]);
        w.u64(dedup.key[1]);
        w.i64(dedup.current_started);
        for list in [dedup.current, dedup.previous] {
            w.u64(list.len() as u64);
            for hash in list {
                w.0.extend_from_slice(&hash.to_le_bytes());
            }
        }
        w.i64(dedup.legacy_until);
        w.u64(dedup.legacy.len() as u64);
        for hash in dedup.legacy {
            w.u64(hash);
        }
    }

    /// Rebuilds a state from `encode_snapshot` bytes under (possibly changed) settings. The parts
    /// come in the order `encode` writes them.
    pub fn decode_snapshot(settings: CoreSettings, bytes: &[u8]) -> Result<State, SnapshotError> {
        let mut r = Reader {
            bytes,
            at: 0,
            version: 0,
        };
        let magic = r.take(8)?;
        r.version = READ_MAGICS
            .iter()
            .find(|(known, _)| known.as_slice() == magic)
            .map(|&(_, version)| version)
            .ok_or(SnapshotError::BadMagic)?;
        let now = r.i64()?;
        let mut state = State::new(settings);
        state.now = now;
        let track_map = r.name_map("track", |name| state.settings.track_index(name))?;
        let phase_map = r.name_map("phase", |name| state.settings.phase_index(name))?;
        let role_map = r.name_map("role", |name| state.settings.role_index(name))?;
        state.read_locations(&mut r)?;
        let case_count = state.read_cases(&mut r, &track_map, &phase_map)?;
        let employee_count = state.read_employees(&mut r, &role_map)?;
        state.link_cases_to_employees(case_count, employee_count)?;
        state.read_track_aggregates(&mut r, &track_map)?;
        state.aggregates.audits_passed = possible("audits_passed", r.u64()?)?;
        state.aggregates.audits_failed = possible("audits_failed", r.u64()?)?;
        state.aggregates.last_audit_time = r.opt_i64()?;
        state.aggregates.last_event_time = r.opt_i64()?;
        let dedup = read_dedup(
            &mut r,
            crate::time::duration_nanos(state.settings.dedup_window),
        )?;
        let stored_flow = state.read_rolling_windows(&mut r, &track_map)?;
        if r.version >= 5 {
            state.read_targets(&mut r)?;
            state.read_capacity(&mut r, &role_map, employee_count, stored_flow)?;
        }
        if r.version >= 6 {
            history::read(&mut r, &mut state, &track_map)?;
        }
        if r.version >= 9 {
            for index in 0..state.target_histories.len() {
                state.target_histories[index].forgotten = r.u64()?;
            }
        }
        // A lower `max_announcements_per_target` than the snapshot was written under.
        state.trim_target_histories();
        // Each active employee's presence counts in their class: as stored (version 5), or, for
        // older formats, throughout the window (the base).
        for index in 0..employee_count as u32 {
            let class = state.capacity_class(index);
            state.employees[index as usize].capacity_class = class;
            if class != NONE && r.version < 5 {
                state.presence[class as usize] = PresenceIntegral::import(
                    state.presence[class as usize].current() + 1,
                    Vec::new(),
                );
            }
        }
        if r.remaining() != 0 {
            return Err(SnapshotError::TrailingBytes(r.remaining()));
        }
        state.dedup = dedup;
        state.rebuild_derived();
        Ok(state)
    }
    /// The location names, in id order.
    fn read_locations(&mut self, r: &mut Reader) -> Result<(), SnapshotError> {
        // Location ids are 16-bit: at most 65536 of them.
        let location_count = r.count("locations", MIN_STR, 1 << 16)?;
        for _ in 0..location_count {
            let name = r.str()?;
            if self.locations.id(&name).is_some() {
                return Err(SnapshotError::Duplicate {
                    what: "location",
                    name,
                });
            }
            // Ids are assigned in order, so the stored ids stay valid.
            self.add_location(&name);
        }
        Ok(())
    }

    /// The case table; returns its length.
    fn read_cases(
        &mut self,
        r: &mut Reader,
        track_map: &[u8],
        phase_map: &[u8],
    ) -> Result<usize, SnapshotError> {
        let case_count = r.count("cases", MIN_CASE, u32::MAX as usize)?;
        self.cases.reserve(case_count);
        for _ in 0..case_count {
            let id = r.str()?;
            // Unreachable from a stored snapshot (SQLite keeps a blob under 4 GiB), but bytes
            // are bytes: refused, never wrapped.
            if !self.case_ids.has_room_for(&id) {
                return Err(SnapshotError::UnknownId(
                    "the case ids are longer than one state holds (4 GiB)",
                ));
            }
            let index = self.case_ids.intern(&id);
            if index as usize != self.cases.len() {
                return Err(SnapshotError::Duplicate {
                    what: "case",
                    name: id,
                });
            }
            let deadline = r.i64()?;
            let lead_start = r.i64()?;
            let suspended_at = r.i64()?;
            let employee = r.u32()?;
            let location = r.u16()?;
            let track = r.u8()?;
            let phase = r.u8()?;
            let flags = r.u8()?;
            if usize::from(location) >= self.locations.len() {
                return Err(SnapshotError::UnknownLocation { case: id });
            }
            let track = *track_map
                .get(usize::from(track))
                .ok_or(SnapshotError::UnknownId("case with an unknown track id"))?;
            // Phase 0 is `none`; stored ids are 1-based like the live ones.
            let phase = match phase {
                0 => 0,
                p => *phase_map
                    .get(usize::from(p) - 1)
                    .ok_or(SnapshotError::UnknownId("case with an unknown phase id"))?,
            };
            self.cases.push(Case {
                deadline,
                lead_start,
                suspended_at,
                timer: NO_TIMER,
                employee,
                of_employee: Links::DETACHED,
                location,
                track,
                phase,
                open: flags & 1 != 0,
                suspended: flags & 2 != 0,
                class: Class::default(),
            });
        }
        Ok(case_count)
    }

    /// The employees and their mentors; returns their count.
    fn read_employees(&mut self, r: &mut Reader, role_map: &[u8]) -> Result<usize, SnapshotError> {
        let employee_count = r.count("employees", MIN_EMPLOYEE, u32::MAX as usize)?;
        let mut mentors = Vec::with_capacity(employee_count);
        for index in 0..employee_count {
            let id = r.str()?;
            let active = r.u8()? != 0;
            let role = *role_map
                .get(usize::from(r.u8()?))
                .ok_or(SnapshotError::UnknownId("employee with an unknown role id"))?;
            let contract =
                *Contract::ALL
                    .get(usize::from(r.u8()?))
                    .ok_or(SnapshotError::UnknownId(
                        "employee with an unknown contract",
                    ))?;
            let experienced = r.u8()? != 0;
            let location = match r.u8()? {
                0 => None,
                _ => Some(r.str()?.into_boxed_str()),
            };
            let mentor = r.u32()?;
            if mentor == index as u32 {
                return Err(SnapshotError::OwnMentor { employee: id });
            }
            mentors.push(mentor);
            if self
                .employee_ids
                .insert(id.clone().into_boxed_str(), index as u32)
                .is_some()
            {
                return Err(SnapshotError::Duplicate {
                    what: "employee",
                    name: id,
                });
            }
            let mut record = Employee::new(&id, role, contract, experienced, location.as_deref());
            record.active = active;
            self.employees.push(record);
            if active {
                self.count_employee(index as u32, 1);
            }
        }
        for (mentee, mentor) in mentors.into_iter().enumerate() {
            if mentor != NONE {
                if mentor as usize >= employee_count {
                    return Err(SnapshotError::UnknownId("employee with an unknown mentor"));
                }
                self.set_mentor(mentee as u32, mentor);
            }
        }
        Ok(employee_count)
    }

    fn link_cases_to_employees(
        &mut self,
        case_count: usize,
        employee_count: usize,
    ) -> Result<(), SnapshotError> {
        // Link every open case into its employee's list (the list is order-free).
        for index in 0..case_count as u32 {
            let employee = self.cases[index as usize].employee;
            if employee == NONE || !self.cases[index as usize].open {
                self.cases[index as usize].employee = NONE;
                continue;
            }
            if employee as usize >= employee_count {
                return Err(SnapshotError::UnknownId(
                    "case assigned to an unknown employee",
                ));
            }
            let head = self.employees[employee as usize].first_case;
            self.employees[employee as usize].first_case =
                list_push(&mut self.cases, case_links, head, index);
        }
        Ok(())
    }

    /// The counters of each stored track, moved to the track of the same name.
    fn read_track_aggregates(
        &mut self,
        r: &mut Reader,
        track_map: &[u8],
    ) -> Result<(), SnapshotError> {
        let mut stored_tracks = Vec::with_capacity(track_map.len());
        for _ in 0..track_map.len() {
            let penalty = r.i64()?;
            possible("penalty_incurred_cents", penalty.unsigned_abs())?;
            let mut t = TrackAggregates {
                penalty_incurred_cents: penalty,
                registered: possible("registered", r.u64()?)?,
                reopened: possible("reopened", r.u64()?)?,
                ..TrackAggregates::default()
            };
            for slot in t.decided_by_outcome.iter_mut() {
                *slot = possible("decided_by_outcome", r.u64()?)?;
            }
            for slot in t.closed_by_reason.iter_mut() {
                *slot = possible("closed_by_reason", r.u64()?)?;
            }
            for (what, slot) in [
                ("decisions_overdue", &mut t.decisions_overdue),
                (
                    "decisions_by_inexperienced",
                    &mut t.decisions_by_inexperienced,
                ),
                (
                    "decisions_benefit_of_doubt",
                    &mut t.decisions_benefit_of_doubt,
                ),
                (
                    "decisions_without_investigation",
                    &mut t.decisions_without_investigation,
                ),
                ("deadline_extensions", &mut t.deadline_extensions),
                ("hearings_held", &mut t.hearings_held),
                ("hearings_cancelled", &mut t.hearings_cancelled),
                ("transfers", &mut t.transfers),
            ] {
                *slot = possible(what, r.u64()?)?;
            }
            for slot in t.lead_time.bucket_counts.iter_mut() {
                *slot = possible("lead_time bucket", r.u64()?)?;
            }
            t.lead_time.sum_seconds = f64::from_bits(r.u64()?);
            stored_tracks.push(t);
        }
        for (stored, &track) in stored_tracks.into_iter().zip(track_map) {
            let live = &mut self.aggregates.tracks[usize::from(track)];
            live.penalty_incurred_cents = stored.penalty_incurred_cents;
            live.registered = stored.registered;
            live.reopened = stored.reopened;
            live.decided_by_outcome = stored.decided_by_outcome;
            live.closed_by_reason = stored.closed_by_reason;
            live.decisions_overdue = stored.decisions_overdue;
            live.decisions_by_inexperienced = stored.decisions_by_inexperienced;
            live.decisions_benefit_of_doubt = stored.decisions_benefit_of_doubt;
            live.decisions_without_investigation = stored.decisions_without_investigation;
            live.deadline_extensions = stored.deadline_extensions;
            live.hearings_held = stored.hearings_held;
            live.hearings_cancelled = stored.hearings_cancelled;
            live.transfers = stored.transfers;
            live.lead_time = stored.lead_time;
        }
        Ok(())
    }

    /// The rolling inflow, outflow and audit counters, rebucketed to the current shapes; returns
    /// the stored flow shape (the capacity counters share it).
    fn read_rolling_windows(
        &mut self,
        r: &mut Reader,
        track_map: &[u8],
    ) -> Result<RollingShape, SnapshotError> {
        let stored_flow = RollingShape::stored(r.positive_i64()?);
        let mut flows = Vec::with_capacity(2 * track_map.len());
        for _ in 0..2 * track_map.len() {
            flows.push(
                r.rolling()?
                    .rebucket(stored_flow, self.flow_shape, self.now),
            );
        }
        let (inflow, outflow) = flows.split_at(track_map.len());
        for (t, &track) in track_map.iter().enumerate() {
            self.inflow[usize::from(track)] = inflow[t].clone();
            self.outflow[usize::from(track)] = outflow[t].clone();
        }
        let stored_quality = RollingShape::stored(r.positive_i64()?);
        self.audits_passed_rolling =
            r.rolling()?
                .rebucket(stored_quality, self.quality_shape, self.now);
        self.audits_rolling = r
            .rolling()?
            .rebucket(stored_quality, self.quality_shape, self.now);
        Ok(stored_flow)
    }

    /// The announced targets (version 5 on).
    fn read_targets(&mut self, r: &mut Reader) -> Result<(), SnapshotError> {
        let target_count = r.count("targets", MIN_STR + 4, u32::MAX as usize)?;
        for _ in 0..target_count {
            let name = r.str()?;
            if self.target_histories.iter().any(|h| h.name == name) {
                return Err(SnapshotError::Duplicate {
                    what: "target",
                    name,
                });
            }
            let count = r.count("announcements", MIN_ANNOUNCEMENT, u32::MAX as usize)?;
            let mut announcements = Vec::with_capacity(count);
            for _ in 0..count {
                let time = r.i64()?;
                let track = match r.opt_str()? {
                    None => None,
                    Some(name) => Some(self.settings.track_index(&name).ok_or(
                        SnapshotError::UnknownName {
                            what: "track",
                            name,
                        },
                    )?),
                };
                announcements.push(Announcement {
                    time,
                    track,
                    clear_by: r.i64()?,
                    projected_clearance: f64::from_bits(r.u64()?),
                    announced_by: r.opt_str()?,
                    note: r.opt_str()?,
                });
            }
            self.target_histories.push(TargetHistory {
                name,
                announcements,
                forgotten: 0,
            });
        }
        Ok(())
    }

    /// Joining dates, the presence integrals and decisions per capacity class (version 5 on).
    fn read_capacity(
        &mut self,
        r: &mut Reader,
        role_map: &[u8],
        employee_count: usize,
        stored_flow: RollingShape,
    ) -> Result<(), SnapshotError> {
        for index in 0..employee_count {
            self.employees[index].joined_at = r.i64()?;
        }
        for &role in role_map {
            for experienced in [false, true] {
                for mentoring in [false, true] {
                    let class = Capacity::class(role, experienced, mentoring);
                    let base = r.i64()?;
                    let buckets = r.list(32, |r| {
                        Ok((r.i64()?, r.i64()?, i128::from_le_bytes(r.array()?)))
                    })?;
                    self.presence[class] = PresenceIntegral::import(base, buckets).rebucket(
                        stored_flow,
                        self.flow_shape,
                        self.now,
                    );
                    self.decisions_by_class[class] =
                        r.rolling()?
                            .rebucket(stored_flow, self.flow_shape, self.now);
                }
            }
        }
        self.decisions_by_new_staff = r
            .rolling()?
            .rebucket(stored_flow, self.flow_shape, self.now);
        Ok(())
    }
}

/// The remembered event ids: keyed 128-bit hashes (version 4 on) or the older 64-bit ones.
fn read_dedup(r: &mut Reader, dedup_window: i64) -> Result<Dedup, SnapshotError> {
    let dedup = if r.version >= 4 {
        let key = [r.u64()?, r.u64()?];
        let current_started = r.i64()?;
        let current = r.list(16, |r| Ok(u128::from_le_bytes(r.array()?)))?;
        let previous = r.list(16, |r| Ok(u128::from_le_bytes(r.array()?)))?;
        let legacy_until = r.i64()?;
        let legacy = r.list(8, Reader::u64)?;
        Dedup::import(
            dedup_window,
            &DedupExport {
                key,
                current_started,
                current,
                previous,
                legacy_until,
                legacy,
            },
        )
    } else {
        let started = r.i64()?;
        let current = r.list(8, Reader::u64)?;
        let previous = r.list(8, Reader::u64)?;
        Dedup::import_legacy(dedup_window, started, &current, &previous)
    };
    Ok(dedup)
}

// Both lists have fixed lengths that the format relies on; a change must bump MAGIC.
const _: () = assert!(Outcome::ALL.len() == 3 && CloseReason::ALL.len() == 4);
const _: () = assert!(LEAD_TIME_BUCKET_DAYS.len() == 9);

/// Smallest encodings, for bounding counts: a text is its u32 length and its bytes; a case is its
/// id, three i64, a u32, a u16 and three bytes; an employee its id, five bytes and a u32.
const MIN_STR: usize = 4;
const MIN_CASE: usize = MIN_STR + 3 * 8 + 4 + 2 + 3;
const MIN_EMPLOYEE: usize = MIN_STR + 5 + 4;
/// An announcement: two i64, an f64 and three optional texts (one flag byte each).
const MIN_ANNOUNCEMENT: usize = 3 * 8 + 3;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.i64(v);
            }
            None => self.u8(0),
        }
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn rolling(&mut self, counter: &RollingCounter) {
        let (first, counts, ahead) = counter.export();
        self.i64(first);
        self.u64(counts.len() as u64);
        for count in counts {
            self.u64(count);
        }
        self.u64(ahead.len() as u64);
        for (t, count) in ahead {
            self.i64(t);
            self.u64(count);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Format version, from the magic.
    version: u32,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
    fn take(&mut self, n: usize) -> Result<&[u8], SnapshotError> {
        if self.remaining() < n {
            return Err(SnapshotError::Truncated { at: self.at });
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, SnapshotError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn opt_i64(&mut self) -> Result<Option<i64>, SnapshotError> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.i64()?)),
        }
    }
    fn opt_str(&mut self) -> Result<Option<String>, SnapshotError> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.str()?)),
        }
    }
    fn positive_i64(&mut self) -> Result<i64, SnapshotError> {
        match self.i64()? {
            v if v > 0 => Ok(v),
            v => Err(SnapshotError::BadBucketWidth(v)),
        }
    }
    fn rolling(&mut self) -> Result<RollingCounter, SnapshotError> {
        let first = self.i64()?;
        let counts = self.list(8, Self::u64)?;
        let ahead = if self.version >= 3 {
            self.list(16, |r| Ok((r.i64()?, r.u64()?)))?
        } else {
            Vec::new()
        };
        Ok(RollingCounter::import(first, counts, ahead))
    }
    /// A `u32` count of records of at least `min_size` bytes each, at most `max`: checked against
    /// the bytes left, so a corrupt count is an error, never a huge allocation.
    fn count(
        &mut self,
        what: &'static str,
        min_size: usize,
        max: usize,
    ) -> Result<usize, SnapshotError> {
        let at = self.at;
        let count = self.u32()? as usize;
        if count > max || count > self.remaining() / min_size.max(1) {
            return Err(SnapshotError::BadCount { count, what, at });
        }
        Ok(count)
    }
    /// A list: a `u64` count, then that many records of at least `min_size` bytes each read by
    /// `item`. The count is checked against the bytes left before anything is allocated.
    fn list<T>(
        &mut self,
        min_size: usize,
        item: impl Fn(&mut Self) -> Result<T, SnapshotError>,
    ) -> Result<Vec<T>, SnapshotError> {
        let at = self.at;
        let count = self.u64()?;
        if count > (self.remaining() / min_size.max(1)) as u64 {
            return Err(SnapshotError::BadListLength { count, at });
        }
        (0..count).map(|_| item(self)).collect()
    }
    fn str(&mut self) -> Result<String, SnapshotError> {
        let len = self.u32()? as usize;
        let at = self.at;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| SnapshotError::BadText { at })
    }
    /// Reads a list of names and maps each to the current settings' id.
    fn name_map(
        &mut self,
        what: &'static str,
        lookup: impl Fn(&str) -> Option<u8>,
    ) -> Result<Vec<u8>, SnapshotError> {
        // Ids are one byte: at most 256 names.
        let count = self.count(what, MIN_STR, 256)?;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let name = self.str()?;
            let Some(id) = lookup(&name) else {
                return Err(SnapshotError::UnknownName { what, name });
            };
            if ids.contains(&id) {
                return Err(SnapshotError::Duplicate { what, name });
            }
            ids.push(id);
        }
        Ok(ids)
    }
}

mod history;
#[cfg(test)]
mod tests;
