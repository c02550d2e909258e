//! The daily history in a snapshot (format 6, 7 with the window's decisions in each row, 8 with the
//! basis each row was counted over): each row's figures, its tracks in the order of the snapshot's
//! track names (mapped to the current tracks on load).

use std::sync::Arc;

use super::{MIN_STR, Reader, SnapshotError, State, Writer};
use crate::history::{DailyRow, DayTrack, MAX_DAYS, RowBasis};

/// Distinct bases a snapshot may hold: each is a reload that changed the windows, so a few at most
/// in practice; bounded so that damaged bytes cannot make the decoder allocate without end.
const MAX_BASES: usize = MAX_DAYS;
/// A basis: a window count, a label and a week count.
const MIN_BASIS: usize = 4 + MIN_STR + 4;

/// A history row: its day, eight i64/u64 and a track count; a track in it: seven i64/u64 and a
/// window count.
const MIN_DAY_ROW: usize = MIN_STR + 8 * 8 + 4;
const MIN_DAY_TRACK: usize = 7 * 8 + 4;

pub(super) fn write(w: &mut Writer, rows: &std::collections::VecDeque<DailyRow>, version: u32) {
    // Version 8: the distinct bases first (consecutive rows share one), then each row's index.
    let mut bases: Vec<&Arc<RowBasis>> = Vec::new();
    let mut basis_of_row = Vec::with_capacity(rows.len());
    for row in rows {
        if bases.last().is_none_or(|last| **last != row.basis) {
            bases.push(&row.basis);
        }
        basis_of_row.push(bases.len() as u32 - 1);
    }
    if version >= 8 {
        w.u32(bases.len() as u32);
        for basis in &bases {
            w.u32(basis.due_soon_windows.len() as u32);
            for label in &basis.due_soon_windows {
                w.str(label);
            }
            w.str(&basis.decision_window);
            w.u32(basis.new_staff_weeks);
        }
    }
    w.u32(rows.len() as u32);
    for (row, basis) in rows.iter().zip(basis_of_row) {
        w.str(&row.day);
        w.i64(row.at);
        if version >= 8 {
            w.u32(basis);
        }
        for v in [
            row.employees_experienced,
            row.employees_inexperienced,
            row.mentors,
            row.mentees,
            row.unmentored,
        ] {
            w.i64(v);
        }
        w.u64(row.audits_passed);
        w.u64(row.audits_failed);
        if version >= 7 {
            w.u64(row.decisions_in_window);
            w.u64(row.decisions_by_new_staff_in_window);
        }
        // In the order of the track names at the start.
        w.u32(row.tracks.len() as u32);
        for t in &row.tracks {
            w.i64(t.open);
            w.i64(t.overdue);
            w.u32(t.due_soon.len() as u32);
            for &d in &t.due_soon {
                w.i64(d);
            }
            w.u64(t.inflow_total);
            w.u64(t.outflow_total);
            w.i64(t.penalty_exposure_cents);
            w.i64(t.penalty_incurred_cents);
            w.u64(t.clearance_seconds.to_bits());
        }
    }
}

pub(super) fn read(
    r: &mut Reader<'_>,
    state: &mut State,
    track_map: &[u8],
) -> Result<(), SnapshotError> {
    // Rows of formats before 8 did not record their basis: they get the settings the snapshot is
    // decoded under (recovery decodes under the configuration the snapshot records).
    let current = Arc::new(RowBasis::of(&state.settings));
    let mut bases = Vec::new();
    if r.version >= 8 {
        let count = r.count("history bases", MIN_BASIS, MAX_BASES)?;
        for _ in 0..count {
            let windows = r.count("history basis windows", MIN_STR, 256)?;
            let due_soon_windows = (0..windows).map(|_| r.str()).collect::<Result<_, _>>()?;
            let basis = RowBasis {
                due_soon_windows,
                decision_window: r.str()?,
                new_staff_weeks: r.u32()?,
            };
            bases.push(if basis == *current {
                current.clone()
            } else {
                Arc::new(basis)
            });
        }
    }
    let rows = r.count("history rows", MIN_DAY_ROW, MAX_DAYS)?;
    for _ in 0..rows {
        let day = r.str()?;
        let at = r.i64()?;
        let basis = if r.version >= 8 {
            let index = r.u32()? as usize;
            bases.get(index).cloned().ok_or(SnapshotError::UnknownId(
                "a history row names a basis the snapshot does not define",
            ))?
        } else {
            current.clone()
        };
        let mut row = DailyRow {
            day,
            at,
            basis,
            employees_experienced: r.i64()?,
            employees_inexperienced: r.i64()?,
            mentors: r.i64()?,
            mentees: r.i64()?,
            unmentored: r.i64()?,
            audits_passed: r.u64()?,
            audits_failed: r.u64()?,
            decisions_in_window: if r.version >= 7 { r.u64()? } else { 0 },
            decisions_by_new_staff_in_window: if r.version >= 7 { r.u64()? } else { 0 },
            tracks: vec![DayTrack::default(); state.settings.tracks.len()],
        };
        let stored = r.count("history tracks", MIN_DAY_TRACK, track_map.len())?;
        if stored != track_map.len() {
            return Err(SnapshotError::BadCount {
                count: stored,
                what: "history tracks",
                at: r.at,
            });
        }
        for &track in track_map {
            let open = r.i64()?;
            let overdue = r.i64()?;
            let windows = r.count("due-soon windows", 8, 256)?;
            let due_soon = (0..windows).map(|_| r.i64()).collect::<Result<_, _>>()?;
            row.tracks[usize::from(track)] = DayTrack {
                open,
                overdue,
                due_soon,
                inflow_total: r.u64()?,
                outflow_total: r.u64()?,
                penalty_exposure_cents: r.i64()?,
                penalty_incurred_cents: r.i64()?,
                clearance_seconds: f64::from_bits(r.u64()?),
            };
        }
        state.history.push(row);
    }
    Ok(())
}
