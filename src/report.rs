//! `backlogd report` and `GET /report`: one self-contained HTML page for people who do not read
//! PromQL, drawn from the daily history (`GET /v1/history`) and the targets (`GET /v1/targets`):
//! headline numbers with their change since the previous day of the range, charts as inline SVG
//! (no scripts, fonts or assets from outside; printable), the targets against the projection, and
//! the facts that ask for a decision. English or Dutch.
//!
//! It reads the two JSON documents of the HTTP API (so it depends on nothing but what any client
//! can see); the daemon renders it at `GET /report`, and the CLI writes what the daemon serves.
//! Every chart carries its values in `data-values`, which the tests compare with the history.

use std::fmt::Write;

use crate::api;

/// The page's language (`--lang`, `?lang=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Nl,
}

impl From<crate::config::ReportLanguage> for Lang {
    fn from(language: crate::config::ReportLanguage) -> Lang {
        match language {
            crate::config::ReportLanguage::En => Lang::En,
            crate::config::ReportLanguage::Nl => Lang::Nl,
        }
    }
}

impl Lang {
    /// `en` or `nl`, as `parse` reads it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "en" => Some(Lang::En),
            "nl" => Some(Lang::Nl),
            _ => None,
        }
    }
}

/// The table of the page's texts: each key with its id (the `data-series` of a chart line) and
/// its English and Dutch text, in which `{name}` marks a value `Text::fill` puts in. The enum, the
/// list of every key and the lookup are made from the one table, so no key lacks a text.
macro_rules! texts {
    ($($key:ident $id:literal => ($en:expr, $nl:expr),)*) => {
        /// A text of the page.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Text {
            $($key,)*
        }

        impl Text {
            /// Every key, in table order.
            pub const ALL: &'static [Text] = &[$(Text::$key,)*];

            /// The key's id (`data-series` of a chart line).
            pub fn id(self) -> &'static str {
                match self {
                    $(Text::$key => $id,)*
                }
            }

            /// The English and Dutch text.
            fn pair(self) -> (&'static str, &'static str) {
                match self {
                    $(Text::$key => ($en, $nl),)*
                }
            }
        }
    };
}

