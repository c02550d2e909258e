//! `backlogd alert-replay`: evaluates every alerting rule of a rules file over a past time range
//! against a Prometheus (typically one started on blocks built by `backlogd backfill`), with
//! `query_range` on each rule's expression, and applies `for:` and `keep_firing_for:` as Prometheus'
//! rule manager would (`timeline`). Prints when each alert was pending, firing and resolved.
//!
//! Recording rules are not evaluated into series: their names in alerting expressions are replaced
//! by their expressions (`rules::Rules::inlined`), so a TSDB holding only backfilled samples
//! suffices. `--no-inline` queries the expressions as written (when the recorded series exist).

pub mod prometheus;
pub mod rules;
pub mod timeline;

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};

use self::prometheus::{Prometheus, QueryError};
use self::rules::{AlertRule, Rules, RulesError};
use self::timeline::{Labels, Timeline};

/// The most evaluations of one rule a replay makes (ten years at 5 minutes; 106 requests of
/// `prometheus::MAX_POINTS` each).
pub const MAX_EVALUATIONS: u64 = 1_060_000;

/// What to replay.
#[derive(Debug, Clone)]
pub struct Options {
    pub prometheus: String,
    /// The certificates to trust for an https:// Prometheus, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// The bound on each query request (`--timeout`).
    pub timeout: std::time::Duration,
    pub rules: PathBuf,
    pub from: Timestamp,
    pub to: Timestamp,
    pub step: SignedDuration,
    /// Only these alerts (all when empty).
    pub alerts: Vec<String>,
    /// Only rules with these static labels, e.g. `source=data` (all when empty).
    pub labels: Vec<(String, String)>,
    /// Query the expressions as written, recording rule names and all.
    pub no_inline: bool,
    /// Also list alerts that were pending but never fired.
    pub pending: bool,
}

/// One episode of one alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    pub alert: String,
    pub severity: Option<String>,
    /// The alert's labels as Prometheus would send them (expression result without `__name__`,
    /// the rule's labels, `alertname`).
    pub labels: BTreeMap<String, String>,
    /// The labels that tell this alert's series apart (the expression's result labels).
    #[serde(skip)]
    pub series: BTreeMap<String, String>,
    pub pending_from: String,
    pub firing_from: Option<String>,
    /// When a firing alert was resolved; `None` if it never fired or still fires at `--to`.
    pub resolved_at: Option<String>,
    /// When a pending alert that never fired stopped being pending.
    pub pending_until: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("--step {0:#}: the step must be at least a millisecond")]
    BadStep(SignedDuration),
    #[error("--from {from} is later than --to {to}")]
    EmptyRange { from: Timestamp, to: Timestamp },
    #[error("{0}")]
    Rules(#[from] RulesError),
    #[error("alert {alert}: {source}")]
    Query {
        alert: String,
        #[source]
        source: QueryError,
    },
    #[error("{0}")]
    Client(QueryError),
    #[error(
        "--from, --to and --step give {evaluations} evaluations of each rule, more than {MAX_EVALUATIONS}; use a larger --step or a shorter range"
    )]
    TooManyEvaluations { evaluations: u64 },
    #[error("--alert {0}: no alerting rule of that name in the rules file")]
    UnknownAlert(String),
}

/// Replays the rules and returns every episode, ordered by when it started.
pub fn replay(options: &Options) -> Result<Vec<Row>, ReplayError> {
    let step = options.step.as_millis() as i64;
    if step < 1 {
        return Err(ReplayError::BadStep(options.step));
    }
    if options.from > options.to {
        return Err(ReplayError::EmptyRange {
            from: options.from,
            to: options.to,
        });
    }
    let evaluations = (i128::from(options.to.as_millisecond())
        - i128::from(options.from.as_millisecond()))
        / i128::from(step)
        + 1;
    if evaluations > i128::from(MAX_EVALUATIONS) {
        return Err(ReplayError::TooManyEvaluations {
            evaluations: u64::try_from(evaluations).unwrap_or(u64::MAX),
        });
    }
    let rules = Rules::load(&options.rules)?;
    for name in &options.alerts {
        if !rules.alerts.iter().any(|a| &a.name == name) {
            return Err(ReplayError::UnknownAlert(name.clone()));
        }
    }
    let client = Prometheus::new(
        &options.prometheus,
        options.ca_file.as_deref(),
        options.timeout,
    )
    .map_err(ReplayError::Client)?;
    let (from, to) = (options.from.as_millisecond(), options.to.as_millisecond());
    let step_text = rules::format_prometheus_duration(step);
    let mut rows = Vec::new();
    for rule in rules.alerts.iter().filter(|rule| selected(options, rule)) {
        let expr = if options.no_inline {
            rule.expr.clone()
        } else {
            rules.inlined(rule, &step_text)?
        };
        let series = client
            .query_range(&expr, from, to, step)
            .map_err(|source| ReplayError::Query {
                alert: rule.name.clone(),
                source,
            })?;
        rows.extend(episodes(rule, &series, from, to, step, options.pending));
    }
    rows.sort_by(|a, b| {
        (&a.pending_from, &a.alert, &a.labels).cmp(&(&b.pending_from, &b.alert, &b.labels))
    });
    Ok(rows)
}

