//! A Prometheus rules file as `alert-replay` needs it: the alerting rules (name, expression, `for`,
//! `keep_firing_for`, labels) and the recording rules, whose names are replaced in the alerting
//! expressions by their own expressions, because a TSDB built by backfill holds no recorded series.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How deep recording rules may refer to recording rules.
const MAX_INLINE_DEPTH: usize = 8;

#[derive(Debug, Deserialize)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
struct RawGroup {
    name: String,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
struct RawRule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    hold: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// One alerting rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    pub group: String,
    pub name: String,
    pub expr: String,
    /// `for:` in milliseconds (0 when absent).
    pub hold_ms: i64,
    /// `keep_firing_for:` in milliseconds (0 when absent).
    pub keep_firing_ms: i64,
    pub labels: BTreeMap<String, String>,
}

/// The rules of one file.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub alerts: Vec<AlertRule>,
    /// Recording rule name → expression.
    pub recordings: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a Prometheus rules file: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: group {group:?}, rule {rule:?}: {message}")]
    Rule {
        path: PathBuf,
        group: String,
        rule: String,
        message: String,
    },
    #[error(
        "alert {alert}: recording rule {record} is used with label matchers ({record}{{…}}), which cannot be replaced by its expression; give --no-inline after building its series with promtool tsdb create-blocks-from rules"
    )]
    MatchersOnRecording { alert: String, record: String },
    #[error("alert {alert}: recording rules refer to each other more than {MAX_INLINE_DEPTH} deep")]
    TooDeep { alert: String },
}

impl Rules {
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Rules::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Rules, RulesError> {
        let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| RulesError::Yaml {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut rules = Rules::default();
        for group in raw.groups {
            for rule in group.rules {
                let bad = |name: &str, message: String| RulesError::Rule {
                    path: path.to_owned(),
                    group: group.name.clone(),
                    rule: name.to_owned(),
                    message,
                };
                match (rule.alert, rule.record) {
                    (Some(name), None) => {
                        let duration = |field: &str, value: &Option<String>| {
                            value
                                .as_deref()
                                .map(parse_prometheus_duration)
                                .transpose()
                                .map(Option::unwrap_or_default)
                                .map_err(|e| bad(&name, format!("{field}: {e}")))
                        };
                        let hold_ms = duration("for", &rule.hold)?;
                        let keep_firing_ms = duration("keep_firing_for", &rule.keep_firing_for)?;
                        rules.alerts.push(AlertRule {
                            group: group.name.clone(),
                            name,
                            expr: rule.expr,
                            hold_ms,
                            keep_firing_ms,
                            labels: rule.labels,
                        });
                    }
                    (None, Some(name)) => {
                        rules.recordings.insert(name, rule.expr);
                    }
                    (alert, record) => {
                        let name = alert.or(record).unwrap_or_default();
                        return Err(bad(&name, "needs exactly one of alert and record".into()));
                    }
                }
            }
        }
        Ok(rules)
    }

    /// `rule`'s expression with every recording rule name replaced by its expression: `name` by
    /// `(expr)`, and `name[range]` by the subquery `(expr)[range:step]` (an `offset` after it
    /// applies to the subquery). `step` is a Prometheus duration such as `1h`.
    pub fn inlined(&self, rule: &AlertRule, step: &str) -> Result<String, RulesError> {
        let mut expr = rule.expr.clone();
        for _ in 0..MAX_INLINE_DEPTH {
            let (next, replaced) = self.inline_once(&rule.name, &expr, step)?;
            if !replaced {
                return Ok(next);
            }
            expr = next;
        }
        Err(RulesError::TooDeep {
            alert: rule.name.clone(),
        })
    }

    fn inline_once(
        &self,
        alert: &str,
        expr: &str,
        step: &str,
    ) -> Result<(String, bool), RulesError> {
        let bytes = expr.as_bytes();
        let mut out = String::with_capacity(expr.len() * 2);
        let mut replaced = false;
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c == b'"' || c == b'\'' || c == b'`' {
                let end = string_end(bytes, i);
                out.push_str(&expr[i..end]);
                i = end;
            } else if c == b'#' {
                let end = expr[i..].find('\n').map_or(bytes.len(), |n| i + n);
                i = end;
            } else if c == b'{' {
                // Label matchers of a selector: names and strings only.
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'}' {
                    j = if matches!(bytes[j], b'"' | b'\'' | b'`') {
                        string_end(bytes, j)
                    } else {
                        j + 1
                    };
                }
                let end = (j + 1).min(bytes.len());
                out.push_str(&expr[i..end]);
                i = end;
            } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
                {
                    i += 1;
                }
                let name = &expr[start..i];
                let Some(recorded) = self.recordings.get(name) else {
                    out.push_str(name);
                    continue;
                };
                replaced = true;
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                match bytes.get(j) {
                    Some(b'{') => {
                        return Err(RulesError::MatchersOnRecording {
                            alert: alert.to_owned(),
                            record: name.to_owned(),
                        });
                    }
                    Some(b'[') => {
                        let close = expr[j..].find(']').map_or(bytes.len(), |n| j + n);
                        let range = expr[j + 1..close].trim();
                        if range.contains(':') {
                            // Already a subquery of the recorded series.
                            out.push_str(&format!("({})[{range}]", recorded.trim()));
                        } else {
                            out.push_str(&format!("({})[{range}:{step}]", recorded.trim()));
                        }
                        i = (close + 1).min(bytes.len());
                    }
                    _ => out.push_str(&format!("({})", recorded.trim())),
                }
            } else {
                // Any other character, whole (the expression is UTF-8).
                let ch = expr[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
        Ok((out, replaced))
    }
}

/// The index just past the string literal starting at `start` (its quote), escapes honoured.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == b'\\' && quote != b'`' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// A Prometheus duration (`1d`, `1h30m`, `5m`, `90s`, `500ms`, `1w`, `1y`) in milliseconds.
pub fn parse_prometheus_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    let mut total: i64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{text:?} is not a duration such as 5m, 1h or 1d"));
        }
        let number: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            other => return Err(format!("{text:?}: unknown unit {other:?}")),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(unit_ms)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("{text:?}: too long"))?;
    }
    Ok(total)
}