texts! {
    Title "title" => ("Backlog report", "Rapportage werkvoorraad"),
    Period "period" => ("Days", "Dagen"),
    Open "open" => ("Open cases", "Openstaande zaken"),
    Overdue "overdue" => ("Past the deadline", "Over de beslistermijn"),
    DueSoon "due_soon" => (
        "Due soon (the shortest window)",
        "Binnenkort over de termijn (het kortste venster)"
    ),
    DueWithin "due_within" => ("Due within {window}", "Binnen {window} over de termijn"),
    Inflow "inflow" => ("New cases per day", "Nieuwe zaken per dag"),
    InflowWeek "inflow" => ("New cases per week", "Nieuwe zaken per week"),
    Outflow "outflow" => ("Decided per day", "Afgehandeld per dag"),
    OutflowWeek "outflow" => ("Decided per week", "Afgehandeld per week"),
    Experienced "experienced" => ("Experienced staff", "Ervaren medewerkers"),
    Inexperienced "inexperienced" => ("Inexperienced staff", "Onervaren medewerkers"),
    PerMentor "per_mentor" => ("Newcomers per mentor", "Nieuwkomers per mentor"),
    Unmentored "unmentored" => ("Newcomers without a mentor", "Nieuwkomers zonder mentor"),
    AuditsPassed "audits_passed" => ("Audits passed per day", "Goedgekeurde toetsen per dag"),
    AuditsPassedWeek "audits_passed" => ("Audits passed per week", "Goedgekeurde toetsen per week"),
    AuditsFailed "audits_failed" => ("Audits failed per day", "Afgekeurde toetsen per dag"),
    AuditsFailedWeek "audits_failed" => ("Audits failed per week", "Afgekeurde toetsen per week"),
    Exposure "exposure" => ("Penalty exposure", "Dwangsomrisico"),
    Incurred "incurred" => ("Penalties incurred", "Betaalde dwangsommen"),
    Headline "headline" => ("Where we stand", "Waar we staan"),
    Change "change" => ("since", "sinds"),
    Charts "charts" => ("Over time", "In de tijd"),
    Targets "targets" => ("Announced dates", "Aangekondigde data"),
    Projected "projected" => ("Projected clearance", "Verwachte datum weggewerkt"),
    Promised "promised" => ("Date promised", "Beloofde datum"),
    OrLater "or_later" => ("{date} or later, or never", "{date} of later, of nooit"),
    Against "against" => (
        "the clearance projected each day against the date promised then",
        "de verwachte datum van elke dag tegen de toen beloofde datum"
    ),
    Dilemmas "dilemmas" => ("What needs a decision", "Wat om een besluit vraagt"),
    Mentoring "mentoring" => ("Mentoring", "Begeleiding"),
    Flows "flows" => ("New and decided cases per day", "Nieuwe en afgehandelde zaken per dag"),
    FlowsWeek "flows" => ("New and decided cases per week", "Nieuwe en afgehandelde zaken per week"),
    Staff "staff" => ("Staff", "Medewerkers"),
    Audits "audits" => ("Quality audits per day", "Kwaliteitstoetsen per dag"),
    AuditsWeek "audits" => ("Quality audits per week", "Kwaliteitstoetsen per week"),
    Penalties "penalties" => ("Penalties", "Dwangsommen"),
    AnnouncedAt "announced_at" => ("Announced", "Aangekondigd"),
    AnnouncedBy "announced_by" => ("By", "Door"),
    ClearBy "clear_by" => ("Cleared by", "Weggewerkt op"),
    ProjectionThen "projection_then" => ("Projection then", "Prognose toen"),
    Never "never" => ("never", "nooit"),
    Behind "behind" => ("already behind the projection", "toen al achter op de prognose"),
    BehindBy "behind_by" => (
        "already behind the projection ({gap})",
        "toen al achter op de prognose ({gap})"
    ),
    Within "within" => ("within the projection", "binnen de prognose"),
    NoTargets "no_targets" => ("No date was announced.", "Er is geen datum aangekondigd."),
    TooFewDays "too_few_days" => ("Too few days for a line yet.", "Nog te weinig dagen voor een lijn."),
    EmptyRange "empty_range" => (
        "No day of the range asked is in the history, which holds {days} days, from {first} to {last}.",
        "Geen dag van de gevraagde periode staat in de geschiedenis, die {days} dagen bevat, van {first} tot en met {last}."
    ),
    NoDays "no_days" => (
        "No day has ended since the history began: nothing to show yet.",
        "Er is nog geen dag voorbij sinds de geschiedenis begon: nog niets te tonen."
    ),
    Nothing "nothing" => (
        "Nothing in these figures calls for a decision today.",
        "Niets in deze cijfers vraagt vandaag om een besluit."
    ),
    QualityNotMeasured "quality_not_measured" => (
        "Quality has not been measured since {day}: longer than the {max} allowed between audits.",
        "De kwaliteit is sinds {day} niet gemeten: langer dan de toegestane {max} tussen twee toetsen."
    ),
    NewStaffShare "new_staff_share" => (
        "{share}% of the {decisions} decisions in {period} up to {day} were taken by staff in their first {weeks} weeks.",
        "{share}% van de {decisions} beslissingen in {period} tot en met {day} is genomen door medewerkers in hun eerste {weeks} weken."
    ),
    NewStaffShareHighest "new_staff_share_highest" => (
        "At its highest, {share}% of the {decisions} decisions in {period} up to {day} were taken by staff in their first {weeks} weeks.",
        "Op het hoogste punt is {share}% van de {decisions} beslissingen in {period} tot en met {day} genomen door medewerkers in hun eerste {weeks} weken."
    ),
    PeriodDays "period_days" => ("the {days} days", "de {days} dagen"),
    PeriodWindow "period_window" => ("the {window}", "de periode {window}"),
    UnmentoredOne "unmentored_one" => ("1 newcomer works without a mentor.", "1 nieuwkomer werkt zonder mentor."),
    UnmentoredMany "unmentored_many" => (
        "{count} newcomers work without a mentor.",
        "{count} nieuwkomers werken zonder mentor."
    ),
    TargetNotMet "target_not_met" => (
        "At the rate observed up to {day} the backlog does not shrink: the announced date of {date} for \"{target}\" will not be met.",
        "In het tempo tot en met {day} krimpt de voorraad niet: de aangekondigde datum {date} voor \"{target}\" wordt niet gehaald."
    ),
    TargetMissedBy "target_missed_by" => (
        "At the rate observed up to {day} the announced date of {date} for \"{target}\" will be missed by {gap}.",
        "In het tempo tot en met {day} wordt de aangekondigde datum {date} voor \"{target}\" {gap} gemist."
    ),
    TargetPassed "target_passed" => (
        "The announced date of {date} for \"{target}\" has passed with {open} cases still open on {day}.",
        "De aangekondigde datum {date} voor \"{target}\" is verstreken met op {day} nog {open} openstaande zaken."
    ),
    LessThanADay "less_than_a_day" => ("less than a day", "minder dan een dag"),
    OneDay "one_day" => ("1 day", "1 dag"),
    Days "days" => ("{n} days", "{n} dagen"),
    OneWeek "one_week" => ("1 week", "1 week"),
    Weeks "weeks" => ("{n} weeks", "{n} weken"),
}

impl Text {
    /// The text in `lang`.
    pub fn get(self, lang: Lang) -> &'static str {
        let (en, nl) = self.pair();
        match lang {
            Lang::En => en,
            Lang::Nl => nl,
        }
    }

    /// The text in `lang` with each `{name}` of `values` put in.
    pub fn fill(self, lang: Lang, values: &[(&str, &str)]) -> String {
        let mut text = self.get(lang).to_owned();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        debug_assert!(
            placeholders(&text).is_empty(),
            "{self:?}: a value is missing in {text:?}"
        );
        text
    }

    /// The text of a chart or a line summed by week, when `weekly`.
    fn weekly(self, weekly: bool) -> Text {
        if !weekly {
            return self;
        }
        match self {
            Text::Flows => Text::FlowsWeek,
            Text::Inflow => Text::InflowWeek,
            Text::Outflow => Text::OutflowWeek,
            Text::Audits => Text::AuditsWeek,
            Text::AuditsPassed => Text::AuditsPassedWeek,
            Text::AuditsFailed => Text::AuditsFailedWeek,
            other => other,
        }
    }
}

/// The `{name}`s of a text.
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    out.sort_unstable();
    out
}

/// Sums a figure over the tracks of a row.
fn tracks_sum(day: &api::HistoryDay, value: impl Fn(&api::HistoryTrack) -> f64) -> f64 {
    day.tracks.values().map(value).sum()
}

