//! backlogd / Backlog overview: open, overdue and due-soon cases, the clearance forecast, inflow and
//! outflow, penalties and lead times; whether the backlog has turned (BacklogForming, RenewedBacklog),
//! with the moment BacklogForming began firing as an annotation.

use serde_json::json;

use super::DRILLDOWN_URL;
use super::grafana::*;

pub fn dashboard() -> Dashboard {
    Dashboard {
        uid: "backlogd-overview",
        title: "backlogd / Backlog overview",
        description: "Open, overdue and due-soon cases of the agency's backlog, inflow vs outflow, the clearance forecast against the target date, penalty payments and decision lead times, from one backlogd daemon (job and instance). The location filter applies to the open and overdue case panels only (no other metric has a location label). The overdue cases themselves, most overdue first, are in the drill-down linked at the top.",
        refresh: "5m",
        from: "now-30d",
        filters: Filters::TrackAndLocation,
        links: vec![json!({
            "asDropdown": false,
            "icon": "external link",
            "includeVars": false,
            "keepTime": false,
            "tags": [],
            "targetBlank": true,
            "title": "Overdue cases (drill-down)",
            "tooltip": "The most overdue open cases of the selected daemon, from the daemon itself (GET /v1/cases/overdue). Case ids are personal data: keep them out of tickets and chat. Needs the ingest token when one is configured (docs/runbooks.md, Drill-down).",
            "type": "link",
            "url": format!("{DRILLDOWN_URL}?limit=100"),
        })],
        annotations: vec![prometheus_annotation(
            "Backlog turned",
            "orange",
            r#"ALERTS{alertname="BacklogForming", alertstate="firing"} unless ALERTS{alertname="BacklogForming", alertstate="firing"} offset 5m"#,
            "backlog turned in {{track}}",
            "BacklogForming began firing for {{track}}: more cases in than out over 28 and 7 days, and the weekly average of open cases up two weeks in a row (docs/runbooks.md, BacklogForming)",
        )],
        rows: vec![
            row("Backlog now", now()),
            row("Clearance forecast", forecast()),
            row("Inflow and outflow", flow()),
            row("Open and overdue cases", open_and_overdue()),
            row("Decisions and lead time", decisions()).collapsed(),
        ],
    }
}

