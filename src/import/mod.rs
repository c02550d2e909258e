//! `backlogd import`: from a case table (and an employee table) to the event stream of
//! docs/events.md, for an agency whose past is a nightly export with one row per case rather than
//! an event stream (docs/backfill.md, "From a case table").
//!
//! A mapping file names the columns and the value translations; each row becomes the events its
//! dates imply (registered, assigned, phase changed, suspended and resumed, deadline extended,
//! decided, closed; joined, became experienced, mentored, left), sorted by time so that
//! `backfill --store` and `send` take them as they come. Event ids are a hash of the case (or
//! employee), the kind and the date: importing the same table twice sends duplicates, never double
//! counts. A bad row is named by file, line and column, and the other rows are converted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;

mod rows;

pub use rows::Row;

/// The mapping file: which column holds what, how dates are written, and value translations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub format: Format,
    pub cases: CaseColumns,
    pub employees: Option<EmployeeColumns>,
}

/// How the tables write their dates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Format {
    /// The zone of timestamps written without an offset (an IANA name, e.g. Europe/Amsterdam).
    pub timezone: String,
    /// strftime formats tried in order after RFC 3339, e.g. ["%d-%m-%Y %H:%M", "%d-%m-%Y"]. A
    /// format without an hour gives the day's noon, so that the event counts on its own day.
    #[serde(default)]
    pub datetime: Vec<String>,
    /// The CSV field delimiter (one byte; default `,`).
    #[serde(default)]
    pub delimiter: Option<char>,
}

/// Columns of the case table (values are header names). Only `id`, `track` and `registered` are
/// required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseColumns {
    pub id: String,
    pub track: String,
    pub registered: String,
    pub location: Option<String>,
    /// The statutory deadline when the table has one (default: the track's decision period).
    pub deadline: Option<String>,
    pub phase: Option<String>,
    /// When the case entered `phase` (default: `registered`).
    pub phase_since: Option<String>,
    pub assignee: Option<String>,
    /// When it was assigned (default: `registered`).
    pub assigned: Option<String>,
    pub suspended_from: Option<String>,
    /// When the suspension ended; empty or later than the import: still suspended.
    pub suspended_until: Option<String>,
    /// A duration (`P6M`) or a new deadline.
    pub extension: Option<String>,
    /// When the deadline was extended (default: `registered`).
    pub extended: Option<String>,
    pub decided: Option<String>,
    pub outcome: Option<String>,
    /// Who decided (default: `assignee`).
    pub decided_by: Option<String>,
    pub closed: Option<String>,
    /// Why a case was closed without a decision (`withdrawn`, `transferred_out`, `merged`,
    /// `other`; default `other`).
    pub close_reason: Option<String>,
    /// Translations of cell values: `track`, `outcome`, `close_reason`, `phase` → {cell: value}.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

/// Columns of the employee table. `id`, `role` and `joined` are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmployeeColumns {
    pub id: String,
    pub role: String,
    pub joined: String,
    /// When the employee became experienced: empty means not (yet) experienced; on or before
    /// `joined` means experienced from the start.
    pub experienced_since: Option<String>,
    pub mentor: Option<String>,
    pub left: Option<String>,
    pub contract: Option<String>,
    /// Translations of cell values: `role`, `contract` → {cell: value}.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

/// Why an import could not run at all (a bad row is not one: it is reported and skipped).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {message}")]
    Mapping { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Table { path: PathBuf, message: String },
    #[error("writing the events: {0}")]
    Write(#[source] std::io::Error),
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub cases: u64,
    pub employees: u64,
    pub events: u64,
    /// Rows skipped, each named `file:line: column: reason`.
    pub bad_rows: Vec<String>,
}

/// Reads and checks a mapping file.
pub fn read_mapping(path: &Path) -> Result<Mapping, ImportError> {
    let mapping_error = |message: String| ImportError::Mapping {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| mapping_error(e.to_string()))?;
    let mapping: Mapping = toml_from_str(&text).map_err(mapping_error)?;
    TimeZone::get(&mapping.format.timezone).map_err(|e| {
        mapping_error(format!(
            "format.timezone: {:?} is not a known time zone: {e}",
            mapping.format.timezone
        ))
    })?;
    if mapping.format.delimiter.is_some_and(|d| !d.is_ascii()) {
        return Err(mapping_error(
            "format.delimiter: must be one ASCII character".into(),
        ));
    }
    Ok(mapping)
}

/// TOML through the `config` crate the daemon's configuration already uses.
fn toml_from_str(text: &str) -> Result<Mapping, String> {
    ::config::Config::builder()
        .add_source(::config::File::from_str(text, ::config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| e.to_string())
}

/// Converts the tables into events, sorted by time, written as NDJSON to `out`. `now` bounds the
/// suspensions still running (an end after it is not yet a `case.resumed`).
pub fn run(
    mapping: &Mapping,
    cases: &Path,
    employees: Option<&Path>,
    now: Timestamp,
    progress: bool,
    mut out: impl Write,
) -> Result<Summary, ImportError> {
    // The employees are read first: the cases' bytes come after theirs.
    let employee_bytes = crate::progress::bytes_of(employees);
    let progress = crate::progress::Progress::new(
        employee_bytes + crate::progress::bytes_of([cases]),
        "rows",
        !progress,
    );
    // The zone was checked by `read_mapping`; a mapping built in code falls back to UTC.
    let tz = TimeZone::get(&mapping.format.timezone).unwrap_or(TimeZone::UTC);
    let dates = rows::Dates {
        tz,
        formats: &mapping.format.datetime,
    };
    let mut summary = Summary::default();
    let mut events: Vec<rows::Event> = Vec::new();
    if let Some(path) = employees {
        let Some(columns) = &mapping.employees else {
            return Err(ImportError::Mapping {
                path: path.to_owned(),
                message: "--employees needs an [employees] table in the mapping".into(),
            });
        };
        rows::read_table(path, mapping.format.delimiter, &progress, 0, |row| {
            summary.employees += 1;
            rows::employee_events(columns, &dates, row, now, &mut events)
        })
        .map(|bad| summary.bad_rows.extend(bad))?;
    }
    rows::read_table(
        cases,
        mapping.format.delimiter,
        &progress,
        employee_bytes,
        |row| {
            summary.cases += 1;
            rows::case_events(&mapping.cases, &dates, row, now, &mut events)
        },
    )
    .map(|bad| summary.bad_rows.extend(bad))?;
    // Time order; at one instant, what makes the next possible first (an employee joins before
    // a case is assigned to them, a case is registered before it is decided).
    progress.finish();
    events.sort_by_key(|event| (event.time, event.rank));
    for event in &events {
        writeln!(out, "{}", event.json).map_err(ImportError::Write)?;
    }
    out.flush().map_err(ImportError::Write)?;
    summary.events = events.len() as u64;
    Ok(summary)
}

#[cfg(test)]
mod tests;
