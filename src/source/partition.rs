//! Partitioning the cases over instances (docs/scaling.md): the partition of a case is
//! `xxh3_64(case id as UTF-8 bytes, seed 0) mod P`. An instance applies the events of the
//! partitions it owns; events about employees, mentors and targets are applied by every instance
//! (each needs them to check and attribute its own cases' events); a quality audit without a case
//! and a message part that is not an event at all belong to partition 0, so that sums over the
//! instances count them once.

use crate::core::event::{Event, EventKind};

/// The partition of `case` among `partitions` (at least 1).
pub fn partition_of(case: &str, partitions: u32) -> u32 {
    let hash = xxhash_rust::xxh3::xxh3_64(case.as_bytes());
    // The remainder is below `partitions`, a u32.
    (hash % u64::from(partitions.max(1))) as u32
}

/// Which instances apply an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Every instance.
    All,
    /// The instance that owns this partition.
    Partition(u32),
}

/// The owner of an event; `None` (not an event) belongs to partition 0.
pub fn owner(event: Option<&Event>, partitions: u32) -> Owner {
    let Some(event) = event else {
        return Owner::Partition(0);
    };
    match &event.kind {
        EventKind::EmployeeJoined { .. }
        | EventKind::EmployeeUpdated { .. }
        | EventKind::EmployeeLeft { .. }
        | EventKind::MentorAssigned { .. }
        | EventKind::MentorUnassigned { .. }
        | EventKind::TargetAnnounced { .. } => Owner::All,
        EventKind::QualityAudit { case: None, .. } => Owner::Partition(0),
        EventKind::QualityAudit {
            case: Some(case), ..
        }
        | EventKind::CaseRegistered { case, .. }
        | EventKind::CaseAssigned { case, .. }
        | EventKind::CaseUnassigned { case, .. }
        | EventKind::CasePhaseChanged { case, .. }
        | EventKind::CaseHearingHeld { case, .. }
        | EventKind::CaseHearingCancelled { case, .. }
        | EventKind::CaseDeadlineExtended { case, .. }
        | EventKind::CaseSuspended { case, .. }
        | EventKind::CaseResumed { case, .. }
        | EventKind::CaseTransferred { case, .. }
        | EventKind::CaseDecided { case, .. }
        | EventKind::CaseClosed { case, .. }
        | EventKind::CaseReopened { case, .. } => Owner::Partition(partition_of(case, partitions)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented function, pinned: publishers in other languages compute the same values
    /// (docs/scaling.md lists these).
    #[test]
    fn partition_function_is_pinned() {
        let pinned: Vec<(u64, u32)> = ["Z-1", "Z-2", "2026-AS-000123"]
            .iter()
            .map(|case| {
                (
                    xxhash_rust::xxh3::xxh3_64(case.as_bytes()),
                    partition_of(case, 4),
                )
            })
            .collect();
        expect_test::expect![[r#"
            [
                (
                    5443124190928744604,
                    0,
                ),
                (
                    8916543981401246168,
                    0,
                ),
                (
                    11725766493673018306,
                    2,
                ),
            ]
        "#]]
        .assert_debug_eq(&pinned);
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0);
    }

    #[test]
    fn employees_are_everyones_cases_are_one_partitions() {
        let event = |line: &str| crate::wire::parse_event(line).expect("parses");
        let joined = event(
            r#"{"id":"1","type":"employee.joined","time":"2026-11-02T09:00:00Z","data":{"employee":"E-1","role":"caseworker","experienced":true}}"#,
        );
        assert_eq!(owner(Some(&joined), 4), Owner::All);
        let registered = event(
            r#"{"id":"2","type":"case.registered","time":"2026-11-02T09:00:00Z","data":{"case":"Z-1","track":"asylum"}}"#,
        );
        assert_eq!(
            owner(Some(&registered), 4),
            Owner::Partition(partition_of("Z-1", 4))
        );
        assert_eq!(owner(None, 4), Owner::Partition(0));
    }
}