/// The shortest due-soon window of a track's row: its label and count. Labels are ISO 8601
/// durations; one that does not read as a length sorts after every one that does.
fn shortest_due_soon(track: &api::HistoryTrack) -> Option<(&str, i64)> {
    track
        .due_soon
        .iter()
        .min_by_key(|(label, _)| (window_length(label).is_none(), window_length(label)))
        .map(|(label, &n)| (label.as_str(), n))
}

/// The due-soon count of a track: of its shortest window.
fn due_soon(track: &api::HistoryTrack) -> f64 {
    shortest_due_soon(track).map_or(0.0, |(_, n)| n as f64)
}

/// A length in words: whole days ("7 days"), else as written (`label`).
fn length_words(lang: Lang, length: Option<jiff::SignedDuration>, label: &str) -> String {
    match length.map(|d| d.as_secs()) {
        Some(86_400) => Text::OneDay.get(lang).to_owned(),
        Some(secs) if secs > 0 && secs % 86_400 == 0 => {
            Text::Days.fill(lang, &[("n", &(secs / 86_400).to_string())])
        }
        _ => label.to_owned(),
    }
}

/// Above this many days, the lines of cumulative totals (flows, audits) are summed by week rather
/// than by day: two years of daily flows draw as a band, not a line.
pub const WEEKLY_AFTER_DAYS: usize = 91;

/// The days a difference series reads: every `step`-th day counting back from the last, oldest
/// first.
fn sampled(days: usize, step: usize) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..days).rev().step_by(step.max(1)).collect();
    indices.reverse();
    indices
}

/// A series over the days: the level each day, or for cumulative totals the difference between
/// consecutive sampled days (every day, or every seventh for a weekly chart; the first sampled day
/// has no previous and is left out of a difference series).
fn series(
    days: &[api::HistoryDay],
    value: impl Fn(&api::HistoryDay) -> f64,
    per_day: bool,
    step: usize,
) -> Vec<f64> {
    if per_day {
        sampled(days.len(), step)
            .windows(2)
            .map(|w| value(&days[w[1]]) - value(&days[w[0]]))
            .collect()
    } else {
        days.iter().map(value).collect()
    }
}

/// One line of a chart: its text and its values, oldest first.
pub type Line = (Text, Vec<f64>);

/// A chart: its title, its lines, the day (index into the history's days) of each value, and
/// whether its values are weekly sums.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: Text,
    pub lines: Vec<Line>,
    pub days: Vec<usize>,
    pub weekly: bool,
}

/// A headline figure: its text and how to read it from a day.
type Headline = (Text, fn(&api::HistoryDay) -> f64);

/// The named series of every chart, in page order.
pub fn charts(history: &api::History) -> Vec<Chart> {
    let days = history.days.as_slice();
    let step = if days.len() > WEEKLY_AFTER_DAYS { 7 } else { 1 };
    let flow_days: Vec<usize> = sampled(days.len(), step).into_iter().skip(1).collect();
    let level_days: Vec<usize> = (0..days.len()).collect();
    let weekly = step == 7;
    let chart = |title: Text, lines: Vec<Line>, per_day: bool| Chart {
        title: title.weekly(per_day && weekly),
        lines: lines
            .into_iter()
            .map(|(key, values)| (key.weekly(per_day && weekly), values))
            .collect(),
        days: if per_day {
            flow_days.clone()
        } else {
            level_days.clone()
        },
        weekly: per_day && weekly,
    };
    let level = |value: &dyn Fn(&api::HistoryDay) -> f64| series(days, value, false, step);
    let flow = |value: &dyn Fn(&api::HistoryDay) -> f64| series(days, value, true, step);
    vec![
        chart(
            Text::Open,
            vec![
                (Text::Open, level(&|d| tracks_sum(d, |t| t.open as f64))),
                (
                    Text::Overdue,
                    level(&|d| tracks_sum(d, |t| t.overdue as f64)),
                ),
                (Text::DueSoon, level(&|d| tracks_sum(d, due_soon))),
            ],
            false,
        ),
        chart(
            Text::Flows,
            vec![
                (
                    Text::Inflow,
                    flow(&|d| tracks_sum(d, |t| t.inflow_total as f64)),
                ),
                (
                    Text::Outflow,
                    flow(&|d| tracks_sum(d, |t| t.outflow_total as f64)),
                ),
            ],
            true,
        ),
        chart(
            Text::Staff,
            vec![
                (
                    Text::Experienced,
                    level(&|d| d.employees.experienced as f64),
                ),
                (
                    Text::Inexperienced,
                    level(&|d| d.employees.inexperienced as f64),
                ),
            ],
            false,
        ),
        chart(
            Text::Mentoring,
            vec![
                (
                    Text::PerMentor,
                    level(&|d| d.employees.mentees_per_mentor.unwrap_or(0.0)),
                ),
                (Text::Unmentored, level(&|d| d.employees.unmentored as f64)),
            ],
            false,
        ),
        chart(
            Text::Audits,
            vec![
                (Text::AuditsPassed, flow(&|d| d.audits.passed_total as f64)),
                (Text::AuditsFailed, flow(&|d| d.audits.failed_total as f64)),
            ],
            true,
        ),
        chart(
            Text::Penalties,
            vec![
                (
                    Text::Exposure,
                    level(&|d| tracks_sum(d, |t| t.penalty_exposure_euros)),
                ),
                (
                    Text::Incurred,
                    level(&|d| tracks_sum(d, |t| t.penalty_incurred_euros)),
                ),
            ],
            false,
        ),
    ]
}

