//! Renders `/metrics`: the latest published view of the state aggregates as Prometheus families, plus
//! the daemon's own instruments from the registry, in the text exposition format 0.0.4.
//!
//! Cost is O(series): the view holds aggregates, never cases. Case ids never appear here; the only
//! label values are configured names (tracks, phases, windows, roles), seen locations (bounded by
//! `limits.max_locations`) and fixed enums.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use crate::core::aggregates::LEAD_TIME_BUCKET_DAYS;
use crate::core::event::{CloseReason, Contract, Outcome};
use crate::core::time::{NANOS_PER_SECOND, seconds_f64};
use crate::engine::View;
use crate::telemetry::Telemetry;

/// The full exposition text for one scrape. Without a view (recovery is not complete) only the
/// process' own families are written: a scrape during recovery must never show a state other than
/// the recovered one, or Prometheus would read the counters as reset.
pub fn render(view: Option<&View>, telemetry: &Telemetry) -> String {
    let mut families = view.map(state_families).unwrap_or_default();
    families.extend(telemetry.registry.gather());
    // The text encoder refuses a family without samples (e.g. per-location gauges before any
    // location was seen); such a family is simply not written.
    families.retain(|family| !family.get_metric().is_empty());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::with_capacity(64 * 1024);
    // Encoding into a Vec cannot fail on IO; the families are built well-formed above.
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!(error = %e, "encoding /metrics failed");
    }
    let text = String::from_utf8(out).unwrap_or_default();
    // The text encoder writes a value with Rust's `Display`, which spells infinity `inf`; the
    // exposition format spells it `+Inf` (Prometheus reads both, stricter parsers do not). Only
    // gauges can be infinite here (a clearance time while the backlog is not shrinking), so the
    // text is rewritten only when one is: the common scrape pays one pass over the samples.
    if families.iter().any(|family| {
        family
            .get_metric()
            .iter()
            .any(|metric| metric.get_gauge().get_value().is_infinite())
    }) {
        return text
            .replace(" inf\n", " +Inf\n")
            .replace(" -inf\n", " -Inf\n");
    }
    text
}

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The families a view contributes to `/metrics` that have a past, exactly as a scrape would show
/// them (empty families left out, sorted by name): everything but the process' own instruments and
/// `backlogd_remembered_event_ids`, which counts what this process remembers of its arrivals rather
/// than anything about the cases. `backlogd backfill` writes these at every step.
pub fn history_families(view: &View) -> Vec<MetricFamily> {
    let mut families = state_families(view);
    families.retain(|family| {
        !family.get_metric().is_empty() && family.name() != "backlogd_remembered_event_ids"
    });
    families.sort_by(|a, b| a.name().cmp(b.name()));
    families
}

/// Builds one family sample by sample.
struct Family(MetricFamily);

impl Family {
    fn new(name: &str, help: &str, kind: MetricType) -> Family {
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(kind);
        Family(family)
    }

    fn gauge(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::GAUGE)
    }

    fn counter(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::COUNTER)
    }

    fn metric(labels: &[(&str, &str)]) -> Metric {
        let mut metric = Metric::default();
        metric.set_label(
            labels
                .iter()
                .map(|(name, value)| {
                    let mut pair = LabelPair::default();
                    pair.set_name((*name).to_owned());
                    pair.set_value((*value).to_owned());
                    pair
                })
                .collect(),
        );
        metric
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Family {
        let mut metric = Family::metric(labels);
        if self.0.get_field_type() == MetricType::COUNTER {
            let mut counter = Counter::default();
            counter.set_value(value);
            metric.set_counter(counter);
        } else {
            let mut gauge = Gauge::default();
            gauge.set_value(value);
            metric.set_gauge(gauge);
        }
        self.0.mut_metric().push(metric);
        self
    }

    fn histogram_sample(
        &mut self,
        labels: &[(&str, &str)],
        upper_bounds: &[f64],
        bucket_counts: &[u64],
        count: u64,
        sum: f64,
    ) {
        let mut metric = Family::metric(labels);
        let mut histogram = Histogram::default();
        let mut cumulative = 0;
        let buckets = upper_bounds
            .iter()
            .zip(bucket_counts)
            .map(|(&upper, &count)| {
                cumulative += count;
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(upper);
                bucket.set_cumulative_count(cumulative);
                bucket
            })
            .collect();
        histogram.set_bucket(buckets);
        histogram.set_sample_count(count);
        histogram.set_sample_sum(sum);
        metric.set_histogram(histogram);
        self.0.mut_metric().push(metric);
    }
}

