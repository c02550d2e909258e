//! One table row → its events: reading the CSV, the cells, the dates, and the events each row
//! implies.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use super::{CaseColumns, EmployeeColumns, ImportError};

/// One event to write: its time, its rank among events of the same instant, its JSON line.
pub(super) struct Event {
    pub time: Timestamp,
    pub rank: u8,
    pub json: String,
}

/// How the table writes its dates.
pub(super) struct Dates<'a> {
    pub tz: TimeZone,
    pub formats: &'a [String],
}

impl Dates<'_> {
    /// RFC 3339 as written, else each format in order; without an offset, in the mapping's zone;
    /// without an hour, the day's noon.
    fn parse(&self, text: &str) -> Result<Timestamp, String> {
        if let Ok(at) = crate::instant::parse_rfc3339(text) {
            return Ok(at);
        }
        for format in self.formats {
            let Ok(tm) = jiff::fmt::strtime::parse(format, text) else {
                continue;
            };
            if let Some(offset) = tm.offset()
                && let Ok(dt) = tm.to_datetime()
            {
                return offset.to_timestamp(dt).map_err(|e| e.to_string());
            }
            let civil = if tm.hour().is_some() {
                tm.to_datetime()
            } else {
                tm.to_date().map(|d| d.at(12, 0, 0, 0))
            };
            if let Ok(civil) = civil {
                return civil
                    .to_zoned_datetime(self.tz.clone())
                    .map(|z| z.timestamp())
                    .map_err(|e| e.to_string());
            }
        }
        Err(if self.formats.is_empty() {
            format!("{text:?} is not RFC 3339; give format.datetime in the mapping for other forms")
        } else {
            format!(
                "{text:?} is neither RFC 3339 nor one of format.datetime {:?}",
                self.formats
            )
        })
    }
}

/// A row: its line in the file and its cells by header name.
pub struct Row<'a> {
    pub line: u64,
    headers: &'a csv::StringRecord,
    record: &'a csv::StringRecord,
}

/// A cell's problem: its column and why.
pub(super) struct Bad {
    column: String,
    reason: String,
}

fn bad(column: &str, reason: impl Into<String>) -> Bad {
    Bad {
        column: column.to_owned(),
        reason: reason.into(),
    }
}

impl Row<'_> {
    /// The trimmed cell of `column`, `None` when empty.
    fn get(&self, column: &str) -> Option<&str> {
        let index = self.headers.iter().position(|h| h.trim() == column)?;
        self.record
            .get(index)
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
    }

    fn required(&self, column: &str) -> Result<&str, Bad> {
        self.get(column).ok_or_else(|| bad(column, "empty"))
    }

    fn optional(&self, column: Option<&String>) -> Option<(&str, String)> {
        let column = column?;
        self.get(column).map(|cell| (cell, column.clone()))
    }

    fn required_time(&self, dates: &Dates, column: &str) -> Result<Timestamp, Bad> {
        self.time(dates, column)?
            .ok_or_else(|| bad(column, "empty"))
    }

    fn time(&self, dates: &Dates, column: &str) -> Result<Option<Timestamp>, Bad> {
        self.get(column)
            .map(|cell| dates.parse(cell).map_err(|reason| bad(column, reason)))
            .transpose()
    }
}

/// Reads every row of `path`, handing each to `convert`; returns the bad rows, named. A column the
/// mapping names that the header lacks is caught by the first row that needs it.
pub(super) fn read_table(
    path: &Path,
    delimiter: Option<char>,
    progress: &crate::progress::Progress,
    bytes_before: u64,
    mut convert: impl FnMut(&Row) -> Result<(), Bad>,
) -> Result<Vec<String>, ImportError> {
    let table_error = |message: String| ImportError::Table {
        path: path.to_owned(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter.map_or(b',', |d| d as u8))
        .flexible(true)
        .from_path(path)
        .map_err(|e| table_error(e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| table_error(format!("the header line: {e}")))?
        .clone();
    let mut bad_rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let (line, byte) = record.position().map_or((0, 0), |p| (p.line(), p.byte()));
                if line.is_multiple_of(1024) {
                    progress.advance(bytes_before + byte, 1024);
                }
                let row = Row {
                    line,
                    headers: &headers,
                    record: &record,
                };
                if let Err(problem) = convert(&row) {
                    bad_rows.push(format!(
                        "{}:{line}: column {:?}: {}",
                        path.display(),
                        problem.column,
                        problem.reason
                    ));
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bad_rows.push(format!("{}:{line}: {e}", path.display()));
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    return Err(table_error(format!("line {line}: {e}")));
                }
            }
        }
    }
    Ok(bad_rows)
}

