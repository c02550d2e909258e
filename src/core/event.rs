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
}

/// How `case.deadline_extended` moves the deadline.
#[derive(Debug, Clone)]
pub enum Extension {
    /// Added to the current deadline with calendar arithmetic.
    By(Span),
    /// The new deadline.
    To(Timestamp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Granted,
    Rejected,
    Other,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Granted, Outcome::Rejected, Outcome::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Granted => "granted",
            Outcome::Rejected => "rejected",
            Outcome::Other => "other",
        }
    }

    pub fn parse(value: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Withdrawn,
    TransferredOut,
    Merged,
    Other,
}

impl CloseReason {
    pub const ALL: [CloseReason; 4] = [
        CloseReason::Withdrawn,
        CloseReason::TransferredOut,
        CloseReason::Merged,
        CloseReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Withdrawn => "withdrawn",
            CloseReason::TransferredOut => "transferred_out",
            CloseReason::Merged => "merged",
            CloseReason::Other => "other",
        }
    }

    pub fn parse(value: &str) -> Option<CloseReason> {
        CloseReason::ALL.into_iter().find(|o| o.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    Permanent,
    Temporary,
}

impl Contract {
    pub const ALL: [Contract; 2] = [Contract::Permanent, Contract::Temporary];

    pub fn as_str(self) -> &'static str {
        match self {
            Contract::Permanent => "permanent",
            Contract::Temporary => "temporary",
        }
    }

    pub fn parse(value: &str) -> Option<Contract> {
        Contract::ALL.into_iter().find(|o| o.as_str() == value)
    }
}

/// Declares the event types once: the enum of type tags, their wire names, and the mapping from
/// `EventKind`. The type tag doubles as the `event_type` label of the applied-events counter.
macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The `type` of an event, as a small closed enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($variant),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            pub fn parse(value: &str) -> Option<EventType> {
                match value { $($name => Some(EventType::$variant),)* _ => None }
            }
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
}

impl EventType {
    /// Position in [`EventType::ALL`], for counters kept in arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why an event was rejected: a closed set, so it can be a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The line or element is not JSON, or not a JSON object.
    InvalidJson,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong type or an unacceptable value.
    InvalidField,
    /// `type` names no known event type.
    UnknownType,
    TimeInFuture,
    UnknownTrack,
    UnknownPhase,
    UnknownRole,
    UnknownCase,
    CaseExists,
    CaseClosed,
    CaseOpen,
    CaseSuspended,
    CaseNotSuspended,
    UnknownEmployee,
    EmployeeExists,
    SameEmployee,
}

impl RejectReason {
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::InvalidJson,
        RejectReason::MissingField,
        RejectReason::InvalidField,
        RejectReason::UnknownType,
        RejectReason::TimeInFuture,
        RejectReason::UnknownTrack,
        RejectReason::UnknownPhase,
        RejectReason::UnknownRole,
        RejectReason::UnknownCase,
        RejectReason::CaseExists,
        RejectReason::CaseClosed,
        RejectReason::CaseOpen,
        RejectReason::CaseSuspended,
        RejectReason::CaseNotSuspended,
        RejectReason::UnknownEmployee,
        RejectReason::EmployeeExists,
        RejectReason::SameEmployee,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::UnknownType => "unknown_type",
            RejectReason::TimeInFuture => "time_in_future",
            RejectReason::UnknownTrack => "unknown_track",
            RejectReason::UnknownPhase => "unknown_phase",
            RejectReason::UnknownRole => "unknown_role",
            RejectReason::UnknownCase => "unknown_case",
            RejectReason::CaseExists => "case_exists",
            RejectReason::CaseClosed => "case_closed",
            RejectReason::CaseOpen => "case_open",
            RejectReason::CaseSuspended => "case_suspended",
            RejectReason::CaseNotSuspended => "case_not_suspended",
            RejectReason::UnknownEmployee => "unknown_employee",
            RejectReason::EmployeeExists => "employee_exists",
            RejectReason::SameEmployee => "same_employee",
        }
    }

    pub fn index(self) -> usize {
        self as usize
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
