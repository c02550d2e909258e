//! The event model of the core: typed, already-parsed events and the closed set of rejection reasons.
//!
//! Wire formats (JSON, CloudEvents) live in `crate::wire`; they convert into these types. Nothing here
//! knows about serde.

use jiff::{Span, Timestamp};

/// One validated event, as the core applies it.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub time: Timestamp,
    pub kind: EventKind,
}

/// What happened, with the fields of its `data` object.
#[derive(Debug, Clone)]
pub enum EventKind {
    CaseRegistered {
        case: String,
        track: String,
        received_at: Option<Timestamp>,
        location: Option<String>,
        deadline: Option<Timestamp>,
    },
    CaseAssigned {
        case: String,
        employee: String,
    },
    CaseUnassigned {
        case: String,
    },
    CasePhaseChanged {
        case: String,
        phase: String,
    },
    CaseHearingHeld {
        case: String,
    },
    CaseHearingCancelled {
        case: String,
        reason: Option<String>,
    },
    CaseDeadlineExtended {
        case: String,
        extension: Extension,
    },
    CaseSuspended {
        case: String,
    },
    CaseResumed {
        case: String,
    },
    CaseTransferred {
        case: String,
        location: String,
    },
    CaseDecided {
        case: String,
        outcome: Outcome,
        decided_by: String,
        basis: Option<String>,
        additional_investigation: Option<bool>,
    },
    CaseClosed {
        case: String,
        reason: CloseReason,
    },
    CaseReopened {
        case: String,
        deadline: Option<Timestamp>,
        track: Option<String>,
    },
    EmployeeJoined {
        employee: String,
        role: String,
        experienced: bool,
        contract: Contract,
        location: Option<String>,
        /// When the employee started at the agency, when earlier than the event (staff already
        /// there when backlogd is adopted): the start of `forecast.new_staff_weeks`.
        since: Option<Timestamp>,
    },
    EmployeeUpdated {
        employee: String,
        role: Option<String>,
        experienced: Option<bool>,
        contract: Option<Contract>,
        location: Option<String>,
    },
    EmployeeLeft {
        employee: String,
    },
    MentorAssigned {
        mentor: String,
        mentee: String,
    },
    MentorUnassigned {
        mentee: String,
    },
    QualityAudit {
        passed: bool,
        case: Option<String>,
    },
    /// A clearance date announced in public (by a minister, the ministry or the agency).
    TargetAnnounced {
        target: String,
        track: Option<String>,
        clear_by: Timestamp,
        announced_by: Option<String>,
        note: Option<String>,
    },
}

impl Event {
    /// The wire name of the first id of this event (its `id`, then the case, employee, mentor and
    /// mentee ids of `data`) that holds a non-ASCII character, if any. Ids are compared byte for
    /// byte, so such an id has look-alikes (an NFC and an NFD spelling) that are other ids.
    pub fn non_ascii_id_field(&self) -> Option<&'static str> {
        if !self.id.is_ascii() {
            return Some("id");
        }
        use EventKind::*;
        let ids: [(&'static str, Option<&str>); 2] = match &self.kind {
            CaseRegistered { case, .. }
            | CaseUnassigned { case }
            | CasePhaseChanged { case, .. }
            | CaseHearingHeld { case }
            | CaseHearingCancelled { case, .. }
            | CaseDeadlineExtended { case, .. }
            | CaseSuspended { case }
            | CaseResumed { case }
            | CaseTransferred { case, .. }
            | CaseClosed { case, .. }
            | CaseReopened { case, .. } => [("data.case", Some(case)), ("", None)],
            CaseAssigned { case, employee } => {
                [("data.case", Some(case)), ("data.employee", Some(employee))]
            }
            CaseDecided {
                case, decided_by, ..
            } => [
                ("data.case", Some(case)),
                ("data.decided_by", Some(decided_by)),
            ],
            EmployeeJoined { employee, .. }
            | EmployeeUpdated { employee, .. }
            | EmployeeLeft { employee } => [("data.employee", Some(employee)), ("", None)],
            MentorAssigned { mentor, mentee } => {
                [("data.mentor", Some(mentor)), ("data.mentee", Some(mentee))]
            }
            MentorUnassigned { mentee } => [("data.mentee", Some(mentee)), ("", None)],
            // The audit's `case` is free text, and a target's name is a label, not an id.
            QualityAudit { .. } | TargetAnnounced { .. } => [("", None), ("", None)],
        };
        ids.into_iter()
            .find(|(_, id)| id.is_some_and(|id| !id.is_ascii()))
            .map(|(field, _)| field)
    }
}

