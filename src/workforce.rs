//! The per-employee part of the published view, and how employees are named in /metrics.
//!
//! `workforce.employee_label` decides the `employee`/`mentor` label: the id itself, a pseudonym (the
//! first 12 hex digits of HMAC-SHA256 keyed by `workforce.pseudonym_key_file`), or no per-employee
//! series at all. Labels are cached per employee, so a pseudonym is computed once per employee, not
//! once per scrape. `limits.max_employee_series` caps the per-employee series.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::{Config, EmployeeLabel};
use crate::core::State;

/// Settings of the edge that the core does not need: thresholds, workforce limits, labels.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSettings {
    /// Every `backlogd_threshold{name}` series: `[thresholds]` plus the named limits.
    pub thresholds: Vec<(String, f64)>,
    pub max_open_cases: u32,
    pub max_mentees: u32,
    pub employee_label: EmployeeLabel,
    pub pseudonym_key: Option<Vec<u8>>,
    pub max_employee_series: usize,
    /// Windows of the rolling metrics and the quality ratio, as labels.
    pub quality_window_label: String,
    /// `report.language`: the report's language when the request names none.
    pub report_language: crate::config::ReportLanguage,
}

/// Why the edge settings cannot be built from a configuration; the text names the setting.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("workforce.pseudonym_key_file: cannot read {}: {error}", path.display())]
    PseudonymKeyUnreadable {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(
        "workforce.pseudonym_key_file: {} holds {bytes} bytes; use at least 16 random bytes",
        path.display()
    )]
    PseudonymKeyShort {
        path: std::path::PathBuf,
        bytes: usize,
    },
    #[error("workforce.pseudonym_key_file: required when workforce.employee_label = \"pseudonym\"")]
    PseudonymKeyMissing,
}

impl EdgeSettings {
    /// Reads what the edge needs from the configuration, including the pseudonym key file.
    pub fn from_config(config: &Config) -> Result<EdgeSettings, EdgeError> {
        let pseudonym_key = match (
            config.workforce.employee_label,
            &config.workforce.pseudonym_key_file,
        ) {
            (EmployeeLabel::Pseudonym, Some(path)) => {
                let key =
                    std::fs::read(path).map_err(|error| EdgeError::PseudonymKeyUnreadable {
                        path: path.clone(),
                        error,
                    })?;
                let trimmed = key.trim_ascii().to_vec();
                if trimmed.len() < 16 {
                    return Err(EdgeError::PseudonymKeyShort {
                        path: path.clone(),
                        bytes: trimmed.len(),
                    });
                }
                Some(trimmed)
            }
            (EmployeeLabel::Pseudonym, None) => return Err(EdgeError::PseudonymKeyMissing),
            _ => None,
        };
        let mut thresholds = config.thresholds.clone();
        thresholds.extend([
            (
                "max_open_cases".to_owned(),
                f64::from(config.workforce.max_open_cases),
            ),
            (
                "max_mentees".to_owned(),
                f64::from(config.mentoring.max_mentees),
            ),
            ("min_pass_ratio".to_owned(), config.quality.min_pass_ratio),
            (
                "max_audit_gap_seconds".to_owned(),
                config.quality.max_audit_gap.as_secs_f64(),
            ),
        ]);
        thresholds.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(EdgeSettings {
            thresholds,
            max_open_cases: config.workforce.max_open_cases,
            max_mentees: config.mentoring.max_mentees,
            employee_label: config.workforce.employee_label,
            pseudonym_key,
            max_employee_series: config.limits.max_employee_series as usize,
            quality_window_label: config.quality.window.label.clone(),
            report_language: config.report.language,
        })
    }
}

/// The pseudonym of an employee id: the first 12 hex digits of HMAC-SHA256(key, id).
pub fn pseudonym(key: &[u8], employee: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(employee.as_bytes());
    let digest = mac.finalize().into_bytes();
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// One active employee as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkforceRow {
    /// The label value of the per-employee series; `None` when not exported (mode `none`, or past
    /// the series cap).
    pub label: Option<Arc<str>>,
    pub role: u8,
    pub experienced: bool,
    pub open_cases: u32,
    pub mentees: u32,
    pub has_mentor: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workforce {
    pub rows: Vec<WorkforceRow>,
}

/// Builds the published rows, remembering labels between builds.
#[derive(Debug, Default)]
pub struct WorkforceBuilder {
    labels: HashMap<u32, Arc<str>>,
    dropped: HashSet<u32>,
}

impl WorkforceBuilder {
    /// Forgets cached labels (after the label mode or key changed).
    pub fn reset(&mut self) {
        self.labels.clear();
        self.dropped.clear();
    }

    /// The rows for `state`, and how many employees newly lost their per-employee series to the cap.
    pub fn build(&mut self, state: &State, edge: &EdgeSettings) -> (Workforce, u64) {
        let mut rows = Vec::new();
        let mut series = 0usize;
        let mut newly_dropped = 0u64;
        let mut dropped_now = HashSet::new();
        for row in state.employee_rows() {
            let wanted = 1 + usize::from(row.mentees > 0);
            let label = match edge.employee_label {
                EmployeeLabel::None => None,
                _ if series + wanted > edge.max_employee_series => {
                    dropped_now.insert(row.index);
                    if !self.dropped.contains(&row.index) {
                        newly_dropped += 1;
                    }
                    None
                }
                mode => {
                    series += wanted;
                    let label = self.labels.entry(row.index).or_insert_with(|| match mode {
                        EmployeeLabel::Pseudonym => Arc::from(pseudonym(
                            edge.pseudonym_key.as_deref().unwrap_or_default(),
                            row.id,
                        )),
                        _ => Arc::from(row.id),
                    });
                    Some(label.clone())
                }
            };
            rows.push(WorkforceRow {
                label,
                role: row.role,
                experienced: row.experienced,
                open_cases: row.open_cases,
                mentees: row.mentees,
                has_mentor: row.has_mentor,
            });
        }
        self.dropped = dropped_now;
        (Workforce { rows }, newly_dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonym_is_stable_hex_and_keyed() {
        let a = pseudonym(b"0123456789abcdef", "emp-1");
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, pseudonym(b"0123456789abcdef", "emp-1"));
        assert_ne!(a, pseudonym(b"0123456789abcdeX", "emp-1"));
        assert_ne!(a, pseudonym(b"0123456789abcdef", "emp-2"));
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") starts 5bdcc146bf60.
        assert_eq!(
            pseudonym(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60"
        );
    }
}