/// Milliseconds as the shortest Prometheus duration (`1h`, `90s`, `1d`, `500ms`).
pub fn format_prometheus_duration(ms: i64) -> String {
    for (unit, size) in [
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config/prometheus/backlogd-rules.yml");

    #[test]
    fn the_shipped_rules_load_and_inline() {
        let rules = Rules::parse(Path::new("backlogd-rules.yml"), SHIPPED).unwrap();
        assert!(rules.alerts.len() > 20, "{}", rules.alerts.len());
        assert!(
            rules
                .recordings
                .contains_key("backlogd_track:cases_overdue:sum")
        );
        let renewed = rules
            .alerts
            .iter()
            .find(|a| a.name == "RenewedBacklog")
            .unwrap();
        assert_eq!(
            (renewed.hold_ms, renewed.keep_firing_ms),
            (86_400_000, 86_400_000)
        );
        assert_eq!(renewed.labels["severity"], "page");
        for alert in &rules.alerts {
            let inlined = rules.inlined(alert, "1h").unwrap();
            for name in rules.recordings.keys() {
                assert!(
                    !inlined.contains(name.as_str()),
                    "{}: {inlined}",
                    alert.name
                );
            }
        }
        let inlined = rules.inlined(renewed, "1h").unwrap();
        assert!(
            inlined.contains(
                "avg_over_time((sum without (location) (backlogd_cases_overdue))[7d:1h] offset 7d)"
            ),
            "{inlined}"
        );
    }

    #[test]
    fn inlining_leaves_strings_and_matchers_alone() {
        let rules = Rules {
            alerts: vec![],
            recordings: BTreeMap::from([("a:b:sum".to_owned(), "sum(x)".to_owned())]),
        };
        let alert = |expr: &str| AlertRule {
            group: "g".into(),
            name: "A".into(),
            expr: expr.into(),
            hold_ms: 0,
            keep_firing_ms: 0,
            labels: BTreeMap::new(),
        };
        assert_eq!(
            rules
                .inlined(
                    &alert(r#"label_replace(a:b:sum, "l", "a:b:sum", "", "") > 1"#),
                    "5m"
                )
                .unwrap(),
            r#"label_replace((sum(x)), "l", "a:b:sum", "", "") > 1"#
        );
        assert_eq!(
            rules.inlined(&alert("rate(a:b:sum[5m:1m])"), "5m").unwrap(),
            "rate((sum(x))[5m:1m])"
        );
        assert!(matches!(
            rules.inlined(&alert(r#"a:b:sum{job="x"}"#), "5m"),
            Err(RulesError::MatchersOnRecording { .. })
        ));
    }

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse_prometheus_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_prometheus_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_prometheus_duration("0"), Ok(0));
        assert!(parse_prometheus_duration("1x").is_err());
        assert!(parse_prometheus_duration("h").is_err());
        assert_eq!(format_prometheus_duration(3_600_000), "1h");
        assert_eq!(format_prometheus_duration(90_000), "90s");
        assert_eq!(format_prometheus_duration(86_400_000), "1d");
    }
}