/// A family with one sample a track (label `track`): its name, help, type and value.
struct PerTrack {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    value: fn(&View, usize) -> f64,
}

/// The per-track families, in the order they are built.
const PER_TRACK: &[PerTrack] = &[
    PerTrack {
        name: "backlogd_cases_suspended",
        help: "Open cases whose deadline clock is stopped.",
        kind: MetricType::GAUGE,
        value: |v, t| v.aggregates.tracks[t].suspended as f64,
    },
    PerTrack {
        name: "backlogd_cases_unassigned",
        help: "Open cases assigned to no active employee.",
        kind: MetricType::GAUGE,
        value: |v, t| v.aggregates.tracks[t].unassigned as f64,
    },
    PerTrack {
        name: "backlogd_case_max_overdue_seconds",
        help: "How long past its deadline the most overdue open case is; 0 if none is overdue.",
        kind: MetricType::GAUGE,
        value: |v, t| seconds_f64(v.max_overdue_nanos[t]),
    },
    PerTrack {
        name: "backlogd_penalty_exposure_euros",
        help: "Penalty accrued so far over open overdue cases, in euros.",
        kind: MetricType::GAUGE,
        value: |v, t| v.aggregates.tracks[t].penalty_exposure_cents as f64 / 100.0,
    },
    PerTrack {
        name: "backlogd_penalty_incurred_euros_total",
        help: "Accrued penalty of cases at their decision or closure, in euros.",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].penalty_incurred_cents as f64 / 100.0,
    },
    PerTrack {
        name: "backlogd_cases_registered_total",
        help: "Cases registered.",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].registered as f64,
    },
    PerTrack {
        name: "backlogd_cases_reopened_total",
        help: "Closed cases reopened (e.g. a decision annulled by a court).",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].reopened as f64,
    },
    PerTrack {
        name: "backlogd_decisions_overdue_total",
        help: "Decisions taken after the case's deadline.",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].decisions_overdue as f64,
    },
    PerTrack {
        name: "backlogd_decisions_by_inexperienced_total",
        help: "Decisions whose decider was not experienced at decision time.",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].decisions_by_inexperienced as f64,
    },
    PerTrack {
        name: "backlogd_decisions_benefit_of_doubt_total",
        help: "Decisions with basis benefit_of_doubt.",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].decisions_benefit_of_doubt as f64,
    },
    PerTrack {
        name: "backlogd_decisions_without_investigation_total",
        help: "Decisions reported with additional_investigation = false.",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].decisions_without_investigation as f64,
    },
    PerTrack {
        name: "backlogd_deadline_extensions_total",
        help: "Deadline extensions.",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].deadline_extensions as f64,
    },
    PerTrack {
        name: "backlogd_case_transfers_total",
        help: "Cases handed off to another location.",
        kind: MetricType::COUNTER,
        value: |v, t| v.aggregates.tracks[t].transfers as f64,
    },
];