const COLOURS: [&str; 3] = ["#1f4e79", "#c0392b", "#d68910"];

/// What a chart's vertical axis counts, for its tick labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YAxis {
    Count,
    Euros,
    /// Weeks after `start`: the ticks are labelled with their dates.
    WeeksAfter(jiff::Timestamp),
}

impl YAxis {
    fn label(self, lang: Lang, value: f64) -> String {
        match self {
            YAxis::Count => lang.number(value),
            YAxis::Euros => lang.euros(value),
            YAxis::WeeksAfter(start) => start
                .checked_add(jiff::SignedDuration::from_secs((value * 604_800.0) as i64))
                .map_or_else(|_| lang.number(value), date_of),
        }
    }

    /// The distance between ticks for a chart whose values reach `max`: about four ticks, at a
    /// round number (1, 2, 2.5 or 5 times a power of ten; whole weeks for dates).
    fn tick_step(self, max: f64) -> f64 {
        if let YAxis::WeeksAfter(_) = self {
            return [1.0, 2.0, 4.0, 8.0, 13.0, 26.0, 52.0, 104.0]
                .into_iter()
                .find(|&weeks| max / weeks <= 5.0)
                .unwrap_or(208.0);
        }
        let rough = (max / 4.0).max(f64::MIN_POSITIVE);
        let power = 10f64.powf(rough.log10().floor());
        [1.0, 2.0, 2.5, 5.0, 10.0]
            .into_iter()
            .map(|m| m * power)
            .find(|&step| step >= rough)
            .unwrap_or(10.0 * power)
    }
}