/// A value through the mapping's translations of `what`, else as written.
fn translate<'a>(
    values: &'a BTreeMap<String, BTreeMap<String, String>>,
    what: &str,
    cell: &'a str,
) -> &'a str {
    values
        .get(what)
        .and_then(|map| map.get(cell))
        .map_or(cell, String::as_str)
}

/// A deterministic event id: the subject, the kind and the instant, hashed.
fn event_id(subject: &str, kind: &str, at: Timestamp) -> String {
    let text = format!("{subject}\u{0}{kind}\u{0}{}", at.as_nanosecond());
    format!(
        "import-{:032x}",
        xxhash_rust::xxh3::xxh3_128(text.as_bytes())
    )
}

fn push(events: &mut Vec<Event>, subject: &str, kind: &str, rank: u8, at: Timestamp, data: Value) {
    let json = json!({
        "specversion": "1.0",
        "id": event_id(subject, kind, at),
        "type": kind,
        "source": "backlogd-import",
        "time": at.to_string(),
        "data": data,
    });
    events.push(Event {
        time: at,
        rank,
        json: json.to_string(),
    });
}

/// The events of one case row: all of them, or none when a cell is bad.
pub(super) fn case_events(
    columns: &CaseColumns,
    dates: &Dates,
    row: &Row,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<(), Bad> {
    let mut out = Vec::new();
    let case = row.required(&columns.id)?;
    let track = translate(&columns.values, "track", row.required(&columns.track)?);
    let registered = row.required_time(dates, &columns.registered)?;
    let at_or_registered = |column: Option<&String>| -> Result<Timestamp, Bad> {
        match column {
            Some(column) => Ok(row.time(dates, column)?.unwrap_or(registered)),
            None => Ok(registered),
        }
    };
    let mut data = Map::new();
    data.insert("case".into(), json!(case));
    data.insert("track".into(), json!(track));
    if let Some((location, _)) = row.optional(columns.location.as_ref()) {
        data.insert("location".into(), json!(location));
    }
    if let Some(column) = &columns.deadline
        && let Some(deadline) = row.time(dates, column)?
    {
        data.insert("deadline".into(), json!(deadline.to_string()));
    }
    push(
        &mut out,
        case,
        "case.registered",
        3,
        registered,
        Value::Object(data),
    );
    if let Some((phase, _)) = row.optional(columns.phase.as_ref()) {
        let phase = translate(&columns.values, "phase", phase);
        let at = at_or_registered(columns.phase_since.as_ref())?;
        push(
            &mut out,
            case,
            "case.phase_changed",
            5,
            at,
            json!({"case": case, "phase": phase}),
        );
    }
    let assignee = row.optional(columns.assignee.as_ref()).map(|(a, _)| a);
    if let Some(employee) = assignee {
        let at = at_or_registered(columns.assigned.as_ref())?;
        push(
            &mut out,
            case,
            "case.assigned",
            4,
            at,
            json!({"case": case, "employee": employee}),
        );
    }
    if let Some(column) = &columns.extension
        && let Some(extension) = row.get(column)
    {
        let at = at_or_registered(columns.extended.as_ref())?;
        let data = if extension.starts_with('P') {
            extension
                .parse::<jiff::Span>()
                .map_err(|e| bad(column, format!("{extension:?} is not a duration: {e}")))?;
            json!({"case": case, "by": extension})
        } else {
            let deadline = dates
                .parse(extension)
                .map_err(|reason| bad(column, reason))?;
            json!({"case": case, "deadline": deadline.to_string()})
        };
        push(&mut out, case, "case.deadline_extended", 7, at, data);
    }
    if let Some(column) = &columns.suspended_from
        && let Some(from) = row.time(dates, column)?
    {
        push(
            &mut out,
            case,
            "case.suspended",
            6,
            from,
            json!({"case": case}),
        );
        let until = match &columns.suspended_until {
            Some(column) => row.time(dates, column)?,
            None => None,
        };
        if let Some(until) = until.filter(|&until| until <= now) {
            push(
                &mut out,
                case,
                "case.resumed",
                8,
                until,
                json!({"case": case}),
            );
        }
    }
    if let Some(column) = &columns.decided
        && let Some(decided) = row.time(dates, column)?
    {
        let outcome_column = columns.outcome.as_deref().ok_or_else(|| {
            bad(
                column,
                "decided, but the mapping names no cases.outcome column",
            )
        })?;
        let outcome = translate(&columns.values, "outcome", row.required(outcome_column)?);
        let decided_by = match &columns.decided_by {
            Some(column) => row.get(column).or(assignee),
            None => assignee,
        }
        .ok_or_else(|| {
            bad(
                columns.decided_by.as_deref().unwrap_or(column),
                "decided, but no decider (cases.decided_by) nor assignee",
            )
        })?;
        push(
            &mut out,
            case,
            "case.decided",
            9,
            decided,
            json!({"case": case, "outcome": outcome, "decided_by": decided_by}),
        );
    } else if let Some(column) = &columns.closed
        && let Some(closed) = row.time(dates, column)?
    {
        let reason = row
            .optional(columns.close_reason.as_ref())
            .map_or("other", |(reason, _)| {
                translate(&columns.values, "close_reason", reason)
            });
        push(
            &mut out,
            case,
            "case.closed",
            10,
            closed,
            json!({"case": case, "reason": reason}),
        );
    }
    events.append(&mut out);
    Ok(())
}

/// The events of one employee row: all of them, or none when a cell is bad.
pub(super) fn employee_events(
    columns: &EmployeeColumns,
    dates: &Dates,
    row: &Row,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> Result<(), Bad> {
    let mut out = Vec::new();
    let employee = row.required(&columns.id)?;
    let role = translate(&columns.values, "role", row.required(&columns.role)?);
    let joined = row.required_time(dates, &columns.joined)?;
    let experienced_since = match &columns.experienced_since {
        Some(column) => row.time(dates, column)?.filter(|&at| at <= now),
        None => None,
    };
    let experienced = experienced_since.is_some_and(|at| at <= joined);
    let mut data = Map::new();
    data.insert("employee".into(), json!(employee));
    data.insert("role".into(), json!(role));
    data.insert("experienced".into(), json!(experienced));
    data.insert("since".into(), json!(joined.to_string()));
    if let Some((contract, _)) = row.optional(columns.contract.as_ref()) {
        data.insert(
            "contract".into(),
            json!(translate(&columns.values, "contract", contract)),
        );
    }
    push(
        &mut out,
        employee,
        "employee.joined",
        0,
        joined,
        Value::Object(data),
    );
    if let Some(at) = experienced_since.filter(|&at| at > joined) {
        push(
            &mut out,
            employee,
            "employee.updated",
            1,
            at,
            json!({"employee": employee, "experienced": true}),
        );
    }
    if let Some((mentor, _)) = row.optional(columns.mentor.as_ref())
        && !experienced
    {
        // Mentored from the start until experienced (or leaving), the usual reading of one column.
        push(
            &mut out,
            employee,
            "mentor.assigned",
            2,
            joined,
            json!({"mentor": mentor, "mentee": employee}),
        );
    }
    if let Some(column) = &columns.left
        && let Some(left) = row.time(dates, column)?
        && left <= now
    {
        push(
            &mut out,
            employee,
            "employee.left",
            11,
            left,
            json!({"employee": employee}),
        );
    }
    events.append(&mut out);
    Ok(())
}