fn state_families(view: &View) -> Vec<MetricFamily> {
    let settings = &view.settings;
    let aggregates = &view.aggregates;
    let tracks: Vec<&str> = settings.tracks.iter().map(|t| t.name.as_str()).collect();
    let mut families = Vec::new();

    let mut per_track_location = |name: &str, help: &str, value: &dyn Fn(usize, usize) -> i64| {
        let mut family = Family::gauge(name, help);
        for (t, track) in tracks.iter().enumerate() {
            for (l, location) in aggregates.locations.iter().enumerate() {
                family.sample(
                    &[("track", track), ("location", location)],
                    value(t, l) as f64,
                );
            }
        }
        families.push(family.0);
    };
    per_track_location(
        "backlogd_cases_open",
        "Open cases (including suspended ones).",
        &|t, l| aggregates.tracks[t].open_by_location[l],
    );
    per_track_location(
        "backlogd_cases_overdue",
        "Open, non-suspended cases whose statutory deadline has passed.",
        &|t, l| aggregates.tracks[t].overdue_by_location[l],
    );

    let mut due_soon = Family::gauge(
        "backlogd_cases_due_soon",
        "Open, non-suspended, not yet overdue cases whose deadline falls within the window.",
    );
    for (t, track) in tracks.iter().enumerate() {
        for (w, window) in settings.due_soon_windows.iter().enumerate() {
            due_soon.sample(
                &[("track", track), ("window", &window.label)],
                aggregates.tracks[t].due_soon_by_window[w] as f64,
            );
        }
    }
    families.push(due_soon.0);

    for family in PER_TRACK {
        let mut out = Family::new(family.name, family.help, family.kind);
        for (t, track) in tracks.iter().enumerate() {
            out.sample(&[("track", track)], (family.value)(view, t));
        }
        families.push(out.0);
    }
    let track = |t: usize| &aggregates.tracks[t];

    let mut by_phase = Family::gauge("backlogd_cases_by_phase", "Open cases per phase.");
    let mut decided = Family::counter(
        "backlogd_cases_decided_total",
        "Cases decided, per outcome.",
    );
    let mut closed = Family::counter(
        "backlogd_cases_closed_total",
        "Cases closed without a decision, per reason.",
    );
    let mut hearings = Family::counter(
        "backlogd_hearings_total",
        "Hearings that went ahead (held) or were called but did not (cancelled).",
    );
    let mut lead_time = Family::new(
        "backlogd_case_lead_time_seconds",
        "Time from receipt (or latest reopening) to decision.",
        MetricType::HISTOGRAM,
    );
    let lead_bounds: Vec<f64> = LEAD_TIME_BUCKET_DAYS
        .iter()
        .map(|d| (d * 86_400) as f64)
        .collect();
    for (t, name) in tracks.iter().enumerate() {
        let agg = track(t);
        for (p, count) in agg.open_by_phase.iter().enumerate() {
            by_phase.sample(
                &[("track", name), ("phase", settings.phase_name(p as u8))],
                *count as f64,
            );
        }
        for (o, outcome) in Outcome::ALL.iter().enumerate() {
            decided.sample(
                &[("track", name), ("outcome", outcome.as_str())],
                agg.decided_by_outcome[o] as f64,
            );
        }
        for (r, reason) in CloseReason::ALL.iter().enumerate() {
            closed.sample(
                &[("track", name), ("reason", reason.as_str())],
                agg.closed_by_reason[r] as f64,
            );
        }
        hearings
            .sample(
                &[("track", name), ("result", "held")],
                agg.hearings_held as f64,
            )
            .sample(
                &[("track", name), ("result", "cancelled")],
                agg.hearings_cancelled as f64,
            );
        // The +Inf bucket is written by the encoder from the sample count, which includes the
        // overflow bucket.
        lead_time.histogram_sample(
            &[("track", name)],
            &lead_bounds,
            &agg.lead_time.bucket_counts[..LEAD_TIME_BUCKET_DAYS.len()],
            agg.lead_time.count(),
            agg.lead_time.sum_seconds,
        );
    }
    families.extend([by_phase.0, decided.0, closed.0, hearings.0, lead_time.0]);

    let mut employees = Family::gauge(
        "backlogd_employees",
        "Active employees per role, contract and experience.",
    );
    for (r, role) in settings.roles.iter().enumerate() {
        for contract in Contract::ALL {
            for experienced in [false, true] {
                let slot = crate::core::Aggregates::employee_slot(r as u8, contract, experienced);
                employees.sample(
                    &[
                        ("role", role),
                        ("contract", contract.as_str()),
                        ("experienced", if experienced { "true" } else { "false" }),
                    ],
                    aggregates.employees[slot] as f64,
                );
            }
        }
    }
    families.push(employees.0);

    let mut audits = Family::counter(
        "backlogd_quality_audits_total",
        "Quality-measurement samples, per result.",
    );
    audits
        .sample(&[("result", "pass")], aggregates.audits_passed as f64)
        .sample(&[("result", "fail")], aggregates.audits_failed as f64);
    families.push(audits.0);
    if let Some(at) = aggregates.last_audit_time {
        let mut last = Family::gauge(
            "backlogd_quality_last_audit_timestamp_seconds",
            "Event time of the latest quality audit.",
        );
        last.sample(&[], seconds_f64(at));
        families.push(last.0);
    }
    families.extend(flow_families(view));
    families.extend(workforce_families(view));
    let mut thresholds = Family::gauge(
        "backlogd_threshold",
        "Configured thresholds, so alert rules read them from the daemon instead of hard-coding them.",
    );
    for (name, value) in &view.edge.thresholds {
        thresholds.sample(&[("name", name)], *value);
    }
    families.push(thresholds.0);
    if let Some(at) = aggregates.last_event_time {
        let mut last = Family::gauge(
            "backlogd_last_event_timestamp_seconds",
            "Event time of the latest applied event.",
        );
        last.sample(&[], at as f64 / NANOS_PER_SECOND as f64);
        families.push(last.0);
    }
    families
}