/// The ticks of a vertical axis whose values reach `max`: from 0 to the first tick at or above it.
pub fn y_ticks(axis: YAxis, max: f64) -> Vec<f64> {
    let max = if max > 0.0 { max } else { 1.0 };
    let step = axis.tick_step(max);
    if let YAxis::WeeksAfter(_) = axis {
        // The top is the chart's own ("that date or later, or never"): a tick of its own.
        let mut ticks: Vec<f64> = (0..)
            .map(|i| f64::from(i) * step)
            .take_while(|&t| t < max - step / 4.0)
            .collect();
        ticks.push(max);
        return ticks;
    }
    let count = (max / step).ceil().max(1.0) as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// The indices (into a chart's values) of the labelled days under the time axis: the first, the
/// last, and up to three evenly between.
pub fn x_ticks(values: usize) -> Vec<usize> {
    match values {
        0 => Vec::new(),
        1 => vec![0],
        n => {
            let gaps = (n - 1).min(4);
            let mut ticks: Vec<usize> = (0..=gaps).map(|i| i * (n - 1) / gaps).collect();
            ticks.dedup();
            ticks
        }
    }
}

/// An inline SVG line chart: light gridlines at labelled ticks on both axes (values on the left,
/// days below), the series (`data-values` holds each exactly), and the legend. `days` names the
/// day of each value; `top_label`, when given, is written above the plot.
fn svg(lang: Lang, chart: &Chart, days: &[String], axis: YAxis, top_label: Option<&str>) -> String {
    let series = &chart.lines;
    let (width, height, left, right, top, bottom) = (680.0, 240.0, 86.0, 14.0, 24.0, 56.0);
    let base = height - bottom;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let ticks = y_ticks(axis, max);
    let ceiling = ticks.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    let y = |v: f64| base - v / ceiling * (base - top);
    let plot_width = width - left - right;
    let count = series.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let x = |i: usize| {
        if count > 1 {
            left + i as f64 * plot_width / (count - 1) as f64
        } else {
            left
        }
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\">"
    );
    if let Some(label) = top_label {
        let _ = write!(
            out,
            "<text x=\"{left}\" y=\"12\" font-size=\"11\" fill=\"#555\">{}</text>",
            escape(label)
        );
    }
    for &tick in &ticks {
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/>\
             <text class=\"y-tick\" data-value=\"{tick}\" x=\"{}\" y=\"{:.1}\" font-size=\"10\" fill=\"#555\" text-anchor=\"end\">{}</text>",
            width - right,
            left - 6.0,
            y(tick) + 3.5,
            escape(&axis.label(lang, tick)),
            y = y(tick),
        );
    }
    for i in x_ticks(count) {
        let anchor = match i {
            0 => "start",
            i if i + 1 == count => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{base}\" stroke=\"#eeeeee\"/>\
             <text class=\"x-tick\" x=\"{x:.1}\" y=\"{}\" font-size=\"10\" fill=\"#555\" text-anchor=\"{anchor}\">{}</text>",
            base + 14.0,
            escape(days.get(i).map_or("", String::as_str)),
            x = x(i),
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#999\"/>",
        width - right
    );
    // Each legend starts after the one before it: its text at about 6.5 px a character (11 px
    // sans-serif) and a gap, so a long label (the Dutch ones) is not cut at the right edge.
    let mut legend_x = left;
    for (i, (key, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
            .collect();
        let data: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(
            out,
            "<polyline data-series=\"{}\" data-values=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{colour}\">{}</text>",
            key.id(),
            data.join(","),
            points.join(" "),
            legend_x,
            height - 10.0,
            escape(key.get(lang))
        );
        legend_x += key.get(lang).chars().count() as f64 * 6.5 + 24.0;
    }
    out.push_str("</svg>");
    out
}

/// Groups the digits of a whole number in threes with `separator`.
fn grouped(whole: u64, separator: char) -> String {
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(digit);
    }
    out
}

impl Lang {
    /// A number as the language writes it: whole numbers with thousands grouped (34,090 in
    /// English, 34.090 in Dutch), others to one decimal (1.5, 1,5). Never `-0`.
    pub fn number(self, v: f64) -> String {
        let (thousands, decimal) = match self {
            Lang::En => (',', '.'),
            Lang::Nl => ('.', ','),
        };
        if !v.is_finite() {
            return v.to_string();
        }
        let tenths = (v.abs() * 10.0).round();
        let sign = if v < 0.0 && tenths > 0.0 { "-" } else { "" };
        // Below 2^53 the tenths are exact integers; beyond, whole numbers only.
        let tenths = tenths.min(9.0e15) as u64;
        let (whole, tenth) = (tenths / 10, tenths % 10);
        if tenth == 0 {
            format!("{sign}{}", grouped(whole, thousands))
        } else {
            format!("{sign}{}{decimal}{tenth}", grouped(whole, thousands))
        }
    }

    /// An amount of whole euros: €11,943,733 in English, € 11.943.733 in Dutch (a non-breaking
    /// space after the sign).
    pub fn euros(self, v: f64) -> String {
        let whole = self.number(v.round());
        let (sign, digits) = match whole.strip_prefix('-') {
            Some(digits) => ("-", digits.to_owned()),
            None => ("", whole),
        };
        match self {
            Lang::En => format!("{sign}€{digits}"),
            // A non-breaking space: the amount never wraps away from its sign.
            Lang::Nl => format!("{sign}€\u{a0}{digits}"),
        }
    }

    /// A change: its sign always written (+1,234; -5; 0).
    fn change(self, delta: f64, euros: bool) -> String {
        let text = if euros {
            self.euros(delta)
        } else {
            self.number(delta)
        };
        if delta > 0.0 && (delta * 10.0).round() != 0.0 {
            format!("+{text}")
        } else {
            text
        }
    }
}

/// The percentage of a row's decisions in the window taken by new staff, and the decisions; `None`
/// without decisions by new staff.
fn new_staff_share(row: &api::HistoryDay) -> Option<(f64, f64)> {
    let decisions = row.decisions.in_window as f64;
    let by_new = row.decisions.by_new_staff_in_window as f64;
    (decisions > 0.0 && by_new > 0.0).then(|| (100.0 * by_new / decisions, decisions))
}

/// A window label (an ISO 8601 duration such as "P28D") as a length, days being 24 hours.
fn window_length(label: &str) -> Option<jiff::SignedDuration> {
    label.parse::<jiff::SignedDuration>().ok().or_else(|| {
        label.parse::<jiff::Span>().ok().and_then(|s| {
            s.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .ok()
        })
    })
}

/// "N% of the decisions in the window up to the day were taken by staff in their first weeks", of
/// one history row (`highest`: said as the highest share of the period); `None` without any.
fn new_staff_fact(
    lang: Lang,
    history: &api::History,
    row: &api::HistoryDay,
    highest: bool,
) -> Option<String> {
    let (share, decisions) = new_staff_share(row)?;
    let _ = history;
    let weeks = row.new_staff_weeks;
    let window = row.decision_window.as_str();
    // "P28D" in words: whole days, or the label itself.
    let days = window_length(window)
        .filter(|d| d.as_secs() > 0 && d.as_secs() % 86_400 == 0)
        .map(|d| d.as_secs() / 86_400);
    let period = match days {
        Some(days) => Text::PeriodDays.fill(lang, &[("days", &days.to_string())]),
        None => Text::PeriodWindow.fill(lang, &[("window", window)]),
    };
    let text = if highest {
        Text::NewStaffShareHighest
    } else {
        Text::NewStaffShare
    };
    Some(text.fill(
        lang,
        &[
            ("share", &format!("{share:.0}")),
            ("decisions", &lang.number(decisions.round())),
            ("period", &period),
            ("day", &row.day.to_string()),
            ("weeks", &weeks.to_string()),
        ],
    ))
}

/// The date of an instant, `YYYY-MM-DD` in UTC.
fn date_of(instant: api::Timestamp) -> String {
    instant.strftime("%Y-%m-%d").to_string()
}

/// Text for HTML (and SVG): the one escape of the crate's pages.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The clearance the history projected each day for a target against the date promised for it that
/// day, both in weeks after the first of those days (drawn from 0, the first day, up).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetChart {
    pub target: String,
    /// The days drawn (indices into the history's days): from the first with a promise.
    pub days: Vec<usize>,
    /// Weeks to the projected clearance; a projection beyond the chart's top, or none (the
    /// backlog not shrinking), is drawn at the top.
    pub projected: Vec<f64>,
    pub promised: Vec<f64>,
    /// The instant at the chart's top.
    pub top: jiff::Timestamp,
}

/// The track of the history a target is about: its own, or the only one when it is about all
/// tracks; `None` when the history has no such track (or several for a target of all tracks).
fn target_track<'a>(history: &'a api::History, target: &api::Target) -> Option<&'a str> {
    let first = history.days.first()?;
    let mut tracks = first.tracks.keys();
    match &target.track {
        Some(track) => tracks.find(|t| *t == track).map(String::as_str),
        None => match (tracks.next(), tracks.next()) {
            (Some(only), None) => Some(only.as_str()),
            _ => None,
        },
    }
}

