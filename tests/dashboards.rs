//! The Grafana dashboards in `dashboards/` are what the generator (`examples/dashboards/`) writes,
//! and they keep the rules of the operations review: every query scoped to the selected daemon,
//! stable uids, no overlapping panels, colours from `backlogd_threshold` or explained, a unit and a
//! description on every panel, runbook links that resolve, annotations for alerts, reloads and
//! restarts, and per-day bars one day apart.

#[path = "../examples/dashboards/main.rs"]
mod generator;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

const UIDS: [&str; 4] = [
    "backlogd-overview",
    "backlogd-workforce",
    "backlogd-quality",
    "backlogd-internals",
];
const JOB: &str = r#"job=~"$job""#;
const INSTANCE: &str = r#"instance=~"$instance""#;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// The checked-in dashboards: (file name, JSON).
fn dashboards() -> Vec<(String, Value)> {
    let mut found: Vec<(String, Value)> = std::fs::read_dir(dashboards_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                json,
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(found.len(), 4, "four dashboards in dashboards/");
    found
}

/// Every panel of a dashboard but the rows, including those inside collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            out.extend(panel["panels"].as_array().unwrap());
        } else {
            out.push(panel);
        }
    }
    out
}

fn title(panel: &Value) -> &str {
    panel["title"].as_str().unwrap_or("?")
}

/// Every `expr` anywhere in a dashboard: panel targets and annotations.
fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => exprs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| exprs(item, out)),
        _ => {}
    }
}

#[test]
fn checked_in_dashboards_are_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let written = generator::write_all(dir.path()).unwrap();
    let mut names = BTreeSet::new();
    for path in written {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let generated = std::fs::read_to_string(&path).unwrap();
        let checked_in = std::fs::read_to_string(dashboards_dir().join(&name)).unwrap_or_default();
        assert!(
            generated == checked_in,
            "dashboards/{name} is not what the generator writes (edited by hand, or the \
             declarations in examples/dashboards/ changed): run `{}` to regenerate",
            generator::REGENERATE
        );
        names.insert(name);
    }
    let on_disk: BTreeSet<String> = dashboards().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        on_disk,
        names,
        "dashboards/ holds JSON the generator does not write: declare it in examples/dashboards/ \
         and run `{}`",
        generator::REGENERATE
    );
}

#[test]
fn the_generator_scopes_every_metric_selector() {
    let scope = generator::grafana::SCOPE;
    assert_eq!(
        generator::grafana::scoped(
            r#"sum by (track) (increase(m_total{a="b}"}[1d])) / on () group_left () (max(t{name="x"}) > 0)"#
        ),
        format!(
            r#"sum by (track) (increase(m_total{{{scope}, a="b}}"}}[1d])) / on () group_left () (max(t{{{scope}, name="x"}}) > 0)"#
        )
    );
    assert_eq!(
        generator::grafana::scoped(
            "up and on (job, instance) last_over_time(info[1d]) or time() - s < +Inf"
        ),
        format!(
            "up{{{scope}}} and on (job, instance) last_over_time(info{{{scope}}}[1d]) or time() - s{{{scope}}} < +Inf"
        )
    );
    assert_eq!(
        generator::grafana::scoped(
            "histogram_quantile(0.9, sum without (le) (rate(h_bucket{}[5m])))"
        ),
        format!("histogram_quantile(0.9, sum without (le) (rate(h_bucket{{{scope}}}[5m])))")
    );
}

