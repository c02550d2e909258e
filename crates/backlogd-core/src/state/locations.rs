//! Locations: permanent ids for names, and the labels `/metrics` shows (docs/metrics.md,
//! "Locations").
//!
//! A case keeps the id of its location for good (a closed case that reopens is back at its
//! location), so names are never forgotten; at most [`MAX_NAMES`] are remembered, and a name beyond
//! that is remembered as `other`. Labels are scarce (`limits.max_locations`) and follow one rule
//! that depends on nothing but the current open cases, so a restart (which rebuilds them from the
//! cases) shows the same labels:
//!
//! **a location has its own label while it has an open case and fewer than `max_locations`
//! locations seen before it have one; every other open case counts in `other`.**
//!
//! So a location whose last open case closes gives its label up at once, to the next location
//! with open cases in the order first seen, and takes a label again when it has an open case and
//! a label is free for it. A location named `other` always counts in `other`.

use std::collections::BTreeSet;

use super::super::aggregates::Aggregates;
use super::OTHER_LOCATION;

/// The most location names remembered (ids are 16-bit; the last one is kept for `other`).
pub const MAX_NAMES: usize = u16::MAX as usize;

/// No label: the location has no open case, or counts in `other`.
const NO_LABEL: u16 = u16::MAX;

#[derive(Debug, Clone)]
pub(super) struct Locations {
    /// Names by id, in the order first seen.
    names: Vec<String>,
    ids: hashbrown::HashMap<String, u16>,
    /// The id of a location named `other`, once seen.
    other: Option<u16>,
    /// Per id: open cases, all tracks.
    open: Vec<u32>,
    /// Per track, per id: open and overdue cases.
    by_track: Vec<Vec<[i64; 2]>>,
    /// Per track: open and overdue cases, all locations.
    totals: Vec<[i64; 2]>,
    /// Ids with an open case, in id order.
    with_open: BTreeSet<u16>,
    /// Per id: its position among the labels, or `NO_LABEL`.
    label: Vec<u16>,
    /// The labelled ids, in id order.
    labelled: Vec<u16>,
}

impl Locations {
    pub(super) fn new(tracks: usize) -> Locations {
        Locations {
            names: Vec::new(),
            ids: hashbrown::HashMap::new(),
            other: None,
            open: Vec::new(),
            by_track: vec![Vec::new(); tracks],
            totals: vec![[0; 2]; tracks],
            with_open: BTreeSet::new(),
            label: Vec::new(),
            labelled: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub(super) fn name(&self, id: u16) -> &str {
        &self.names[usize::from(id)]
    }

    pub(super) fn id(&self, name: &str) -> Option<u16> {
        self.ids.get(name).copied()
    }

    /// The id of `name`, remembering it when new; beyond [`MAX_NAMES`], the id of `other`.
    pub(super) fn id_or_add(&mut self, name: &str) -> u16 {
        if let Some(id) = self.id(name) {
            return id;
        }
        if self.names.len() + 1 >= MAX_NAMES {
            return match self.other {
                Some(id) => id,
                None => self.add(OTHER_LOCATION),
            };
        }
        self.add(name)
    }

    /// Remembers a new name at the next id (the snapshot decoder relies on that order).
    pub(super) fn add(&mut self, name: &str) -> u16 {
        let id = self.names.len() as u16;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        if name == OTHER_LOCATION {
            self.other = Some(id);
        }
        self.open.push(0);
        for counts in &mut self.by_track {
            counts.push([0; 2]);
        }
        self.label.push(NO_LABEL);
        id
    }

    /// Counts an open case (`delta` 1) or uncounts it (-1) at location `id` of `track`, overdue
    /// or not, in the exported gauges too; the labels move when a location gains its first open
    /// case or loses its last.
    pub(super) fn count(
        &mut self,
        aggregates: &mut Aggregates,
        max_labels: usize,
        track: usize,
        id: u16,
        overdue: bool,
        delta: i64,
    ) {
        let i = usize::from(id);
        let counts = &mut self.by_track[track][i];
        counts[0] += delta;
        self.totals[track][0] += delta;
        if overdue {
            counts[1] += delta;
            self.totals[track][1] += delta;
        }
        let before = self.open[i];
        self.open[i] = before.wrapping_add_signed(delta as i32);
        match (before, self.open[i]) {
            (0, _) => {
                self.with_open.insert(id);
                self.relabel(aggregates, max_labels);
            }
            (_, 0) => {
                self.with_open.remove(&id);
                self.relabel(aggregates, max_labels);
            }
            _ => {
                // Labels unchanged: the location's label, or `other` (which exists, since this
                // location has open cases and no label).
                let at = match self.label[i] {
                    NO_LABEL => self.labelled.len(),
                    label => usize::from(label),
                };
                let t = &mut aggregates.tracks[track];
                t.open_by_location[at] += delta;
                if overdue {
                    t.overdue_by_location[at] += delta;
                }
            }
        }
    }

    /// Sets the labels by the rule (module documentation) and rewrites the exported gauges:
    /// `aggregates.locations` lists the labelled names in the order first seen, then `other` when
    /// a location without a label has open cases. O(`max_labels` × tracks).
    pub(super) fn relabel(&mut self, aggregates: &mut Aggregates, max_labels: usize) {
        for &id in &self.labelled {
            self.label[usize::from(id)] = NO_LABEL;
        }
        self.labelled.clear();
        for &id in &self.with_open {
            if self.labelled.len() == max_labels {
                break;
            }
            if Some(id) != self.other {
                self.label[usize::from(id)] = self.labelled.len() as u16;
                self.labelled.push(id);
            }
        }
        let has_other = self.with_open.len() > self.labelled.len();
        aggregates.locations.clear();
        aggregates.locations.extend(
            self.labelled
                .iter()
                .map(|&id| self.names[usize::from(id)].clone()),
        );
        if has_other {
            aggregates.locations.push(OTHER_LOCATION.to_owned());
        }
        for (track, t) in aggregates.tracks.iter_mut().enumerate() {
            t.open_by_location.clear();
            t.overdue_by_location.clear();
            let mut labelled = [0; 2];
            for &id in &self.labelled {
                let counts = self.by_track[track][usize::from(id)];
                t.open_by_location.push(counts[0]);
                t.overdue_by_location.push(counts[1]);
                labelled[0] += counts[0];
                labelled[1] += counts[1];
            }
            if has_other {
                t.open_by_location.push(self.totals[track][0] - labelled[0]);
                t.overdue_by_location
                    .push(self.totals[track][1] - labelled[1]);
            }
        }
    }

    /// Forgets every count (the names stay), for a rebuild from the cases.
    pub(super) fn reset(&mut self, aggregates: &mut Aggregates, max_labels: usize) {
        self.open.fill(0);
        for counts in &mut self.by_track {
            counts.fill([0; 2]);
        }
        self.totals.fill([0; 2]);
        self.with_open.clear();
        self.relabel(aggregates, max_labels);
    }
}