/// The observed capacity over the forecast window (docs/metrics.md, "Observed capacity").
fn families_capacity(view: &View, out: &mut Vec<MetricFamily>) {
    use crate::core::aggregates::Capacity;
    let capacity = &view.flows.capacity;
    let roles = &view.settings.roles;
    let flag = |b: bool| if b { "true" } else { "false" };
    let mut decisions = Family::gauge(
        "backlogd_capacity_decisions",
        "Decisions with event time in forecast.window, by the role, experience and mentoring at decision time of the employee holding the case (decided_by when unassigned).",
    );
    let mut weeks = Family::gauge(
        "backlogd_capacity_presence_seconds",
        "Employee-seconds of presence in forecast.window (divide by 604800 for employee-weeks), by role, experience and whether the employee mentored at the time.",
    );
    let mut rate = Family::gauge(
        "backlogd_decisions_per_employee_week",
        "Decisions per employee-week of presence over forecast.window, by role and experience; NaN without presence.",
    );
    for (r, role) in roles.iter().enumerate() {
        for experienced in [false, true] {
            for mentoring in [false, true] {
                let class = Capacity::class(r as u8, experienced, mentoring);
                let labels = [
                    ("role", role.as_str()),
                    ("experienced", flag(experienced)),
                    ("mentoring", flag(mentoring)),
                ];
                decisions.sample(&labels, capacity.decisions[class] as f64);
                weeks.sample(&labels, capacity.employee_weeks[class] * 604_800.0);
            }
            let value = capacity.rate(|c| c / 4 == r && (c / 2) % 2 == usize::from(experienced));
            rate.sample(&[("role", role), ("experienced", flag(experienced))], value);
        }
    }
    let mut by_mentoring = Family::gauge(
        "backlogd_decisions_per_employee_week_by_mentoring",
        "Decisions per employee-week of experienced employees over forecast.window, while mentoring at least one mentee (true) or none (false): the difference is the mentoring cost.",
    );
    for mentoring in [false, true] {
        let value = capacity.rate(|c| (c / 2) % 2 == 1 && c % 2 == usize::from(mentoring));
        by_mentoring.sample(&[("mentoring", flag(mentoring))], value);
    }
    let all: u64 = capacity.decisions.iter().sum();
    let mut share = Family::gauge(
        "backlogd_decisions_new_staff_share",
        "Share of the decisions in forecast.window taken by employees in their first forecast.new_staff_weeks weeks; NaN without decisions.",
    );
    share.sample(
        &[],
        if all == 0 {
            f64::NAN
        } else {
            capacity.decisions_by_new_staff as f64 / all as f64
        },
    );
    out.extend([decisions.0, weeks.0, rate.0, by_mentoring.0, share.0]);
}