/// The metric selectors of `expr` (names outside strings, not followed by `(`), each with its
/// matchers (`None` when it has none).
fn selectors(expr: &str) -> Vec<(String, Option<String>)> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '{' {
            // Matchers of a selector already recorded: skip them.
            while i < chars.len() && chars[i] != '}' {
                if chars[i] == '"' {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        i += if chars[i] == '\\' { 2 } else { 1 };
                    }
                }
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let is_metric = word.starts_with("backlogd_")
                || word.starts_with("process_")
                || word.starts_with("scrape_")
                || word == "up"
                || word == "ALERTS";
            if is_metric && chars.get(i) != Some(&'(') {
                let matchers = (chars.get(i) == Some(&'{')).then(|| {
                    let end = (i..chars.len()).find(|&j| chars[j] == '}').unwrap();
                    chars[i + 1..end].iter().collect::<String>()
                });
                out.push((word, matchers));
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn every_query_selects_the_chosen_job_and_instance() {
    for (name, dashboard) in dashboards() {
        let mut all = Vec::new();
        exprs(&dashboard, &mut all);
        assert!(all.len() >= 10, "{name}: only {} queries", all.len());
        for expr in &all {
            assert!(
                expr.contains(JOB) && expr.contains(INSTANCE),
                "{name}: query without {JOB},{INSTANCE}: {expr}"
            );
            let found = selectors(expr);
            assert!(!found.is_empty(), "{name}: no metric in {expr}");
            for (metric, matchers) in found {
                let matchers = matchers.unwrap_or_default();
                assert!(
                    matchers.contains(JOB) && matchers.contains(INSTANCE),
                    "{name}: {metric} is not scoped to job and instance in {expr}"
                );
            }
        }
        // The variables: job and instance as the review asks, the others scoped by them.
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        let variable = |wanted: &str| {
            variables
                .iter()
                .find(|v| v["name"] == wanted)
                .unwrap_or_else(|| panic!("{name}: no variable {wanted}"))
        };
        assert_eq!(
            variable("job")["query"]["query"],
            "label_values(backlogd_build_info, job)"
        );
        assert_eq!(
            variable("instance")["query"]["query"],
            r#"label_values(backlogd_build_info{job=~"$job"}, instance)"#
        );
        for v in variables {
            if let Some(query) = v["query"]["query"].as_str()
                && !["job", "instance"].contains(&v["name"].as_str().unwrap())
            {
                assert!(
                    query.contains(JOB) && query.contains(INSTANCE),
                    "{name}: variable {} is not scoped: {query}",
                    v["name"]
                );
            }
        }
    }
}

#[test]
fn uids_titles_and_data_source_are_stable() {
    let mut uids = BTreeSet::new();
    for (name, dashboard) in dashboards() {
        uids.insert(dashboard["uid"].as_str().unwrap().to_owned());
        let title = dashboard["title"].as_str().unwrap();
        assert!(title.starts_with("backlogd / "), "{name}: title {title:?}");
        assert!(
            dashboard.get("__inputs").is_none(),
            "{name}: __inputs is back (the datasource variable chooses the data source)"
        );
        let text = dashboard.to_string();
        assert!(
            !text.contains("DS_PROMETHEUS"),
            "{name} mentions DS_PROMETHEUS"
        );
        for panel in panels(&dashboard) {
            assert_eq!(
                panel["datasource"]["uid"],
                "${datasource}",
                "{name}: {}",
                title_of(panel)
            );
        }
    }
    let expected: BTreeSet<String> = UIDS.iter().map(|u| u.to_string()).collect();
    assert_eq!(uids, expected);
}

fn title_of(panel: &Value) -> String {
    title(panel).to_owned()
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: u64,
    y: u64,
    w: u64,
    h: u64,
}

fn rect(panel: &Value) -> Rect {
    let g = &panel["gridPos"];
    let get = |k: &str| {
        g[k].as_u64()
            .unwrap_or_else(|| panic!("{}: gridPos.{k}", title(panel)))
    };
    Rect {
        x: get("x"),
        y: get("y"),
        w: get("w"),
        h: get("h"),
    }
}

fn overlap(a: Rect, b: Rect) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

fn assert_no_overlap(name: &str, items: &[(&str, Rect)]) {
    for (i, (title_a, a)) in items.iter().enumerate() {
        assert!(
            a.x + a.w <= 24 && a.w > 0 && a.h > 0,
            "{name}: {title_a} {a:?}"
        );
        for (title_b, b) in &items[i + 1..] {
            assert!(
                !overlap(*a, *b),
                "{name}: panels overlap: {title_a} {a:?} and {title_b} {b:?}"
            );
        }
    }
}

/// Rows aware: the top level (row headers and the panels of open rows) is one layout; the panels
/// inside a collapsed row are another, placed below its header as they appear when it opens.
#[test]
fn no_two_panels_overlap() {
    for (name, dashboard) in dashboards() {
        let top = dashboard["panels"].as_array().unwrap();
        assert_eq!(top[0]["type"], "row", "{name}: the first panel is a row");
        let mut top_level = Vec::new();
        let mut rows = 0;
        for panel in top {
            top_level.push((title(panel), rect(panel)));
            if panel["type"] == "row" {
                rows += 1;
                let row = rect(panel);
                assert_eq!(
                    (row.x, row.w, row.h),
                    (0, 24, 1),
                    "{name}: row {}",
                    title(panel)
                );
                let inside = panel["panels"].as_array().unwrap();
                if panel["collapsed"] == true {
                    assert!(!inside.is_empty(), "{name}: empty row {}", title(panel));
                    let nested: Vec<(&str, Rect)> =
                        inside.iter().map(|p| (title(p), rect(p))).collect();
                    for (t, r) in &nested {
                        assert!(r.y > row.y, "{name}: {t} is above its row");
                    }
                    assert_no_overlap(&name, &nested);
                } else {
                    assert!(
                        inside.is_empty(),
                        "{name}: open row {} holds panels",
                        title(panel)
                    );
                }
            }
        }
        assert!(rows >= 3, "{name}: only {rows} rows");
        assert_no_overlap(&name, &top_level);
        // Every open row's panels lie between its header and the next header.
        let mut current_row_y = None;
        for panel in top {
            let r = rect(panel);
            if panel["type"] == "row" {
                current_row_y = Some(r.y);
            } else {
                assert!(
                    current_row_y.is_some_and(|y| r.y > y),
                    "{name}: {} is not below its row",
                    title(panel)
                );
            }
        }
    }
}

#[test]
fn every_panel_has_a_unit_and_a_description() {
    for (name, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            let unit = panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or("");
            assert!(!unit.is_empty(), "{name}: {} has no unit", title(panel));
            let description = panel["description"].as_str().unwrap_or("");
            assert!(
                description.len() >= 40,
                "{name}: {} has no description",
                title(panel)
            );
        }
    }
}

/// Every list of threshold steps of a panel: the defaults' and those of field overrides.
fn threshold_steps(panel: &Value) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    if let Some(steps) = panel["fieldConfig"]["defaults"]["thresholds"]["steps"].as_array() {
        out.push(steps.clone());
    }
    for o in panel["fieldConfig"]["overrides"].as_array().unwrap() {
        for property in o["properties"].as_array().unwrap() {
            if property["id"] == "thresholds" {
                out.push(property["value"]["steps"].as_array().unwrap().clone());
            }
        }
    }
    out
}