/// The date promised for a target at `at`: the latest announcement made by then, else the
/// configured date.
fn promised_at(target: &api::Target, at: jiff::Timestamp) -> Option<jiff::Timestamp> {
    target
        .announcements
        .iter()
        .rev()
        .find(|a| a.announced_at <= at)
        .map(|a| a.clear_by)
        .or(target.configured_clear_by)
}

/// The clearance a row projects for a track: `None` when the backlog was not shrinking.
fn projected_of(row: &api::HistoryDay, track: &str) -> Option<jiff::Timestamp> {
    let seconds = row.tracks.get(track)?.clearance_seconds?;
    (seconds.is_finite() && seconds < 1e11)
        .then(|| {
            row.at
                .checked_add(jiff::SignedDuration::from_secs_f64(seconds))
                .ok()
        })
        .flatten()
}

/// A chart for each target whose track the history has (a target of all tracks only when there
/// is one track) and that had a promise on some day of the range.
pub fn target_charts(history: &api::History, targets: &[api::Target]) -> Vec<TargetChart> {
    const WEEK: f64 = 604_800.0;
    let mut out = Vec::new();
    for target in targets {
        let Some(track) = target_track(history, target) else {
            continue;
        };
        let points: Vec<(
            usize,
            jiff::Timestamp,
            jiff::Timestamp,
            Option<jiff::Timestamp>,
        )> = history
            .days
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let promised = promised_at(target, d.at)?;
                Some((i, d.at, promised, projected_of(d, track)))
            })
            .collect();
        let Some(&(_, start, _, _)) = points.first() else {
            continue;
        };
        // To a tenth of a week (the chart cannot show more).
        let weeks = |t: jiff::Timestamp| {
            ((t.as_second() - start.as_second()) as f64 / WEEK * 10.0).round() / 10.0
        };
        // The top: half as far again beyond the start as the latest date promised.
        let latest_promise = points.iter().map(|p| weeks(p.2)).fold(1.0f64, f64::max);
        let top_weeks = (latest_promise * 1.5).ceil();
        let top = start
            .checked_add(jiff::SignedDuration::from_secs((top_weeks * WEEK) as i64))
            .unwrap_or(start);
        out.push(TargetChart {
            target: target.target.clone(),
            days: points.iter().map(|p| p.0).collect(),
            projected: points
                .iter()
                .map(|p| p.3.map_or(top_weeks, |t| weeks(t).clamp(0.0, top_weeks)))
                .collect(),
            promised: points
                .iter()
                .map(|p| weeks(p.2).clamp(0.0, top_weeks))
                .collect(),
            top,
        });
    }
    out
}

/// The gap between two instants in words: under a day, whole days under a week, else weeks
/// (rounded); never "0 weeks".
fn gap_words(lang: Lang, later: jiff::Timestamp, earlier: jiff::Timestamp) -> String {
    let seconds = (later.as_second() - earlier.as_second()).abs();
    let days = (seconds as f64 / 86_400.0).round() as i64;
    let weeks = (seconds as f64 / 604_800.0).round() as i64;
    if seconds < 86_400 {
        Text::LessThanADay.get(lang).to_owned()
    } else if days < 7 {
        match days {
            1 => Text::OneDay.get(lang).to_owned(),
            n => Text::Days.fill(lang, &[("n", &n.to_string())]),
        }
    } else if weeks <= 1 {
        Text::OneWeek.get(lang).to_owned()
    } else {
        Text::Weeks.fill(lang, &[("n", &weeks.to_string())])
    }
}

