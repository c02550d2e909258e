//! The Grafana vocabulary of the generator: panels, rows and dashboards as Rust values, turned into
//! the JSON model of Grafana 10.4 (schemaVersion 39). Everything a dashboard shares (data source,
//! `job`/`instance` scoping, annotations, layout, runbook links) is decided here, once.

use serde_json::{Value, json};

use super::RUNBOOK_BASE_URL;

/// The label matchers every metric selector of every query gets, so that each dashboard shows one
/// daemon (a test and a production daemon can share one Prometheus).
pub const SCOPE: &str = r#"job=~"$job",instance=~"$instance""#;

/// Grafana's grid is 24 columns wide.
const GRID_WIDTH: u32 = 24;

/// A JSON number, written as an integer when it is one (`1`, not `1.0`).
fn num(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

// ---------------------------------------------------------------------------------------------
// PromQL scoping

/// Words that are never metric names: aggregations, keywords and binary operators.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "Inf",
    "NaN",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names (not an expression).
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// `expr` with [`SCOPE`] added to every metric selector: `metric` becomes `metric{SCOPE}` and
/// `metric{a="b"}` becomes `metric{SCOPE, a="b"}`. Strings, label lists (`by (…)`, `on (…)`),
/// durations (`[5m]`) and function names are left alone.
pub fn scoped(expr: &str) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::with_capacity(expr.len() + 64);
    let mut i = 0;
    let next_non_space = |from: usize| {
        (from..chars.len())
            .find(|&j| !chars[j].is_whitespace())
            .map(|j| (j, chars[j]))
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            let end = string_end(&chars, i);
            out.extend(&chars[i..end]);
            i = end;
        } else if c == '[' {
            let end = (i..chars.len())
                .find(|&j| chars[j] == ']')
                .expect("unclosed [ in PromQL")
                + 1;
            out.extend(&chars[i..end]);
            i = end;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or a duration: digits, letters and dots (1.0001, 7d, 1e-09 is not used).
            let end = (i..chars.len())
                .find(|&j| !(chars[j].is_ascii_alphanumeric() || chars[j] == '.'))
                .unwrap_or(chars.len());
            out.extend(&chars[i..end]);
            i = end;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let end = (i..chars.len())
                .find(|&j| {
                    !(chars[j].is_ascii_alphanumeric() || chars[j] == '_' || chars[j] == ':')
                })
                .unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect();
            out.push_str(&word);
            i = end;
            let next = next_non_space(i);
            if LABEL_LISTS.contains(&word.as_str()) && matches!(next, Some((_, '('))) {
                let (open, _) = next.unwrap();
                let close = (open..chars.len())
                    .find(|&j| chars[j] == ')')
                    .expect("unclosed label list in PromQL")
                    + 1;
                out.extend(&chars[i..close]);
                i = close;
            } else if KEYWORDS.contains(&word.as_str()) || matches!(next, Some((_, '('))) {
                // A keyword, or a function call: nothing to add.
            } else if chars.get(i) == Some(&'{') {
                let close = selector_end(&chars, i);
                let inner: String = chars[i + 1..close - 1].iter().collect();
                if inner.trim().is_empty() {
                    out.push_str(&format!("{{{SCOPE}}}"));
                } else {
                    out.push_str(&format!("{{{SCOPE}, {}}}", inner.trim()));
                }
                i = close;
            } else {
                out.push_str(&format!("{{{SCOPE}}}"));
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The index after the string literal that starts at `start`.
fn string_end(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut j = start + 1;
    while j < chars.len() {
        if chars[j] == '\\' && quote != '`' {
            j += 2;
        } else if chars[j] == quote {
            return j + 1;
        } else {
            j += 1;
        }
    }
    panic!("unclosed string in PromQL")
}

/// The index after the `}` closing the label matchers that open at `start`.
fn selector_end(chars: &[char], start: usize) -> usize {
    let mut j = start + 1;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' | '`' => j = string_end(chars, j),
            '}' => return j + 1,
            _ => j += 1,
        }
    }
    panic!("unclosed {{ in PromQL")
}

// ---------------------------------------------------------------------------------------------
// Queries

#[derive(Clone, Copy, PartialEq)]
enum Format {
    TimeSeries,
    Table,
    Heatmap,
}

/// One Prometheus query of a panel. Written without `job`/`instance`: [`scoped`] adds them.
pub struct Query {
    expr: String,
    legend: String,
    instant: bool,
    format: Format,
    interval: Option<&'static str>,
}

/// A range query drawn as a time series, with `legend` as Grafana's legend format.
pub fn q(expr: &str, legend: &str) -> Query {
    Query {
        expr: expr.to_owned(),
        legend: legend.to_owned(),
        instant: false,
        format: Format::TimeSeries,
        interval: None,
    }
}

impl Query {
    /// Evaluated once, at the end of the range.
    pub fn instant(mut self) -> Self {
        self.instant = true;
        self
    }

    /// An instant query in table format (one row per series, one `Value #<refId>` column).
    pub fn table(mut self) -> Self {
        self.instant = true;
        self.format = Format::Table;
        self
    }

    /// Histogram buckets in Grafana's heatmap format (sorted by `le`, de-accumulated).
    pub fn heatmap(mut self) -> Self {
        self.format = Format::Heatmap;
        self
    }

    /// A count per day (`increase(…[1d])`): one point per day, so that bars do not overlap
    /// (the query step is at least one day).
    pub fn per_day(mut self) -> Self {
        assert!(
            self.expr.contains("[1d]"),
            "per_day is for increase(…[1d]) queries: {}",
            self.expr
        );
        self.interval = Some("1d");
        self
    }

    fn to_json(&self, ref_id: &str) -> Value {
        let mut target = json!({
            "datasource": datasource(),
            "editorMode": "code",
            "expr": scoped(&self.expr),
            "legendFormat": self.legend,
            "range": !self.instant,
            "instant": self.instant,
            "format": match self.format {
                Format::TimeSeries => "time_series",
                Format::Table => "table",
                Format::Heatmap => "heatmap",
            },
            "refId": ref_id,
        });
        if let Some(interval) = self.interval {
            target["interval"] = json!(interval);
        }
        target
    }
}

// ---------------------------------------------------------------------------------------------
// Colours

/// How a panel colours its values. Every colour other than the base one is either read from
/// `backlogd_threshold` or explained in the panel's description ("Colours: …").
pub enum Colours {
    /// One colour for every value.
    Base(&'static str),
    /// Fixed steps after the base colour, with the reason for each, appended to the description.
    Fixed {
        base: &'static str,
        steps: Vec<(&'static str, f64)>,
        why: String,
    },
    /// Green, and red from the value of `backlogd_threshold{name}` of the selected daemon: the
    /// threshold an alert compares with, read by a second query and applied by Grafana's "Config
    /// from query results" transformation. The daemon's configuration is the only place it is set.
    Threshold { name: &'static str, why: String },
}

/// One colour for every value.
pub fn base(colour: &'static str) -> Colours {
    Colours::Base(colour)
}

/// `base` up to the first step, then each step's colour from its value on; `why` explains them.
pub fn fixed(base: &'static str, steps: &[(&'static str, f64)], why: &str) -> Colours {
    assert!(!steps.is_empty(), "fixed colours need a step; use base()");
    Colours::Fixed {
        base,
        steps: steps.to_vec(),
        why: why.to_owned(),
    }
}

/// Green, and red from `backlogd_threshold{name}`; `why` says which alert compares with it.
pub fn threshold(name: &'static str, why: &str) -> Colours {
    Colours::Threshold {
        name,
        why: why.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Panels

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Stat,
    Gauge,
    BarGauge,
    Timeseries,
    Table,
    Heatmap,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Stat => "stat",
            Kind::Gauge => "gauge",
            Kind::BarGauge => "bargauge",
            Kind::Timeseries => "timeseries",
            Kind::Table => "table",
            Kind::Heatmap => "heatmap",
        }
    }
}

/// One panel: what it shows (queries), how (unit, colours, visualisation options) and why
/// (description, runbook links). Built with the functions below and chained setters.
pub struct Panel {
    kind: Kind,
    title: String,
    description: String,
    unit: &'static str,
    width: u32,
    height: u32,
    queries: Vec<Query>,
    colours: Colours,
    colour_notes: Vec<String>,
    mappings: Vec<Value>,
    no_value: Option<&'static str>,
    decimals: Option<u32>,
    min: Option<f64>,
    max: Option<f64>,
    palette: &'static str,
    overrides: Vec<Value>,
    transformations: Vec<Value>,
    links: Vec<Value>,
    data_links: Vec<Value>,
    interval: Option<&'static str>,
    // stat
    calc: &'static str,
    color_mode: &'static str,
    graph_mode: &'static str,
    text_mode: &'static str,
    // timeseries
    stacked: bool,
    bars: bool,
    legend_calcs: Vec<&'static str>,
    legend_table: bool,
    // table
    sort_by: Option<&'static str>,
    // heatmap
    scheme: &'static str,
}

fn panel(kind: Kind, title: &str, unit: &'static str) -> Panel {
    let (width, height) = match kind {
        Kind::Stat => (4, 4),
        _ => (12, 8),
    };
    Panel {
        kind,
        title: title.to_owned(),
        description: String::new(),
        unit,
        width,
        height,
        queries: Vec::new(),
        colours: Colours::Base("green"),
        colour_notes: Vec::new(),
        mappings: Vec::new(),
        no_value: None,
        decimals: None,
        min: match kind {
            Kind::Timeseries | Kind::BarGauge | Kind::Gauge => Some(0.0),
            _ => None,
        },
        max: None,
        palette: match kind {
            Kind::Timeseries | Kind::BarGauge => "palette-classic",
            _ => "thresholds",
        },
        overrides: Vec::new(),
        transformations: Vec::new(),
        links: Vec::new(),
        data_links: Vec::new(),
        interval: None,
        calc: "lastNotNull",
        color_mode: "value",
        graph_mode: "area",
        text_mode: "auto",
        stacked: false,
        bars: false,
        legend_calcs: vec!["lastNotNull", "max"],
        legend_table: true,
        sort_by: None,
        scheme: "Oranges",
    }
}

/// A single big number (per series), with a sparkline unless `.graph("none")`.
pub fn stat(title: &str, unit: &'static str) -> Panel {
    panel(Kind::Stat, title, unit)
}

/// A dial from `min` (0) to `.max(…)`.
pub fn gauge(title: &str, unit: &'static str) -> Panel {
    panel(Kind::Gauge, title, unit)
}

/// Horizontal bars, one per series, now.
pub fn bar_gauge(title: &str, unit: &'static str) -> Panel {
    panel(Kind::BarGauge, title, unit)
}

/// Lines over time (min 0 unless `.no_min()`), legend as a table with last and max.
pub fn timeseries(title: &str, unit: &'static str) -> Panel {
    panel(Kind::Timeseries, title, unit)
}

/// A table of instant queries, merged into one row per label value.
pub fn table(title: &str, unit: &'static str) -> Panel {
    panel(Kind::Table, title, unit)
}

/// Histogram buckets over time; `y_unit` is the unit of the bucket bounds.
pub fn heatmap(title: &str, y_unit: &'static str) -> Panel {
    panel(Kind::Heatmap, title, y_unit)
}

impl Panel {
    pub fn desc(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    pub fn size(mut self, width: u32, height: u32) -> Self {
        assert!(width <= GRID_WIDTH, "{}: wider than the grid", self.title);
        self.width = width;
        self.height = height;
        self
    }

    pub fn query(mut self, query: Query) -> Self {
        self.queries.push(query);
        self
    }

    pub fn colours(mut self, colours: Colours) -> Self {
        self.colours = colours;
        self
    }

    /// Explains colours set elsewhere (table cell overrides): appended to the description.
    pub fn colour_note(mut self, why: &str) -> Self {
        self.colour_notes.push(why.to_owned());
        self
    }

    /// Shows `text` (in `colour`) instead of the value `value` ("Infinity", "0", …).
    pub fn value_text(mut self, value: &str, text: &str, colour: &str) -> Self {
        let index = self.mappings.len();
        match self.mappings.last_mut() {
            Some(mapping) if mapping["type"] == "value" => {
                let options = mapping["options"].as_object_mut().unwrap();
                let index = options.len();
                options.insert(
                    value.to_owned(),
                    json!({"text": text, "color": colour, "index": index}),
                );
            }
            _ => self.mappings.push(json!({
                "type": "value",
                "options": {value: {"text": text, "color": colour, "index": index}},
            })),
        }
        self
    }

    /// Shows `text` instead of NaN.
    pub fn nan_text(mut self, text: &str) -> Self {
        self.mappings.push(json!({
            "type": "special",
            "options": {"match": "nan", "result": {"text": text, "color": "text", "index": 2}},
        }));
        self
    }

    /// Shown when the queries return nothing.
    pub fn no_value(mut self, text: &'static str) -> Self {
        self.no_value = Some(text);
        self
    }

    pub fn decimals(mut self, decimals: u32) -> Self {
        self.decimals = Some(decimals);
        self
    }

    pub fn min(mut self, min: f64) -> Self {
        self.min = Some(min);
        self
    }

    pub fn max(mut self, max: f64) -> Self {
        self.max = Some(max);
        self
    }

    /// The y axis starts where the data does (for dates and differences).
    pub fn no_min(mut self) -> Self {
        self.min = None;
        self
    }

    /// Grafana's colour mode for the series (`palette-classic`, `continuous-GrYlRd`, …).
    pub fn palette(mut self, mode: &'static str) -> Self {
        self.palette = mode;
        self
    }

    /// Stat: colour the value (`value`), the background (`background`) or nothing (`none`).
    pub fn color_mode(mut self, mode: &'static str) -> Self {
        self.color_mode = mode;
        self
    }

    /// Stat: `area` (a sparkline) or `none`.
    pub fn graph(mut self, mode: &'static str) -> Self {
        self.graph_mode = mode;
        self
    }

    /// Stat: `auto`, or `name` to show the series name instead of its value.
    pub fn text_mode(mut self, mode: &'static str) -> Self {
        self.text_mode = mode;
        self
    }

    /// Stat: the reduction of the series to one value (`lastNotNull`, `last`).
    pub fn calc(mut self, calc: &'static str) -> Self {
        self.calc = calc;
        self
    }

    /// Time series: stacked areas (or bars).
    pub fn stacked(mut self) -> Self {
        self.stacked = true;
        self
    }

    /// Time series: bars instead of lines (for counts per day, with [`Query::per_day`]).
    pub fn bars(mut self) -> Self {
        self.bars = true;
        self
    }

    /// Time series: the legend's columns.
    pub fn legend(mut self, calcs: &[&'static str]) -> Self {
        self.legend_calcs = calcs.to_vec();
        self
    }

    /// Time series: a plain legend list without values.
    pub fn legend_list(mut self) -> Self {
        self.legend_calcs = Vec::new();
        self.legend_table = false;
        self
    }

    /// A field override: `matcher` is `byName` or `byRegexp`, `properties` a JSON array.
    pub fn override_fields(mut self, matcher: &str, options: &str, properties: Value) -> Self {
        self.overrides.push(json!({
            "matcher": {"id": matcher, "options": options},
            "properties": properties,
        }));
        self
    }

    pub fn transform(mut self, transformation: Value) -> Self {
        self.transformations.push(transformation);
        self
    }

    /// Table: the column sorted on, descending.
    pub fn sort_by(mut self, column: &'static str) -> Self {
        self.sort_by = Some(column);
        self
    }

    /// Heatmap: Grafana's colour scheme (`Oranges`, `Blues`).
    pub fn scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = scheme;
        self
    }

    /// The minimum query step of every query of the panel.
    pub fn interval(mut self, interval: &'static str) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Links to the runbook section of `alert` (docs/runbooks.md, one section per alert).
    pub fn runbook(mut self, alert: &str) -> Self {
        self.links.push(json!({
            "title": format!("Runbook: {alert}"),
            "url": runbook_url(alert),
            "targetBlank": true,
        }));
        self
    }

    /// A data link on every value (e.g. a drill-down), interpolated by Grafana.
    pub fn data_link(mut self, title: &str, url: &str) -> Self {
        self.data_links
            .push(json!({"title": title, "url": url, "targetBlank": true}));
        self
    }

    fn description(&self) -> String {
        let mut notes: Vec<String> = self.colour_notes.clone();
        match &self.colours {
            Colours::Base(_) => {}
            Colours::Fixed { why, .. } => notes.insert(0, why.clone()),
            Colours::Threshold { name, why } => notes.insert(
                0,
                format!(
                    "red from backlogd_threshold{{name=\"{name}\"}} of the selected daemon \
                     ({why}), green below."
                ),
            ),
        }
        if notes.is_empty() {
            self.description.clone()
        } else {
            format!("{} Colours: {}", self.description, notes.join(" "))
        }
    }

    fn thresholds(&self) -> Value {
        let steps: Vec<Value> = match &self.colours {
            Colours::Base(colour) => vec![json!({"color": colour, "value": null})],
            Colours::Fixed { base, steps, .. } => {
                std::iter::once(json!({"color": base, "value": null}))
                    .chain(
                        steps
                            .iter()
                            .map(|(colour, value)| json!({"color": colour, "value": num(*value)})),
                    )
                    .collect()
            }
            // The fallback while the threshold query returns nothing; the transformation replaces
            // it with green and a red step at the threshold.
            Colours::Threshold { .. } => vec![json!({"color": "green", "value": null})],
        };
        json!({"mode": "absolute", "steps": steps})
    }

    fn to_json(&self, id: u32, x: u32, y: u32) -> Value {
        assert!(
            !self.description.is_empty(),
            "{}: no description",
            self.title
        );
        assert!(!self.queries.is_empty(), "{}: no query", self.title);
        let mut queries: Vec<Value> = self
            .queries
            .iter()
            .enumerate()
            .map(|(i, query)| query.to_json(&ref_id(i)))
            .collect();
        let mut transformations = self.transformations.clone();
        if let Colours::Threshold { name, .. } = &self.colours {
            // The threshold, only while the panel's own first query has a value: with no other
            // frame, Grafana would show the threshold itself as the panel's value.
            let ref_id = ref_id(queries.len());
            let legend = format!("threshold {name}");
            let first = &self.queries[0];
            let expr = format!(
                "max(backlogd_threshold{{name=\"{name}\"}}) and on () ({})",
                first.expr
            );
            let mut config = q(&expr, &legend);
            config.instant = first.instant;
            queries.push(config.to_json(&ref_id));
            transformations.insert(
                0,
                json!({
                    "id": "configFromData",
                    "options": {
                        "configRefId": ref_id,
                        "mappings": [{
                            "fieldName": legend,
                            "handlerKey": "threshold1",
                            "handlerArguments": {"threshold": {"color": "red"}},
                        }],
                    },
                }),
            );
        }

        let mut defaults = json!({"unit": self.unit});
        if self.kind != Kind::Heatmap {
            defaults["thresholds"] = self.thresholds();
            defaults["mappings"] = json!(self.mappings);
            defaults["color"] = json!({"mode": self.palette});
        }
        if let Some(min) = self.min {
            defaults["min"] = num(min);
        }
        if let Some(max) = self.max {
            defaults["max"] = num(max);
        }
        if let Some(decimals) = self.decimals {
            defaults["decimals"] = json!(decimals);
        }
        if let Some(text) = self.no_value {
            defaults["noValue"] = json!(text);
        }
        if !self.data_links.is_empty() {
            defaults["links"] = json!(self.data_links);
        }
        let mut overrides = self.overrides.clone();
        let options = match self.kind {
            Kind::Stat => json!({
                "reduceOptions": {"calcs": [self.calc], "fields": "", "values": false},
                "colorMode": self.color_mode,
                "graphMode": self.graph_mode,
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": self.text_mode,
                "wideLayout": true,
                "showPercentChange": false,
            }),
            Kind::Gauge => json!({
                "reduceOptions": {"calcs": [self.calc], "fields": "", "values": false},
                "orientation": "auto",
                "showThresholdLabels": false,
                "showThresholdMarkers": true,
                "minVizHeight": 75,
                "minVizWidth": 75,
                "sizing": "auto",
            }),
            Kind::BarGauge => json!({
                "reduceOptions": {"calcs": [self.calc], "fields": "", "values": false},
                "displayMode": "gradient",
                "orientation": "horizontal",
                "showUnfilled": true,
                "valueMode": "color",
                "namePlacement": "auto",
                "sizing": "auto",
                "minVizHeight": 16,
                "minVizWidth": 8,
                "maxVizHeight": 300,
            }),
            Kind::Timeseries => {
                defaults["custom"] = json!({
                    "drawStyle": if self.bars { "bars" } else { "line" },
                    "lineWidth": 1,
                    "fillOpacity": if self.bars { 60 } else { 10 },
                    "gradientMode": "none",
                    "showPoints": "never",
                    "pointSize": 4,
                    "spanNulls": false,
                    "lineInterpolation": "linear",
                    "barAlignment": 0,
                    "stacking": {"mode": if self.stacked { "normal" } else { "none" }, "group": "A"},
                    "axisPlacement": "auto",
                    "axisLabel": "",
                    "axisCenteredZero": false,
                    "axisSoftMin": null,
                    "scaleDistribution": {"type": "linear"},
                    "hideFrom": {"legend": false, "tooltip": false, "viz": false},
                    "thresholdsStyle": {"mode": "off"},
                });
                // Threshold, target and norm series (legend starting with one of these words)
                // are dashed red lines.
                overrides.insert(
                    0,
                    json!({
                        "matcher": {"id": "byRegexp", "options": "^(threshold|target|norm|allowed).*"},
                        "properties": [
                            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                            {"id": "custom.fillOpacity", "value": 0},
                            {"id": "custom.lineWidth", "value": 2},
                        ],
                    }),
                );
                json!({
                    "legend": {
                        "displayMode": if self.legend_table { "table" } else { "list" },
                        "placement": "bottom",
                        "showLegend": true,
                        "calcs": self.legend_calcs,
                    },
                    "tooltip": {"mode": "multi", "sort": "desc"},
                })
            }
            Kind::Table => {
                defaults["custom"] = json!({
                    "align": "auto",
                    "cellOptions": {"type": "auto"},
                    "inspect": false,
                    "filterable": true,
                });
                let mut options = json!({
                    "showHeader": true,
                    "cellHeight": "sm",
                    "footer": {"show": false, "reducer": ["sum"], "countRows": false, "fields": ""},
                });
                if let Some(column) = self.sort_by {
                    options["sortBy"] = json!([{"displayName": column, "desc": true}]);
                }
                options
            }
            Kind::Heatmap => {
                defaults["custom"] = json!({
                    "hideFrom": {"legend": false, "tooltip": false, "viz": false},
                    "scaleDistribution": {"type": "linear"},
                });
                json!({
                    "calculate": false,
                    "cellGap": 1,
                    "color": {
                        "exponent": 0.5,
                        "fill": "dark-orange",
                        "mode": "scheme",
                        "reverse": false,
                        "scale": "exponential",
                        "scheme": self.scheme,
                        "steps": 64,
                    },
                    "exemplars": {"color": "rgba(255,0,255,0.7)"},
                    "filterValues": {"le": 1e-09},
                    "legend": {"show": true},
                    "rowsFrame": {"layout": "auto"},
                    "tooltip": {"mode": "single", "yHistogram": true, "showColorScale": false},
                    "yAxis": {"axisPlacement": "left", "reverse": false, "unit": self.unit},
                    "showValue": "auto",
                    "cellValues": {"unit": "short"},
                })
            }
        };
        if self.kind == Kind::Heatmap {
            // The cells count events; the unit of the panel is the y axis' (bucket bounds).
            defaults["unit"] = json!("short");
        }
        let mut panel = json!({
            "type": self.kind.name(),
            "title": self.title,
            "description": self.description(),
            "datasource": datasource(),
            "fieldConfig": {"defaults": defaults, "overrides": overrides},
            "options": options,
            "targets": queries,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "id": id,
        });
        if !transformations.is_empty() {
            panel["transformations"] = json!(transformations);
        }
        if !self.links.is_empty() {
            panel["links"] = json!(self.links);
        }
        if let Some(interval) = self.interval {
            panel["interval"] = json!(interval);
        }
        panel
    }
}

fn ref_id(index: usize) -> String {
    assert!(index < 26, "more than 26 queries in a panel");
    char::from(b'A' + index as u8).to_string()
}

/// The runbook section of `alert` under [`RUNBOOK_BASE_URL`] (GitHub's anchor: the heading in
/// lower case).
pub fn runbook_url(alert: &str) -> String {
    format!("{RUNBOOK_BASE_URL}#{}", alert.to_lowercase())
}

// ---------------------------------------------------------------------------------------------
// Rows and dashboards

/// A collapsible row of panels, laid out left to right and wrapped at the grid's width.
pub struct Row {
    title: &'static str,
    collapsed: bool,
    panels: Vec<Panel>,
}

/// An expanded row.
pub fn row(title: &'static str, panels: Vec<Panel>) -> Row {
    Row {
        title,
        collapsed: false,
        panels,
    }
}

impl Row {
    /// Closed when the dashboard opens (its queries run only when opened).
    pub fn collapsed(mut self) -> Self {
        self.collapsed = true;
        self
    }
}

/// Which of the case filters a dashboard offers (its metrics have the label).
#[derive(Clone, Copy)]
pub enum Filters {
    None,
    Track,
    TrackAndLocation,
}

pub struct Dashboard {
    pub uid: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub refresh: &'static str,
    pub from: &'static str,
    pub filters: Filters,
    pub links: Vec<Value>,
    /// Annotations of this dashboard, after the ones every dashboard has.
    pub annotations: Vec<Value>,
    pub rows: Vec<Row>,
}

fn query_variable(name: &str, label: &str, query: &str, all: bool, description: &str) -> Value {
    let mut variable = json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "multi": all,
        "includeAll": all,
        "current": {},
        "hide": 0,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": false,
        "sort": 1,
        "description": description,
    });
    if all {
        variable["allValue"] = json!(".*");
        variable["current"] = json!({"selected": true, "text": ["All"], "value": ["$__all"]});
    }
    variable
}

/// An annotation from a Prometheus query: each point where `expr` has a value, scoped to the
/// selected daemon like every query.
pub fn prometheus_annotation(
    name: &str,
    colour: &str,
    expr: &str,
    title: &str,
    text: &str,
) -> Value {
    json!({
        "name": name,
        "datasource": datasource(),
        "enable": true,
        "hide": false,
        "iconColor": colour,
        "expr": scoped(expr),
        "step": "1m",
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": "",
        "useValueForTime": false,
    })
}

impl Dashboard {
    pub fn to_json(&self) -> Value {
        let mut variables = vec![
            json!({
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "includeAll": false,
                "multi": false,
                "options": [],
                "refresh": 1,
                "regex": "",
                "skipUrlSync": false,
                "description": "Prometheus data source that scrapes backlogd.",
            }),
            // job and instance select one daemon: the figures of two daemons (a test and a
            // production one) do not add up, so neither offers "All".
            query_variable(
                "job",
                "Job",
                "label_values(backlogd_build_info, job)",
                false,
                "Prometheus scrape job of the backlogd targets.",
            ),
            query_variable(
                "instance",
                "Instance",
                r#"label_values(backlogd_build_info{job=~"$job"}, instance)"#,
                false,
                "The backlogd daemon shown: host:port of its scrape target.",
            ),
        ];
        if matches!(self.filters, Filters::Track | Filters::TrackAndLocation) {
            variables.push(query_variable(
                "track",
                "Track",
                &format!("label_values(backlogd_cases_open{{{SCOPE}}}, track)"),
                true,
                "Case track (kind of case) from the backlogd configuration.",
            ));
        }
        if matches!(self.filters, Filters::TrackAndLocation) {
            variables.push(query_variable(
                "location",
                "Location",
                &format!(r#"label_values(backlogd_cases_open{{{SCOPE}, track=~"$track"}}, location)"#),
                true,
                "Location of open cases (from events; beyond limits.max_locations reported as 'other').",
            ));
        }

        let mut annotations = json!({"list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": true,
                "hide": true,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            },
            prometheus_annotation(
                "Firing alerts",
                "red",
                r#"ALERTS{alertstate="firing"}"#,
                "{{alertname}}",
                "{{alertname}} firing ({{severity}}, {{source}})",
            ),
            // A reload that changes nothing leaves no trace in the metrics; one that fails, or
            // that changes a threshold, does.
            prometheus_annotation(
                "Configuration reloads",
                "blue",
                "(changes(backlogd_config_last_reload_successful[5m]) > 0) \
                 or on (job, instance) (max by (job, instance) (changes(backlogd_threshold[5m])) > 0)",
                "configuration reload",
                "the reload result or a threshold changed (backlogd_config_last_reload_successful: failed 0, succeeded 1)",
            ),
            // target.announced: each announcement of a clearance date, marked where it was made.
            prometheus_annotation(
                "Target announcements",
                "purple",
                "changes(backlogd_target_announcements_total[5m]) > 0",
                "target {{target}} announced",
                "a clearance date was announced for target {{target}} (see GET /v1/targets; backlogd_target_announced_behind_projection says whether the projection already said it would be missed)",
            ),
            // backlogd_start_time_seconds, not process_start_time_seconds: the shipped unit's
            // ProcSubset=pid hides /proc/stat, without which the latter is not exported.
            prometheus_annotation(
                "Restarts",
                "orange",
                "changes(backlogd_start_time_seconds[5m]) > 0",
                "restart",
                "backlogd restarted (backlogd_start_time_seconds changed)",
            ),
        ]});
        // `json!` built a list above, so `as_array_mut` cannot fail.
        annotations["list"]
            .as_array_mut()
            .expect("the annotations are a list")
            .extend(self.annotations.iter().cloned());

        let mut links = vec![json!({
            "asDropdown": true,
            "icon": "external link",
            "includeVars": true,
            "keepTime": true,
            "tags": ["backlogd"],
            "targetBlank": false,
            "title": "backlogd dashboards",
            "tooltip": "",
            "type": "dashboards",
            "url": "",
        })];
        links.extend(self.links.iter().cloned());

        let (panels, panel_types) = self.layout();
        let mut requires = vec![
            json!({"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"}),
            json!({"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}),
        ];
        requires.extend(
            panel_types
                .iter()
                .map(|kind| json!({"type": "panel", "id": kind, "name": kind, "version": ""})),
        );

        json!({
            "__elements": {},
            "__requires": requires,
            "annotations": annotations,
            "description": self.description,
            "editable": true,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": null,
            "links": links,
            "liveNow": false,
            "panels": panels,
            "refresh": self.refresh,
            "schemaVersion": 39,
            "tags": ["backlogd"],
            "templating": {"list": variables},
            "time": {"from": self.from, "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m", "30m", "1h"]},
            "timezone": "",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        })
    }

    /// The panels with their grid positions and ids, and the panel types used (for __requires).
    /// Each row starts on a new line; its panels flow left to right and wrap when the next one
    /// does not fit. A collapsed row keeps its panels inside it, at the positions they take when
    /// it is opened (Grafana moves the rows below down then).
    fn layout(&self) -> (Vec<Value>, Vec<&'static str>) {
        let mut panels = Vec::new();
        let mut kinds = std::collections::BTreeSet::new();
        let mut id = 0;
        let mut y = 0;
        for row in &self.rows {
            id += 1;
            let row_id = id;
            let row_y = y;
            y += 1;
            let (mut x, mut line_height) = (0, 0);
            let mut children = Vec::new();
            for panel in &row.panels {
                if x + panel.width > GRID_WIDTH {
                    y += line_height;
                    (x, line_height) = (0, 0);
                }
                id += 1;
                children.push(panel.to_json(id, x, y));
                kinds.insert(panel.kind.name());
                x += panel.width;
                line_height = line_height.max(panel.height);
            }
            y += line_height;
            let mut header = json!({
                "type": "row",
                "title": row.title,
                "collapsed": row.collapsed,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": row_y},
                "id": row_id,
                "panels": [],
            });
            if row.collapsed {
                header["panels"] = json!(children);
                panels.push(header);
                y = row_y + 1;
            } else {
                panels.push(header);
                panels.extend(children);
            }
        }
        (panels, kinds.into_iter().collect())
    }
}