/// How `case.deadline_extended` moves the deadline.
#[derive(Debug, Clone)]
pub enum Extension {
    /// Added to the current deadline with calendar arithmetic.
    By(Span),
    /// The new deadline.
    To(Timestamp),
}

/// The most distinct target names (configured and announced): each is a label value.
pub const MAX_TARGETS: usize = 64;

/// The longest `note` of a `target.announced`, in bytes.
pub const MAX_NOTE_BYTES: usize = 1024;

/// The longest identifier-like text field (event `id`, case, employee, track, ...), in bytes.
pub const MAX_TEXT_BYTES: usize = 128;

/// Declares a closed enum whose variants map one to one to wire strings, and generates from that
/// one table: `ALL` (in declaration order, so `index()` is the position in it), `NAMES`,
/// `as_str()`, `parse()` and `Display`.
macro_rules! wire_names {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident {
            $($(#[$vmeta:meta])* $variant:ident => $name:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $enum { $($(#[$vmeta])* $variant),* }

        impl $enum {
            pub const ALL: [$enum; [$($name),*].len()] = [$($enum::$variant),*];
            /// The wire names, in the order of [`Self::ALL`].
            pub const NAMES: [&'static str; [$($name),*].len()] = [$($name),*];

            pub fn as_str(self) -> &'static str {
                match self { $($enum::$variant => $name),* }
            }

            pub fn parse(value: &str) -> Option<$enum> {
                match value { $($name => Some($enum::$variant),)* _ => None }
            }

            /// Position in [`Self::ALL`], for counters kept in arrays.
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_names! {
    pub enum Outcome {
        Granted => "granted",
        Rejected => "rejected",
        Other => "other",
    }
}

wire_names! {
    pub enum CloseReason {
        Withdrawn => "withdrawn",
        TransferredOut => "transferred_out",
        Merged => "merged",
        Other => "other",
    }
}

wire_names! {
    pub enum Contract {
        Permanent => "permanent",
        Temporary => "temporary",
    }
}

/// Declares the event types once: the enum of type tags, their wire names, and the mapping from
/// `EventKind`. The type tag doubles as the `event_type` label of the applied-events counter.
macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        wire_names! {
            /// The `type` of an event, as a small closed enum.
            pub enum EventType { $($variant => $name),* }
        }

        impl EventKind {
            pub fn event_type(&self) -> EventType {
                match self { $(EventKind::$variant { .. } => EventType::$variant),* }
            }
        }
    };
}

event_types! {
    CaseRegistered => "case.registered",
    CaseAssigned => "case.assigned",
    CaseUnassigned => "case.unassigned",
    CasePhaseChanged => "case.phase_changed",
    CaseHearingHeld => "case.hearing_held",
    CaseHearingCancelled => "case.hearing_cancelled",
    CaseDeadlineExtended => "case.deadline_extended",
    CaseSuspended => "case.suspended",
    CaseResumed => "case.resumed",
    CaseTransferred => "case.transferred",
    CaseDecided => "case.decided",
    CaseClosed => "case.closed",
    CaseReopened => "case.reopened",
    EmployeeJoined => "employee.joined",
    EmployeeUpdated => "employee.updated",
    EmployeeLeft => "employee.left",
    MentorAssigned => "mentor.assigned",
    MentorUnassigned => "mentor.unassigned",
    QualityAudit => "quality.audit",
    TargetAnnounced => "target.announced",
}

wire_names! {
    /// Why an event was rejected: a closed set, so it can be a bounded metric label.
    pub enum RejectReason {
        /// The line or element is not JSON, or not a JSON object.
        InvalidJson => "invalid_json",
        /// A required field is absent.
        MissingField => "missing_field",
        /// A field has the wrong type or an unacceptable value.
        InvalidField => "invalid_field",
        /// `type` names no known event type.
        UnknownType => "unknown_type",
        TimeInFuture => "time_in_future",
        UnknownTrack => "unknown_track",
        UnknownPhase => "unknown_phase",
        UnknownRole => "unknown_role",
        UnknownCase => "unknown_case",
        CaseExists => "case_exists",
        CaseClosed => "case_closed",
        CaseOpen => "case_open",
        CaseSuspended => "case_suspended",
        CaseNotSuspended => "case_not_suspended",
        UnknownEmployee => "unknown_employee",
        EmployeeExists => "employee_exists",
        SameEmployee => "same_employee",
        /// `target.announced` names a new target when [`MAX_TARGETS`] targets are known already.
        TooManyTargets => "too_many_targets",
        /// `case.registered` when the case ids already take `ids::MAX_ARENA_BYTES` (4 GiB).
        TooManyCases => "too_many_cases",
    }
}

/// A rejected event: the reason (a bounded label) and a sentence for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}