fn flow_families(view: &View) -> Vec<MetricFamily> {
    let settings = &view.settings;
    let flows = &view.flows;
    let mut capacity_families = Vec::new();
    let mut inflow = Family::gauge(
        "backlogd_inflow_rolling",
        "Cases registered or reopened with event time in the window.",
    );
    let mut outflow = Family::gauge(
        "backlogd_outflow_rolling",
        "Cases decided or closed with event time in the window.",
    );
    let mut clearance = Family::gauge(
        "backlogd_backlog_clearance_seconds",
        "Forecast time to clear the open cases at the net outflow rate of the forecast window; +Inf when the backlog is not shrinking.",
    );
    for (t, track) in settings.tracks.iter().enumerate() {
        for (w, window) in settings.rolling_windows.iter().enumerate() {
            let labels = [
                ("track", track.name.as_str()),
                ("window", window.label.as_str()),
            ];
            inflow.sample(&labels, flows.inflow[t][w] as f64);
            outflow.sample(&labels, flows.outflow[t][w] as f64);
        }
        clearance.sample(&[("track", &track.name)], flows.clearance_seconds[t]);
    }
    let mut target = Family::gauge(
        "backlogd_backlog_target_timestamp_seconds",
        "The instant by which the backlog should be cleared: the latest target.announced date, else the configured one.",
    );
    let mut projected = Family::gauge(
        "backlogd_backlog_projected_clearance_timestamp_seconds",
        "Now plus the forecast clearance time of the target's track (or of all tracks); +Inf when not shrinking.",
    );
    let mut announcements = Family::counter(
        "backlogd_target_announcements_total",
        "target.announced events applied for the target.",
    );
    let mut kept = Family::gauge(
        "backlogd_target_announcements_kept",
        "target.announced events kept in the target's history (the newest, at most limits.max_announcements_per_target; older ones are only counted).",
    );
    let mut behind = Family::gauge(
        "backlogd_target_announced_behind_projection",
        "1 when the target's latest announcement promised a date that the projection at that moment already said would be missed, else 0.",
    );
    for figures in &flows.targets {
        let labels = [("target", figures.name.as_str())];
        target.sample(&labels, figures.clear_by_seconds);
        projected.sample(&labels, figures.projected_clearance);
        announcements.sample(&labels, figures.announcements as f64);
        kept.sample(&labels, figures.announcements_kept as f64);
        behind.sample(
            &labels,
            f64::from(u8::from(figures.latest_behind_projection)),
        );
    }
    let mut ratio = Family::gauge(
        "backlogd_quality_pass_ratio",
        "Passed audits / all audits with event time in the window; NaN when there were none.",
    );
    ratio.sample(
        &[("window", &view.edge.quality_window_label)],
        flows.quality_pass_ratio,
    );
    let mut audits = Family::gauge(
        "backlogd_quality_audits_window",
        "Quality audits with event time in the window: the sample size of backlogd_quality_pass_ratio.",
    );
    audits.sample(
        &[("window", &view.edge.quality_window_label)],
        flows.quality_audits as f64,
    );
    families_capacity(view, &mut capacity_families);
    let mut known = Family::gauge(
        "backlogd_cases_known",
        "Cases the state holds, open or closed (memory grows with it; see docs/operations.md, sizing).",
    );
    known.sample(&[], view.known_cases as f64);
    let mut remembered = Family::gauge(
        "backlogd_remembered_event_ids",
        "Event ids remembered for deduplication (about event rate x store.dedup_window; memory grows with it).",
    );
    remembered.sample(&[], view.remembered_event_ids as f64);
    let mut families = vec![
        inflow.0,
        outflow.0,
        clearance.0,
        target.0,
        projected.0,
        announcements.0,
        kept.0,
        behind.0,
        ratio.0,
        audits.0,
        known.0,
        remembered.0,
    ];
    families.extend(capacity_families);
    families
}

/// Upper bounds of the workload histogram (open cases per active employee, docs/metrics.md).
const WORKLOAD_BUCKETS: [f64; 9] = [0.0, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0];