/// The threshold a "Config from query results" transformation reads from `backlogd_threshold`, if
/// the panel has one; checks the transformation is wired to its query.
fn threshold_from_query(name: &str, panel: &Value) -> Option<String> {
    let transformations = panel["transformations"].as_array()?;
    let config = transformations
        .iter()
        .find(|t| t["id"] == "configFromData")?;
    let ref_id = &config["options"]["configRefId"];
    let target = panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| &t["refId"] == ref_id)
        .unwrap_or_else(|| panic!("{name}: {}: no query {ref_id}", title(panel)));
    let expr = target["expr"].as_str().unwrap();
    let mapping = &config["options"]["mappings"][0];
    assert_eq!(
        mapping["handlerKey"],
        "threshold1",
        "{name}: {}",
        title(panel)
    );
    assert_eq!(
        mapping["fieldName"],
        target["legendFormat"],
        "{name}: {}: the mapping must name the threshold query's field",
        title(panel)
    );
    let threshold = expr
        .split("backlogd_threshold{")
        .nth(1)
        .and_then(|rest| rest.split("name=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| {
            panic!(
                "{name}: {}: {expr} reads no backlogd_threshold",
                title(panel)
            )
        });
    Some(threshold.to_owned())
}

#[test]
fn colours_come_from_backlogd_threshold_or_are_explained() {
    let mut from_query = 0;
    for (name, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            let description = panel["description"].as_str().unwrap();
            let colours = description.split_once("Colours: ").map(|(_, why)| why);
            if let Some(threshold) = threshold_from_query(&name, panel) {
                from_query += 1;
                let why = colours.unwrap_or_else(|| {
                    panic!(
                        "{name}: {}: the description does not say where red starts",
                        title(panel)
                    )
                });
                assert!(
                    why.contains(&threshold),
                    "{name}: {}: the description does not name {threshold}",
                    title(panel)
                );
            }
            for steps in threshold_steps(panel) {
                for step in steps.iter().skip(1) {
                    let colour = step["color"].as_str().unwrap();
                    let why = colours.unwrap_or_else(|| {
                        panic!(
                            "{name}: {}: {colour} from {} is neither from backlogd_threshold nor \
                             explained in the description (\"Colours: ...\")",
                            title(panel),
                            step["value"]
                        )
                    });
                    assert!(
                        why.contains(colour),
                        "{name}: {}: the colour explanation does not mention {colour}",
                        title(panel)
                    );
                }
            }
        }
    }
    assert!(
        from_query >= 5,
        "only {from_query} panels read their colours from backlogd_threshold"
    );
}