/// The facts that ask for a decision, in plain sentences.
fn dilemmas(
    lang: Lang,
    history: &api::History,
    targets: &[api::Target],
    context: &Context,
) -> Vec<String> {
    let days = history.days.as_slice();
    let mut out = Vec::new();
    let Some(last) = days.last() else {
        return out;
    };
    let audits = |d: &api::HistoryDay| d.audits.passed_total + d.audits.failed_total;
    // The last row whose audit count moved: the audit was on its day. Stated when, wherever in
    // that day it was, more than `quality.max_audit_gap` has passed by the range's end.
    if let Some(audited) = days
        .windows(2)
        .rev()
        .find(|w| audits(&w[1]) > audits(&w[0]))
    {
        let since = last.at.duration_since(audited[1].at);
        if since > context.max_audit_gap {
            let max = length_words(
                lang,
                Some(context.max_audit_gap),
                &context.max_audit_gap.to_string(),
            );
            out.push(
                Text::QualityNotMeasured
                    .fill(lang, &[("day", &audited[1].day.to_string()), ("max", &max)]),
            );
        }
    }
    // The share of decisions by new staff: on the last day, and at its highest (of the days with
    // at least `min_decisions` decisions, the earliest of equal ones) when higher.
    let share = |d: &api::HistoryDay| new_staff_share(d).map(|(share, _)| share);
    out.extend(new_staff_fact(lang, history, last, false));
    let mut peak: Option<(f64, &api::HistoryDay)> = None;
    for day in days
        .iter()
        .filter(|d| d.decisions.in_window >= context.min_decisions)
    {
        if let Some(s) = share(day)
            && peak.is_none_or(|(highest, _)| s > highest)
        {
            peak = Some((s, day));
        }
    }
    if let Some((highest, day)) = peak
        && highest >= share(last).unwrap_or(0.0) + 1.0
    {
        out.extend(new_staff_fact(lang, history, day, true));
    }
    let unmentored = last.employees.unmentored;
    if unmentored == 1 {
        out.push(Text::UnmentoredOne.get(lang).to_owned());
    } else if unmentored > 1 {
        out.push(Text::UnmentoredMany.fill(lang, &[("count", &lang.number(unmentored as f64))]));
    }
    // Each target as it stood at the range's end: the date promised by then against the
    // projection of the last row.
    let end = last.day.to_string();
    for target in targets {
        let Some(track) = target_track(history, target) else {
            continue;
        };
        let Some(promised) = promised_at(target, last.at) else {
            continue;
        };
        let name = target.target.as_str();
        let date = date_of(promised);
        let open = last.tracks.get(track).map_or(0, |t| t.open);
        if promised <= last.at {
            if open > 0 {
                out.push(Text::TargetPassed.fill(
                    lang,
                    &[
                        ("date", &date),
                        ("target", name),
                        ("open", &lang.number(open as f64)),
                        ("day", &end),
                    ],
                ));
            }
            continue;
        }
        match projected_of(last, track) {
            None => out.push(
                Text::TargetNotMet.fill(lang, &[("day", &end), ("date", &date), ("target", name)]),
            ),
            Some(projected) if projected > promised => out.push(Text::TargetMissedBy.fill(
                lang,
                &[
                    ("day", &end),
                    ("date", &date),
                    ("target", name),
                    ("gap", &gap_words(lang, projected, promised)),
                ],
            )),
            Some(_) => {}
        }
    }
    out
}

/// What the page needs beside the history of the range and the targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// `quality.max_audit_gap`: a longer time without an audit is stated.
    pub max_audit_gap: jiff::SignedDuration,
    /// The fewest decisions in a row's window for its share by new staff to be stated at its
    /// highest (`thresholds.min_weekly_decisions`).
    pub min_decisions: u64,
    /// The days the whole history holds (for a range without any).
    pub held: Held,
}

/// The days of the whole history: how many, the first and the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Held {
    pub days: usize,
    pub first: Option<api::Date>,
    pub last: Option<api::Date>,
}

impl Held {
    /// The days held by a history (all of its rows).
    pub fn of(history: &api::History) -> Held {
        Held {
            days: history.days.len(),
            first: history.days.first().map(|d| d.day),
            last: history.days.last().map(|d| d.day),
        }
    }
}

/// The minimum sample of the new-staff fact when `thresholds.min_weekly_decisions` is not
/// configured (the shipped value).
pub const DEFAULT_MIN_DECISIONS: u64 = 20;