fn workforce_families(view: &View) -> Vec<MetricFamily> {
    let roles = &view.settings.roles;
    let edge = &view.edge;
    let rows = &view.workforce.rows;
    let mut open_cases = Family::gauge(
        "backlogd_employee_open_cases",
        "Open cases assigned to each active employee (label per workforce.employee_label).",
    );
    let mut mentor_mentees = Family::gauge(
        "backlogd_mentor_mentees",
        "Current mentees of each active employee who has any (label per workforce.employee_label).",
    );
    let mut workload_counts = vec![[0u64; WORKLOAD_BUCKETS.len() + 1]; roles.len()];
    let mut workload_sums = vec![0f64; roles.len()];
    let mut overloaded = vec![0u64; roles.len()];
    let (mut mentors_overloaded, mut max_mentees, mut unmentored, mut inexperienced, mut mentors) =
        (0u64, 0u32, 0u64, 0u64, 0u64);
    for row in rows {
        if let Some(label) = &row.label {
            open_cases.sample(&[("employee", label)], f64::from(row.open_cases));
            if row.mentees > 0 {
                mentor_mentees.sample(&[("mentor", label)], f64::from(row.mentees));
            }
        }
        let role = usize::from(row.role);
        let cases = f64::from(row.open_cases);
        let bucket = WORKLOAD_BUCKETS
            .iter()
            .position(|&upper| cases <= upper)
            .unwrap_or(WORKLOAD_BUCKETS.len());
        workload_counts[role][bucket] += 1;
        workload_sums[role] += cases;
        overloaded[role] += u64::from(row.open_cases > edge.max_open_cases);
        mentors_overloaded += u64::from(row.mentees > edge.max_mentees);
        max_mentees = max_mentees.max(row.mentees);
        mentors += u64::from(row.mentees > 0);
        inexperienced += u64::from(!row.experienced);
        unmentored += u64::from(!row.experienced && !row.has_mentor);
    }
    // The distribution is of the current state: its counts go down as well as up, so it is
    // exported as gauges, never as a histogram, which Prometheus would treat as counters (rate()
    // of it would be nonsense). The bound label is `at_most`, not `le` (reserved for histograms);
    // label_replace(…, "le", "$1", "at_most", "(.*)") makes it histogram_quantile's input.
    let mut workload = Family::gauge(
        "backlogd_employees_by_open_cases",
        "Active employees with at most `at_most` open cases (cumulative, like histogram buckets; gauges: the distribution of the current state).",
    );
    let mut assigned = Family::gauge(
        "backlogd_employees_assigned_open_cases",
        "Open cases assigned to active employees of the role (with backlogd_employees_by_open_cases{at_most=\"+Inf\"}: the mean workload).",
    );
    let mut overloaded_family = Family::gauge(
        "backlogd_employees_overloaded",
        "Active employees with more open cases than workforce.max_open_cases.",
    );
    for (r, role) in roles.iter().enumerate() {
        let counts = &workload_counts[r];
        let mut cumulative = 0;
        for (b, upper) in WORKLOAD_BUCKETS.iter().enumerate() {
            cumulative += counts[b];
            let le = upper.to_string();
            workload.sample(&[("role", role), ("at_most", &le)], cumulative as f64);
        }
        workload.sample(
            &[("role", role), ("at_most", "+Inf")],
            counts.iter().sum::<u64>() as f64,
        );
        assigned.sample(&[("role", role)], workload_sums[r]);
        overloaded_family.sample(&[("role", role)], overloaded[r] as f64);
    }
    let single = |name: &str, help: &str, value: f64| {
        let mut family = Family::gauge(name, help);
        family.sample(&[], value);
        family.0
    };
    let mut families = vec![
        workload.0,
        assigned.0,
        overloaded_family.0,
        single(
            "backlogd_mentors_overloaded",
            "Mentors with more mentees than mentoring.max_mentees.",
            mentors_overloaded as f64,
        ),
        single(
            "backlogd_mentor_max_mentees",
            "The largest number of mentees of one mentor.",
            f64::from(max_mentees),
        ),
        single(
            "backlogd_mentees_unmentored",
            "Active employees without experience and without a mentor.",
            unmentored as f64,
        ),
        single(
            "backlogd_mentees_per_mentor",
            "Active inexperienced employees per active employee with at least one mentee (0 if none).",
            if mentors == 0 {
                0.0
            } else {
                inexperienced as f64 / mentors as f64
            },
        ),
    ];
    if edge.employee_label != crate::config::EmployeeLabel::None {
        families.push(open_cases.0);
        families.push(mentor_mentees.0);
    }
    families
}

#[cfg(test)]
mod tests;