fn now() -> Vec<Panel> {
    vec![
        stat("Open cases", "short")
            .desc("Open cases (including suspended ones) for the selected tracks and locations, now. A steadily rising value means inflow exceeds what the organisation decides or closes; compare with 'Inflow vs outflow'.")
            .query(q(r#"sum(backlogd_cases_open{track=~"$track", location=~"$location"})"#, "open")),
        stat("Overdue cases", "short")
            .desc("Open, non-suspended cases whose statutory decision deadline has passed, for the selected tracks and locations. Every overdue case can cost penalty payments; the drill-down at the top lists them, most overdue first. Compare with the max_overdue_cases threshold in the 'Overdue cases' graph.")
            .query(q(r#"sum(backlogd_cases_overdue{track=~"$track", location=~"$location"})"#, "overdue"))
            .colours(threshold("max_overdue_cases", "OverdueCasesHigh raises a ticket above it, counting all tracks and locations together"))
            .runbook("OverdueCasesHigh"),
        stat("Due soon", "short")
            .desc("Open, not yet overdue, non-suspended cases whose deadline falls within each due-soon window (windows.due_soon, default P7D and P28D). These become overdue unless decided in time: a high P7D value means penalties are imminent.")
            .query(q(r#"sum by (window) (backlogd_cases_due_soon{track=~"$track"})"#, "{{window}}"))
            .colours(fixed("green", &[("orange", 1.0)], "orange from 1: these cases become overdue unless decided in time. No alert reads this number alone: DeadlineWaveAhead compares the P7D count with the cases decided or closed in the last 7 days."))
            .runbook("DeadlineWaveAhead"),
        stat("Most overdue case", "dtdurations")
            .desc("How long past its deadline the most overdue open case of the selected tracks is (0 if none is overdue). Long ages mean old cases are being skipped; penalties grow with the age up to the cap of the penalty schedule.")
            .query(q(r#"max(backlogd_case_max_overdue_seconds{track=~"$track"})"#, "max overdue"))
            .colours(fixed("green", &[("orange", 1.0)], "orange from 1 second: a case is overdue. No alert reads the age; OverdueCasesHigh counts the overdue cases.")),
        stat("Penalty exposure", "currencyEUR")
            .desc("Penalty payments accrued so far over the open overdue cases of the selected tracks, in euros: what is owed if they were decided now. It keeps growing while overdue cases stay open; anything above 0 is money lost.")
            .query(q(r#"sum(backlogd_penalty_exposure_euros{track=~"$track"})"#, "exposure"))
            .colours(fixed("green", &[("orange", 1.0)], "orange from 1 euro: money is owed. No alert has a level for it: PenaltyExposureRising compares this week's average exposure with last week's."))
            .runbook("PenaltyExposureRising"),
        stat("Backlog turn", "none")
            .desc("Whether each track's backlog has turned, from the alerts: 'no turn' while neither fires; 'forming' while BacklogForming fires (more cases in than out over 28 and 7 days, and the weekly average of open cases up two weeks in a row: a ticket, the early warning); 'renewed' while RenewedBacklog fires (the overdue cases confirm it: a page). The moment BacklogForming began firing is marked on every graph of this dashboard ('Backlog turned').")
            .query(q(r#"max by (track) (2 * ALERTS{alertname="RenewedBacklog", alertstate="firing", track=~"$track"} or ALERTS{alertname="BacklogForming", alertstate="firing", track=~"$track"} or 0 * backlogd_cases_open{track=~"$track"})"#, "{{track}}"))
            .value_text("0", "no turn", "green")
            .value_text("1", "forming", "orange")
            .value_text("2", "renewed", "red")
            .colours(fixed("green", &[("orange", 1.0), ("red", 2.0)], "orange from 1: BacklogForming fires (a ticket); red from 2: RenewedBacklog fires (a page)."))
            .graph("none")
            .runbook("BacklogForming")
            .runbook("RenewedBacklog"),
        stat("Penalty incurred in range", "currencyEUR")
            .desc("Penalty payments that became final (cases decided or closed after their deadline) during the selected time range, in euros. Anything above 0 means decisions came too late.")
            .query(q(r#"sum(increase(backlogd_penalty_incurred_euros_total{track=~"$track"}[$__range]))"#, "incurred").instant())
            .colours(fixed("green", &[("orange", 1.0)], "orange from 1 euro: a decision came too late. No alert reads it."))
            .graph("none"),
    ]
}

fn forecast() -> Vec<Panel> {
    vec![
        stat("Projected clearance date", "dateTimeAsIso")
            .desc("When the backlog of each configured target (label target) is forecast to be cleared: now plus the clearance time at the net outflow rate of the forecast window. 'never (not shrinking)' means the backlog is not shrinking (the metric is +Inf), which is bad. A date after the target date means the target will be missed.")
            .size(6, 4)
            .query(q("max by (target) (backlogd_backlog_projected_clearance_timestamp_seconds) * 1000", "{{target}}"))
            .value_text("Infinity", "never (not shrinking)", "red")
            .value_text("-Infinity", "never (not shrinking)", "red")
            .graph("none")
            .runbook("BacklogTargetUnreachable"),
        stat("Clearance target date", "dateTimeAsIso")
            .desc("The configured instant by which each target's backlog should be cleared (targets[].clear_by). For reference next to the projected date; it only changes with the configuration.")
            .size(6, 4)
            .query(q("max by (target) (backlogd_backlog_target_timestamp_seconds) * 1000", "{{target}}"))
            .color_mode("none")
            .graph("none"),
        stat("Margin to target", "dtdurations")
            .desc("Target date minus projected clearance date per target. Positive (green): the backlog is forecast to be cleared that long before the target. Negative (red): the target will be missed by that much at the current pace. 'never (not shrinking)' means the backlog is not shrinking at all.")
            .size(6, 4)
            .query(q("max by (target) (backlogd_backlog_target_timestamp_seconds) - max by (target) (backlogd_backlog_projected_clearance_timestamp_seconds)", "{{target}}"))
            .colours(fixed("red", &[("green", 0.0)], "red below 0: the target will be missed at the current pace, which BacklogTargetUnreachable raises a ticket for; green from 0."))
            .value_text("Infinity", "never (not shrinking)", "red")
            .value_text("-Infinity", "never (not shrinking)", "red")
            .graph("none")
            .runbook("BacklogTargetUnreachable"),
        stat("Clearance time", "dtdurations")
            .desc("Forecast time to clear each track's open cases at the net outflow rate of the forecast window (forecast.window). 'never (not shrinking)' (+Inf) means inflow is at least outflow: the backlog is not shrinking.")
            .size(6, 4)
            .query(q(r#"backlogd_backlog_clearance_seconds{track=~"$track"}"#, "{{track}}"))
            .value_text("Infinity", "never (not shrinking)", "red")
            .value_text("-Infinity", "never (not shrinking)", "red")
            .color_mode("none")
            .graph("none"),
        timeseries("Projected clearance vs target", "dateTimeAsIso")
            .desc("Projected clearance date per target over time, with the target date as a dashed red line. The projection should stay below (before) the target; a projection rising above it means the target is being missed. Gaps in the projection are periods in which the backlog was not shrinking (+Inf, not drawable).")
            .query(q("max by (target) (backlogd_backlog_projected_clearance_timestamp_seconds < +Inf) * 1000", "projected {{target}}"))
            .query(q("max by (target) (backlogd_backlog_target_timestamp_seconds) * 1000", "target {{target}}"))
            .no_min()
            .legend_list()
            .runbook("BacklogTargetUnreachable"),
        timeseries("Clearance time", "dtdurations")
            .desc("Forecast time to clear each track's backlog at the current net outflow. Lower is better; a rising line means the organisation is falling behind. Gaps are periods in which the backlog was not shrinking (+Inf).")
            .query(q(r#"backlogd_backlog_clearance_seconds{track=~"$track"} < +Inf"#, "{{track}}"))
            .legend(&["lastNotNull"]),
    ]
}

fn flow() -> Vec<Panel> {
    vec![
        timeseries("Inflow vs outflow (P28D)", "short")
            .desc("Cases registered or reopened (inflow) and cases decided or closed (outflow) with event time in the last P28D, per track (window P28D of windows.rolling). Outflow below inflow means the backlog grows. Empty if P28D is not one of the configured rolling windows.")
            .query(q(r#"sum by (track) (backlogd_inflow_rolling{track=~"$track", window="P28D"})"#, "inflow {{track}}"))
            .query(q(r#"sum by (track) (backlogd_outflow_rolling{track=~"$track", window="P28D"})"#, "outflow {{track}}"))
            .query(q(r#"sum by (track) (backlogd_outflow_rolling{track=~"$track", window="P28D"}) - sum by (track) (backlogd_inflow_rolling{track=~"$track", window="P28D"})"#, "net outflow {{track}}"))
            .no_min()
            .override_fields("byRegexp", "^net outflow.*", json!([{"id": "custom.lineStyle", "value": {"fill": "dot"}}, {"id": "custom.fillOpacity", "value": 0}]))
            .runbook("BacklogForming")
            .runbook("RenewedBacklog"),
        timeseries("Inflow vs outflow (P7D)", "short")
            .desc("Cases registered or reopened (inflow) and cases decided or closed (outflow) with event time in the last P7D, per track (window P7D of windows.rolling). Outflow below inflow means the backlog grows. Empty if P7D is not one of the configured rolling windows.")
            .query(q(r#"sum by (track) (backlogd_inflow_rolling{track=~"$track", window="P7D"})"#, "inflow {{track}}"))
            .query(q(r#"sum by (track) (backlogd_outflow_rolling{track=~"$track", window="P7D"})"#, "outflow {{track}}"))
            .query(q(r#"sum by (track) (backlogd_outflow_rolling{track=~"$track", window="P7D"}) - sum by (track) (backlogd_inflow_rolling{track=~"$track", window="P7D"})"#, "net outflow {{track}}"))
            .no_min()
            .override_fields("byRegexp", "^net outflow.*", json!([{"id": "custom.lineStyle", "value": {"fill": "dot"}}, {"id": "custom.fillOpacity", "value": 0}]))
            .runbook("BacklogForming"),
        timeseries("Case flow per day", "short")
            .desc("Cases registered, reopened (e.g. a decision annulled by a court), decided, closed without decision, deadline extensions and transfers to another location, each in the trailing 24 hours. Registrations persistently above decisions + closures mean the backlog grows; many reopenings hint at decision quality problems.")
            .size(24, 8)
            .query(q(r#"sum(increase(backlogd_cases_registered_total{track=~"$track"}[1d]))"#, "registered"))
            .query(q(r#"sum(increase(backlogd_cases_reopened_total{track=~"$track"}[1d]))"#, "reopened"))
            .query(q(r#"sum(increase(backlogd_cases_decided_total{track=~"$track"}[1d]))"#, "decided"))
            .query(q(r#"sum(increase(backlogd_cases_closed_total{track=~"$track"}[1d]))"#, "closed"))
            .query(q(r#"sum(increase(backlogd_deadline_extensions_total{track=~"$track"}[1d]))"#, "deadline extensions"))
            .query(q(r#"sum(increase(backlogd_case_transfers_total{track=~"$track"}[1d]))"#, "transfers")),
    ]
}

fn open_and_overdue() -> Vec<Panel> {
    vec![
        timeseries("Open cases by track", "short")
            .desc("Open cases (including suspended) per track for the selected locations. A rising line means the backlog grows; BacklogForming raises a ticket when the weekly average of all locations rises two weeks in a row while more cases come in than go out (marked 'Backlog turned').")
            .query(q(r#"sum by (track) (backlogd_cases_open{track=~"$track", location=~"$location"})"#, "{{track}}"))
            .stacked(),
        timeseries("Overdue cases", "short")
            .desc("Open, non-suspended cases past their statutory deadline per track, with the max_overdue_cases alert threshold (backlogd_threshold, for all tracks together) as a dashed red line. Above the line OverdueCasesHigh raises a ticket; any overdue case may cost penalty payments. A week-on-week rise while more cases come in than go out pages as RenewedBacklog.")
            .query(q(r#"sum by (track) (backlogd_cases_overdue{track=~"$track", location=~"$location"})"#, "{{track}}"))
            .query(q(r#"max(backlogd_threshold{name="max_overdue_cases"})"#, "threshold max_overdue_cases"))
            .runbook("OverdueCasesHigh")
            .runbook("RenewedBacklog"),
        table("Cases per location", "short")
            .desc("Open and overdue cases per location (selected tracks and locations), now, with the share overdue. A location with a high overdue share is falling behind relative to the others; 'other' collects locations beyond limits.max_locations. Click a row for the drill-down to that location's overdue cases.")
            .query(q(r#"sum by (location) (backlogd_cases_open{track=~"$track", location=~"$location"})"#, "").table())
            .query(q(r#"sum by (location) (backlogd_cases_overdue{track=~"$track", location=~"$location"})"#, "").table())
            .query(q(r#"sum by (location) (backlogd_cases_overdue{track=~"$track", location=~"$location"}) / (sum by (location) (backlogd_cases_open{track=~"$track", location=~"$location"}) > 0)"#, "").table())
            .override_fields("byName", "Overdue share", json!([{"id": "unit", "value": "percentunit"}, {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "gradient"}}, {"id": "min", "value": 0}, {"id": "max", "value": 1}, {"id": "thresholds", "value": {"mode": "absolute", "steps": [{"color": "green", "value": null}, {"color": "orange", "value": 0.05}, {"color": "red", "value": 0.2}]}}]))
            .colour_note("the Overdue share is orange from 5% and red from 20% of a location's open cases: rules of thumb to compare locations, read by no alert.")
            .transform(json!({"id": "merge", "options": {}}))
            .transform(json!({"id": "organize", "options": {"excludeByName": {"Time": true}, "renameByName": {"location": "Location", "Value #A": "Open", "Value #B": "Overdue", "Value #C": "Overdue share"}, "indexByName": {"location": 0, "Value #A": 1, "Value #B": 2, "Value #C": 3}}}))
            .sort_by("Overdue")
            .data_link("Overdue cases at ${__data.fields.location}", &format!("{DRILLDOWN_URL}?location=${{__data.fields.location:percentencode}}&limit=100")),
        timeseries("Due soon", "short")
            .desc("Cases that will become overdue within each due-soon window unless decided, per window. A rising P7D line means a wave of deadlines is about to pass.")
            .query(q(r#"sum by (window) (backlogd_cases_due_soon{track=~"$track"})"#, "{{window}}"))
            .runbook("DeadlineWaveAhead"),
        timeseries("Cases by phase", "short")
            .desc("Open cases per phase of the procedure (phase 'none' before any phase event). Cases piling up in one phase show the bottleneck, e.g. many in 'hearing' with many cancelled hearings.")
            .query(q(r#"sum by (phase) (backlogd_cases_by_phase{track=~"$track"})"#, "{{phase}}"))
            .stacked(),
        timeseries("Suspended and unassigned cases", "short")
            .desc("Suspended cases (deadline clock stopped) and open cases assigned to no active employee, per track. Unassigned cases are not being worked on: a growing number, e.g. after employees leave, is bad. Many suspensions can hide a backlog that will come back.")
            .query(q(r#"sum by (track) (backlogd_cases_suspended{track=~"$track"})"#, "suspended {{track}}"))
            .query(q(r#"sum by (track) (backlogd_cases_unassigned{track=~"$track"})"#, "unassigned {{track}}"))
            .runbook("UnassignedCasesHigh"),
        timeseries("Most overdue case age", "dtdurations")
            .desc("How long past its deadline the most overdue open case of each track is. A line that keeps rising means the oldest overdue case is not being picked up.")
            .query(q(r#"max by (track) (backlogd_case_max_overdue_seconds{track=~"$track"})"#, "{{track}}")),
        timeseries("Penalty exposure and incurred", "currencyEUR")
            .desc("Penalty exposure (euros accrued so far over open overdue cases, left axis) and penalty incurred per day (euros of cases decided or closed after their deadline, one bar per day). Both should be 0; growing exposure means overdue cases are not being decided.")
            .query(q(r#"sum by (track) (backlogd_penalty_exposure_euros{track=~"$track"})"#, "exposure {{track}}"))
            .query(q(r#"sum by (track) (increase(backlogd_penalty_incurred_euros_total{track=~"$track"}[1d]))"#, "incurred per day {{track}}").per_day())
            .override_fields("byRegexp", "^incurred.*", json!([{"id": "custom.drawStyle", "value": "bars"}, {"id": "custom.fillOpacity", "value": 60}]))
            .runbook("PenaltyExposureRising"),
    ]
}

fn decisions() -> Vec<Panel> {
    vec![
        heatmap("Lead time of decisions", "s")
            .desc("Distribution of the time from receipt (or latest reopening) to decision for cases decided per day (increase of backlogd_case_lead_time_seconds buckets; y axis = bucket upper bound, 30 days to 2 years). Mass moving up, towards and beyond the statutory decision period (e.g. 6 months), means cases wait too long.")
            .query(q(r#"sum by (le) (increase(backlogd_case_lead_time_seconds_bucket{track=~"$track"}[$__rate_interval]))"#, "{{le}}").heatmap())
            .interval("1d"),
        timeseries("Lead time quantiles (7 days)", "dtdurations")
            .desc("Median and 90th percentile of the lead time (receipt to decision) of cases decided in the trailing 7 days, interpolated from the histogram buckets. Values near or above the statutory decision period mean decisions are late. Gaps: no decisions in the window.")
            .query(q(r#"histogram_quantile(0.5, sum by (le) (increase(backlogd_case_lead_time_seconds_bucket{track=~"$track"}[7d])))"#, "p50"))
            .query(q(r#"histogram_quantile(0.9, sum by (le) (increase(backlogd_case_lead_time_seconds_bucket{track=~"$track"}[7d])))"#, "p90")),
        timeseries("Decisions and overdue decisions per day", "short")
            .desc("Cases decided per day, and how many of those decisions were taken after the case's deadline (one bar per day; the overdue bar is drawn over the decided one). Overdue decisions cost penalty payments; the overdue bars should be 0.")
            .query(q(r#"sum(increase(backlogd_cases_decided_total{track=~"$track"}[1d]))"#, "decided per day").per_day())
            .query(q(r#"sum(increase(backlogd_decisions_overdue_total{track=~"$track"}[1d]))"#, "overdue decisions per day").per_day())
            .bars()
            .override_fields("byName", "overdue decisions per day", json!([{"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}])),
        timeseries("Share of decisions overdue (7 days)", "percentunit")
            .desc("Fraction of the decisions of the trailing 7 days that were taken after the statutory deadline, per track. 0% is the goal; a rising share means the organisation decides old, already overdue cases (or misses deadlines).")
            .query(q(r#"sum by (track) (increase(backlogd_decisions_overdue_total{track=~"$track"}[7d])) / (sum by (track) (increase(backlogd_cases_decided_total{track=~"$track"}[7d])) > 0)"#, "{{track}}"))
            .legend(&["lastNotNull", "mean"]),
    ]
}