fn selected(options: &Options, rule: &AlertRule) -> bool {
    (options.alerts.is_empty() || options.alerts.contains(&rule.name))
        && options
            .labels
            .iter()
            .all(|(k, v)| rule.labels.get(k) == Some(v))
}

/// Runs `rule`'s state machine over the evaluations `from, from + step, ... <= to` given the
/// instants at which each series of its expression had a value.
pub fn episodes(
    rule: &AlertRule,
    series: &[prometheus::Series],
    from: i64,
    to: i64,
    step: i64,
    pending: bool,
) -> Vec<Row> {
    let evaluations = ((to - from) / step + 1) as usize;
    let mut present: Vec<Vec<usize>> = vec![Vec::new(); evaluations];
    let mut alert_labels: Vec<Labels> = Vec::with_capacity(series.len());
    for (index, one) in series.iter().enumerate() {
        let mut labels = one.labels.clone();
        labels.remove("__name__");
        labels.extend(rule.labels.clone());
        labels.insert("alertname".to_owned(), rule.name.clone());
        alert_labels.push(labels);
        for &at in &one.at {
            let k = (at - from).div_euclid(step);
            if (0..evaluations as i64).contains(&k) && from + k * step == at {
                present[k as usize].push(index);
            }
        }
    }
    let mut timeline = Timeline::new(rule.hold_ms, rule.keep_firing_ms);
    for (k, indices) in present.iter().enumerate() {
        timeline.evaluate(
            from + k as i64 * step,
            indices.iter().map(|&i| &alert_labels[i]),
        );
    }
    let time = |ms: i64| {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| ms.to_string())
    };
    timeline
        .finish()
        .into_iter()
        .filter(|e| pending || e.firing_from.is_some())
        .map(|e| {
            let series = e
                .labels
                .iter()
                .filter(|(k, _)| *k != "alertname" && !rule.labels.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Row {
                alert: rule.name.clone(),
                severity: e.labels.get("severity").cloned(),
                series,
                pending_from: time(e.pending_from),
                firing_from: e.firing_from.map(time),
                resolved_at: e.firing_from.and(e.ended_at).map(time),
                pending_until: if e.firing_from.is_none() {
                    e.ended_at.map(time)
                } else {
                    None
                },
                labels: e.labels,
            }
        })
        .collect()
}

/// The timeline as a table for people.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "alert",
        "labels",
        "first pending",
        "firing from",
        "resolved at",
        "severity",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            let labels = row
                .series
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(",");
            [
                row.alert.clone(),
                if labels.is_empty() {
                    "-".into()
                } else {
                    labels
                },
                row.pending_from.clone(),
                row.firing_from
                    .clone()
                    .unwrap_or_else(|| "(never fired)".into()),
                match (&row.firing_from, &row.resolved_at, &row.pending_until) {
                    (_, Some(at), _) => at.clone(),
                    (Some(_), None, _) => "(firing at --to)".into(),
                    (None, _, Some(until)) => format!("(pending until {until})"),
                    (None, _, None) => "(pending at --to)".into(),
                },
                row.severity.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &cells {
        line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_carry_the_alert_labels_and_times() {
        let rule = AlertRule {
            group: "g".into(),
            name: "OverdueCasesHigh".into(),
            expr: "x > 1".into(),
            hold_ms: 2 * 3_600_000,
            keep_firing_ms: 3_600_000,
            labels: BTreeMap::from([("severity".to_owned(), "ticket".to_owned())]),
        };
        let hour = 3_600_000;
        let from = 1_700_000_000_000 - 1_700_000_000_000 % hour;
        let series = vec![prometheus::Series {
            labels: Labels::from([
                ("__name__".to_owned(), "x".to_owned()),
                ("instance".to_owned(), "a".to_owned()),
            ]),
            // Present at hours 1 to 4 and 6 (a one-hour gap, bridged by keep_firing_for) and
            // absent from 7 on.
            at: [1, 2, 3, 4, 6].iter().map(|h| from + h * hour).collect(),
        }];
        let rows = episodes(&rule, &series, from, from + 9 * hour, hour, false);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        let at = |h: i64| {
            Timestamp::from_millisecond(from + h * hour)
                .unwrap()
                .to_string()
        };
        assert_eq!(row.pending_from, at(1));
        assert_eq!(row.firing_from, Some(at(3)));
        // Absent at 7 (kept: 0 h < 1 h), resolved at 8.
        assert_eq!(row.resolved_at, Some(at(8)));
        assert_eq!(row.severity.as_deref(), Some("ticket"));
        assert_eq!(row.labels["alertname"], "OverdueCasesHigh");
        assert!(!row.labels.contains_key("__name__"));
        assert_eq!(
            row.series,
            BTreeMap::from([("instance".to_owned(), "a".to_owned())])
        );
        let table = table(&rows);
        assert!(table.starts_with("alert "), "{table}");
        assert!(table.contains(r#"instance="a""#), "{table}");
    }
}