/// The review's findings, panel by panel.
#[test]
fn the_reviewed_colours_follow_the_alert_thresholds() {
    let all = dashboards();
    let panel = |file: &str, wanted: &str, kind: &str| -> Value {
        let (_, dashboard) = all.iter().find(|(name, _)| name == file).unwrap();
        panels(dashboard)
            .into_iter()
            .find(|p| p["title"] == wanted && p["type"] == kind)
            .unwrap_or_else(|| panic!("{file}: no {kind} {wanted:?}"))
            .clone()
    };
    let cases = [
        (
            "quality.json",
            "By inexperienced staff (range)",
            "max_inexperienced_decision_ratio",
        ),
        (
            "quality.json",
            "Cancelled hearings (range)",
            "max_hearing_cancellation_ratio",
        ),
        ("internals.json", "Last event age", "max_ingest_gap_seconds"),
        (
            "backlog-overview.json",
            "Overdue cases",
            "max_overdue_cases",
        ),
        (
            "quality.json",
            "Time since last audit",
            "max_audit_gap_seconds",
        ),
    ];
    for (file, wanted, threshold) in cases {
        let p = panel(file, wanted, "stat");
        assert_eq!(
            threshold_from_query(file, &p).as_deref(),
            Some(threshold),
            "{file}: {wanted}"
        );
        // No fixed step left that could contradict the threshold (e.g. red at one day).
        for steps in threshold_steps(&p) {
            assert_eq!(
                steps.len(),
                1,
                "{file}: {wanted} keeps fixed steps: {steps:?}"
            );
        }
    }
    for wanted in ["Overdue cases", "Penalty exposure"] {
        let p = panel("backlog-overview.json", wanted, "stat");
        for steps in threshold_steps(&p) {
            for step in &steps[1..] {
                assert!(
                    !(step["color"] == "red" && step["value"].as_f64().unwrap() <= 1.0),
                    "{wanted} is red from {}",
                    step["value"]
                );
            }
        }
    }
}

/// The alert names of the shipped rules.
fn alerts() -> BTreeSet<String> {
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus/backlogd-rules.yml"),
    )
    .unwrap();
    rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn runbook_links_point_at_runbook_sections() {
    let runbooks =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbooks.md"))
            .unwrap();
    let anchors: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|heading| heading.trim().to_lowercase())
        .collect();
    let alerts: BTreeSet<String> = alerts().iter().map(|a| a.to_lowercase()).collect();
    let base = format!("{}#", generator::RUNBOOK_BASE_URL);
    let mut linked = BTreeSet::new();
    for (name, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            let links = panel["links"].as_array().cloned().unwrap_or_default();
            let runbook_links: Vec<&str> = links
                .iter()
                .filter(|l| {
                    l["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("Runbook: "))
                })
                .map(|l| l["url"].as_str().unwrap())
                .collect();
            for url in &runbook_links {
                let anchor = url.strip_prefix(&base).unwrap_or_else(|| {
                    panic!("{name}: {}: {url} is not under {base}", title(panel))
                });
                assert!(
                    anchors.contains(anchor),
                    "{name}: docs/runbooks.md has no section #{anchor}"
                );
                assert!(
                    alerts.contains(anchor),
                    "{name}: no alert {anchor} in the rules"
                );
                linked.insert(anchor.to_owned());
            }
            // A panel coloured by an alert's threshold links to that alert's runbook.
            if threshold_from_query(&name, panel).is_some() {
                assert!(
                    !runbook_links.is_empty(),
                    "{name}: {} shows an alert threshold but links no runbook",
                    title(panel)
                );
            }
        }
    }
    assert!(linked.len() >= 15, "runbooks linked: {linked:?}");
}