/// The whole page.
pub fn render(
    lang: Lang,
    history: &api::History,
    targets: &[api::Target],
    context: &Context,
) -> String {
    let days = history.days.as_slice();
    let mut html = String::new();
    let lang_code = lang.code();
    let title = escape(Text::Title.get(lang));
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"{lang_code}\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:720px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}\
         td.n,th.n{{text-align:right}}h2{{margin-top:1.6em}}@media print{{h2,h3{{break-after:avoid}}svg,table{{break-inside:avoid}}}}</style>\
         </head><body><h1>{title}</h1>",
    );
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        let held = &context.held;
        let text = match (held.first, held.last) {
            (Some(first), Some(last)) if held.days > 0 => Text::EmptyRange.fill(
                lang,
                &[
                    ("days", &lang.number(held.days as f64)),
                    ("first", &first.to_string()),
                    ("last", &last.to_string()),
                ],
            ),
            _ => Text::NoDays.get(lang).to_owned(),
        };
        let _ = write!(html, "<p>{}</p></body></html>", escape(&text));
        return html;
    };
    let day = |d: &api::HistoryDay| d.day.to_string();
    let _ = write!(
        html,
        "<p>{}: {} – {}</p><h2>{}</h2><table>",
        escape(Text::Period.get(lang)),
        escape(&day(first)),
        escape(&day(last)),
        escape(Text::Headline.get(lang))
    );
    // Each figure on the last day, and its change since the day before and since the first day of
    // the range (the end of the previous report, when reports follow each other).
    let previous = days.len().checked_sub(2).map(|i| &days[i]);
    let since_first = (days.len() > 2).then_some(first);
    let headline: [Headline; 6] = [
        (Text::Open, |d| tracks_sum(d, |t| t.open as f64)),
        (Text::Overdue, |d| tracks_sum(d, |t| t.overdue as f64)),
        (Text::DueSoon, |d| tracks_sum(d, due_soon)),
        (Text::Experienced, |d| d.employees.experienced as f64),
        (Text::Inexperienced, |d| d.employees.inexperienced as f64),
        (Text::Exposure, |d| {
            tracks_sum(d, |t| t.penalty_exposure_euros)
        }),
    ];
    let _ = write!(
        html,
        "<tr><th></th><th class=\"n\">{}</th>",
        escape(&day(last))
    );
    for base in [previous, since_first].into_iter().flatten() {
        let _ = write!(
            html,
            "<th class=\"n\">{} {}</th>",
            escape(Text::Change.get(lang)),
            escape(&day(base))
        );
    }
    html.push_str("</tr>");
    // The due-soon window counted, named: the shortest of the last day.
    let window = last
        .tracks
        .values()
        .filter_map(shortest_due_soon)
        .map(|(label, _)| label)
        .min_by_key(|label| (window_length(label).is_none(), window_length(label)));
    for (key, value) in headline {
        let now = value(last);
        let label = match (key, window) {
            (Text::DueSoon, Some(window)) => Text::DueWithin.fill(
                lang,
                &[("window", &length_words(lang, window_length(window), window))],
            ),
            _ => key.get(lang).to_owned(),
        };
        let euros = key == Text::Exposure;
        let _ = write!(
            html,
            "<tr><th>{}</th><td class=\"n\">{}</td>",
            escape(&label),
            if euros {
                lang.euros(now)
            } else {
                lang.number(now)
            },
        );
        for base in [previous, since_first].into_iter().flatten() {
            let _ = write!(
                html,
                "<td class=\"n\">{}</td>",
                lang.change(now - value(base), euros)
            );
        }
        html.push_str("</tr>");
    }
    let _ = write!(html, "</table><h2>{}</h2>", escape(Text::Charts.get(lang)));
    for chart in charts(history) {
        let _ = write!(html, "<h3>{}</h3>", escape(chart.title.get(lang)));
        // A line needs two values; a difference line has one value fewer than it reads days.
        match chart.days.as_slice() {
            [_, _, ..] => {
                let labels: Vec<String> = chart.days.iter().map(|&i| day(&days[i])).collect();
                let axis = if chart.title == Text::Penalties {
                    YAxis::Euros
                } else {
                    YAxis::Count
                };
                html.push_str(&svg(lang, &chart, &labels, axis, None));
            }
            _ => {
                let _ = write!(html, "<p>{}</p>", escape(Text::TooFewDays.get(lang)));
            }
        }
    }
    let _ = write!(html, "<h2>{}</h2>", escape(Text::Targets.get(lang)));
    for target in target_charts(history, targets) {
        let chart = Chart {
            title: Text::Against,
            lines: vec![
                (Text::Projected, target.projected.clone()),
                (Text::Promised, target.promised.clone()),
            ],
            days: target.days.clone(),
            weekly: false,
        };
        let Some(&from) = chart.days.first() else {
            continue;
        };
        let _ = write!(
            html,
            "<h3>{}: {}</h3>",
            escape(&target.target),
            escape(Text::Against.get(lang))
        );
        let top = Text::OrLater.fill(lang, &[("date", &date_of(target.top))]);
        let labels: Vec<String> = chart.days.iter().map(|&i| day(&days[i])).collect();
        let axis = YAxis::WeeksAfter(days[from].at);
        html.push_str(&svg(lang, &chart, &labels, axis, Some(&top)));
    }
    let mut rows = String::new();
    for target in targets {
        for a in target
            .announcements
            .iter()
            .filter(|a| a.announced_at <= last.at)
        {
            let verdict = match (a.behind_projection, a.projected_clearance) {
                (true, Some(projected)) => {
                    Text::BehindBy.fill(lang, &[("gap", &gap_words(lang, projected, a.clear_by))])
                }
                (true, None) => Text::Behind.get(lang).to_owned(),
                (false, _) => Text::Within.get(lang).to_owned(),
            };
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&target.target),
                escape(&date_of(a.announced_at)),
                escape(a.announced_by.as_deref().unwrap_or("")),
                escape(&date_of(a.clear_by)),
                escape(
                    &a.projected_clearance
                        .map_or_else(|| Text::Never.get(lang).to_owned(), date_of)
                ),
                escape(&verdict),
            );
        }
    }
    if rows.is_empty() {
        let _ = write!(html, "<p>{}</p>", escape(Text::NoTargets.get(lang)));
    } else {
        let _ = write!(
            html,
            "<table><tr><th></th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>{rows}</table>",
            escape(Text::AnnouncedAt.get(lang)),
            escape(Text::AnnouncedBy.get(lang)),
            escape(Text::ClearBy.get(lang)),
            escape(Text::ProjectionThen.get(lang)),
        );
    }
    let _ = write!(html, "<h2>{}</h2><ul>", escape(Text::Dilemmas.get(lang)));
    let facts = dilemmas(lang, history, targets, context);
    if facts.is_empty() {
        let _ = write!(html, "<li>{}</li>", escape(Text::Nothing.get(lang)));
    }
    for fact in facts {
        let _ = write!(html, "<li>{}</li>", escape(&fact));
    }
    html.push_str("</ul></body></html>");
    html
}

/// `backlogd report`: the page a running daemon serves at `GET /report` for the range and
/// language (without `lang`, the daemon's `report.language`).
pub fn fetch(
    client: &crate::client::Client,
    from: Option<jiff::civil::Date>,
    to: Option<jiff::civil::Date>,
    lang: Option<Lang>,
) -> Result<String, FetchError> {
    let mut query = Vec::new();
    for (key, value) in [("from", from), ("to", to)] {
        if let Some(value) = value {
            query.push(format!("{key}={value}"));
        }
    }
    if let Some(lang) = lang {
        query.push(format!("lang={}", lang.code()));
    }
    let page = if query.is_empty() {
        client.get("/report")?
    } else {
        client.get(&format!("/report?{}", query.join("&")))?
    };
    Ok(String::from_utf8(page.to_vec())?)
}

/// Why [`fetch`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error("the page is not UTF-8: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

#[cfg(test)]
mod tests;