#[test]
fn annotations_mark_firing_alerts_reloads_and_restarts() {
    for (name, dashboard) in dashboards() {
        let list = dashboard["annotations"]["list"].as_array().unwrap();
        let expr_of = |needle: &str| {
            list.iter()
                .filter_map(|a| a["expr"].as_str())
                .find(|e| e.contains(needle))
                .unwrap_or_else(|| panic!("{name}: no annotation reads {needle}"))
                .to_owned()
        };
        let alerts = expr_of("ALERTS{");
        assert!(
            alerts.contains(r#"alertstate="firing""#),
            "{name}: {alerts}"
        );
        assert!(expr_of("backlogd_config_last_reload_successful").contains("changes("));
        assert!(expr_of("backlogd_start_time_seconds").contains("changes("));
    }
}

#[test]
fn the_overview_links_to_the_overdue_drill_down() {
    let all = dashboards();
    let (_, overview) = all
        .iter()
        .find(|(_, d)| d["uid"] == "backlogd-overview")
        .unwrap();
    let links = overview["links"].as_array().unwrap();
    assert!(
        links.iter().any(|l| l["url"]
            .as_str()
            .is_some_and(|u| u.contains("/v1/cases/overdue"))),
        "the overview has no link to /v1/cases/overdue: {links:?}"
    );
}

/// The overview shows whether the backlog has turned: a panel of BacklogForming's (and
/// RenewedBacklog's) state per track, and the moment BacklogForming began firing as an annotation.
#[test]
fn the_overview_shows_the_backlog_turn() {
    let all = dashboards();
    let (_, overview) = all
        .iter()
        .find(|(_, d)| d["uid"] == "backlogd-overview")
        .unwrap();
    let state = panels(overview)
        .into_iter()
        .find(|p| p["title"] == "Backlog turn")
        .expect("the overview has a Backlog turn panel");
    let expr = state["targets"][0]["expr"].as_str().unwrap();
    for alert in ["BacklogForming", "RenewedBacklog"] {
        assert!(
            expr.contains(&format!(r#"alertname="{alert}", alertstate="firing""#)),
            "{expr}"
        );
    }
    let annotations = overview["annotations"]["list"].as_array().unwrap();
    let turn = annotations
        .iter()
        .find(|a| a["name"] == "Backlog turned")
        .expect("the overview marks the backlog's turn");
    let expr = turn["expr"].as_str().unwrap();
    assert!(
        expr.contains(r#"alertname="BacklogForming""#)
            && expr.contains("unless")
            && expr.contains("offset"),
        "the annotation marks where BacklogForming begins firing: {expr}"
    );
    // Only the overview.
    for (name, dashboard) in &all {
        if dashboard["uid"] != "backlogd-overview" {
            assert!(
                !dashboard["annotations"]["list"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["name"] == "Backlog turned"),
                "{name}"
            );
        }
    }
}

/// Whether a Grafana `byRegexp` matcher of the form `^prefix.*` (the only form used) matches.
fn regexp_matches(pattern: &str, legend: &str) -> bool {
    let prefix = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix(".*"))
        .unwrap_or_else(|| panic!("unsupported matcher {pattern}"));
    if let Some(alternatives) = prefix.strip_prefix('(').and_then(|p| p.strip_suffix(')')) {
        alternatives.split('|').any(|a| legend.starts_with(a))
    } else {
        legend.starts_with(prefix)
    }
}

#[test]
fn per_day_bars_are_one_day_apart() {
    let mut bars = 0;
    for (name, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            if panel["type"] != "timeseries" {
                continue;
            }
            let all_bars = panel["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "bars";
            let overrides = panel["fieldConfig"]["overrides"].as_array().unwrap();
            for target in panel["targets"].as_array().unwrap() {
                let legend = target["legendFormat"].as_str().unwrap();
                let mut drawn_as_bars = all_bars;
                for o in overrides {
                    let matches = match o["matcher"]["id"].as_str().unwrap() {
                        "byName" => o["matcher"]["options"] == legend,
                        "byRegexp" => {
                            regexp_matches(o["matcher"]["options"].as_str().unwrap(), legend)
                        }
                        other => panic!("{name}: unsupported matcher {other}"),
                    };
                    for property in o["properties"].as_array().unwrap() {
                        if matches && property["id"] == "custom.drawStyle" {
                            drawn_as_bars = property["value"] == "bars";
                        }
                    }
                }
                let expr = target["expr"].as_str().unwrap();
                if drawn_as_bars && expr.contains("[1d]") {
                    bars += 1;
                    let step = target["interval"].as_str().or(panel["interval"].as_str());
                    assert_eq!(
                        step,
                        Some("1d"),
                        "{name}: {}: per-day bars {legend:?} need a 1d minimum step",
                        title(panel)
                    );
                }
            }
        }
    }
    assert!(bars >= 4, "only {bars} per-day bar series");
}
