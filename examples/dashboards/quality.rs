//! backlogd / Quality: audits against the norm, and decision-quality signals.

use serde_json::json;

use super::grafana::*;

pub fn dashboard() -> Dashboard {
    Dashboard {
        uid: "backlogd-quality",
        title: "backlogd / Quality",
        description: "Quality of decisions: audit pass ratio against the norm, audit recency, and decision-quality signals (decisions by inexperienced staff, benefit of the doubt, no additional investigation, cancelled hearings, reopened cases), from one backlogd daemon (job and instance).",
        refresh: "15m",
        from: "now-90d",
        filters: Filters::Track,
        links: Vec::new(),
        annotations: vec![],
        rows: vec![
            row("Audits", audits()),
            row("Per day", per_day()),
            row("Decision quality signals", signals()),
        ],
    }
}

fn audits() -> Vec<Panel> {
    vec![
        stat("Audit pass ratio", "percentunit")
            .desc("Passed quality audits / all audits with event time in the quality window (label window, quality.window, default P91D). Compare with the norm min_pass_ratio in the gauge next to it (red below the norm); 'no data in window' means no audits in the window (NaN), which is itself a problem.")
            .size(4, 5)
            .query(q("backlogd_quality_pass_ratio", "{{window}}"))
            .nan_text("no data in window")
            .color_mode("none")
            .calc("last")
            .runbook("QualityBelowNorm"),
        gauge("Pass ratio vs norm", "percentunit")
            .desc(r#"Audit pass ratio as a share of the norm min_pass_ratio (backlogd_threshold{name="min_pass_ratio"}): 100% = exactly at the norm. Below 100% (red) quality misses the norm."#)
            .size(4, 5)
            .query(q(r#"max(backlogd_quality_pass_ratio) / (max(backlogd_threshold{name="min_pass_ratio"}) > 0)"#, "pass ratio / norm"))
            .colours(fixed("red", &[("green", 1.0)], "the value is relative to backlogd_threshold min_pass_ratio: red below 100%, where QualityBelowNorm raises a ticket once the window holds min_quality_audits audits; green from 100%."))
            .nan_text("no data in window")
            .no_value("no audits")
            .max(1.5)
            .runbook("QualityBelowNorm"),
        stat("Time since last audit", "dtdurations")
            .desc("Wall-clock time since the event time of the latest quality audit (compare with max_audit_gap_seconds, quality.max_audit_gap, in the gauge next to it): when it is longer, quality is not being measured. 'no audit yet' before the first audit.")
            .size(4, 5)
            .query(q("time() - max(backlogd_quality_last_audit_timestamp_seconds)", "since last audit"))
            .colours(threshold("max_audit_gap_seconds", "QualityMeasurementStopped raises a ticket for a longer gap while decisions continue"))
            .no_value("no audit yet")
            .runbook("QualityMeasurementStopped"),
        gauge("Audit gap vs allowed", "percentunit")
            .desc("Time since the last audit as a share of max_audit_gap_seconds. Above 100% (red) audits are overdue.")
            .size(4, 5)
            .query(q(r#"(time() - max(backlogd_quality_last_audit_timestamp_seconds)) / (max(backlogd_threshold{name="max_audit_gap_seconds"}) > 0)"#, "gap / allowed"))
            .colours(fixed("green", &[("orange", 0.8), ("red", 1.0001)], "the value is relative to backlogd_threshold max_audit_gap_seconds: orange from 80% of it, red above 100%, where QualityMeasurementStopped raises a ticket while decisions continue."))
            .no_value("no audit yet")
            .max(2.0)
            .runbook("QualityMeasurementStopped"),
        stat("Audits in range", "short")
            .desc("Quality audits per result (pass/fail) with their increase over the selected time range. Few audits make the pass ratio unreliable; many fails mean decision quality is poor.")
            .size(8, 5)
            .query(q("sum by (result) (increase(backlogd_quality_audits_total[$__range]))", "{{result}}").instant())
            .decimals(0)
            .color_mode("none")
            .graph("none"),
        timeseries("Pass ratio vs norm", "percentunit")
            .desc("Audit pass ratio over the quality window, with the norm min_pass_ratio as a dashed red line. Below the line quality misses the norm; gaps mean no audits in the window.")
            .query(q("backlogd_quality_pass_ratio", "pass ratio {{window}}"))
            .query(q(r#"max(backlogd_threshold{name="min_pass_ratio"})"#, "norm min_pass_ratio"))
            .legend(&["lastNotNull", "min"])
            .runbook("QualityBelowNorm"),
        timeseries("Time since last audit vs allowed gap", "dtdurations")
            .desc("Time since the latest audit (sawtooth: drops at every audit) with max_audit_gap_seconds as a dashed red line. Crossing the line means audits are overdue.")
            .query(q("time() - max(backlogd_quality_last_audit_timestamp_seconds)", "since last audit"))
            .query(q(r#"max(backlogd_threshold{name="max_audit_gap_seconds"})"#, "allowed max_audit_gap_seconds"))
            .runbook("QualityMeasurementStopped"),
    ]
}

fn per_day() -> Vec<Panel> {
    vec![
        timeseries("Audits per day by result", "short")
            .desc("Quality audits per day (one bar per day), per result. A rising share of fail bars means decision quality drops; no bars for a long time means audits stopped.")
            .query(q("sum by (result) (increase(backlogd_quality_audits_total[1d]))", "{{result}}").per_day())
            .stacked()
            .bars()
            .override_fields("byName", "fail", json!([{"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}]))
            .override_fields("byName", "pass", json!([{"id": "color", "value": {"mode": "fixed", "fixedColor": "green"}}])),
        timeseries("Decisions per day by outcome", "short")
            .desc("Cases decided per day (one bar per day), per outcome. Context for the shares below: a sudden shift in outcomes can point at changed (lower) decision standards.")
            .query(q(r#"sum by (outcome) (increase(backlogd_cases_decided_total{track=~"$track"}[1d]))"#, "{{outcome}}").per_day())
            .stacked()
            .bars(),
    ]
}

fn signals() -> Vec<Panel> {
    vec![
        stat("By inexperienced staff (range)", "percentunit")
            .desc("Share of decisions in the selected range taken by an employee who was not experienced at the time. A high share needs close mentoring and audits; it raises the risk of annulled decisions.")
            .size(6, 4)
            .query(q(r#"sum(increase(backlogd_decisions_by_inexperienced_total{track=~"$track"}[$__range])) / (sum(increase(backlogd_cases_decided_total{track=~"$track"}[$__range])) > 0)"#, "share").instant())
            .colours(threshold("max_inexperienced_decision_ratio", "DecisionsByInexperiencedStaff raises a ticket when a track's 7-day share is above it with at least min_weekly_decisions decisions"))
            .no_value("no decisions")
            .graph("none")
            .runbook("DecisionsByInexperiencedStaff"),
        stat("Benefit of the doubt (range)", "percentunit")
            .desc("Share of decisions in the selected range with basis benefit_of_doubt. A sharp rise can mean cases are decided without proper assessment to reduce the backlog.")
            .size(6, 4)
            .query(q(r#"sum(increase(backlogd_decisions_benefit_of_doubt_total{track=~"$track"}[$__range])) / (sum(increase(backlogd_cases_decided_total{track=~"$track"}[$__range])) > 0)"#, "share").instant())
            .colours(fixed("green", &[("orange", 0.3), ("red", 0.5)], "orange from 30% and red from 50%: rules of thumb. No alert has a level for the share: BenefitOfDoubtSpike compares a track's 7-day share with its 28-day share."))
            .no_value("no decisions")
            .graph("none")
            .runbook("BenefitOfDoubtSpike"),
        stat("Without additional investigation (range)", "percentunit")
            .desc("Share of decisions in the selected range reported with additional_investigation = false. A rising share can mean shortcuts are taken under backlog pressure.")
            .size(6, 4)
            .query(q(r#"sum(increase(backlogd_decisions_without_investigation_total{track=~"$track"}[$__range])) / (sum(increase(backlogd_cases_decided_total{track=~"$track"}[$__range])) > 0)"#, "share").instant())
            .colours(fixed("green", &[("orange", 0.3), ("red", 0.5)], "orange from 30% and red from 50%: rules of thumb, read by no alert."))
            .no_value("no decisions")
            .graph("none"),
        stat("Cancelled hearings (range)", "percentunit")
            .desc("Share of the hearings in the selected range that were called but cancelled. Cancelled hearings delay cases and waste planning; a high share is bad.")
            .size(6, 4)
            .query(q(r#"sum(increase(backlogd_hearings_total{track=~"$track", result="cancelled"}[$__range])) / (sum(increase(backlogd_hearings_total{track=~"$track"}[$__range])) > 0)"#, "cancelled").instant())
            .colours(threshold("max_hearing_cancellation_ratio", "HearingsCancelledHigh raises a ticket when a track's 7-day share is above it with at least min_weekly_hearings hearings"))
            .no_value("no hearings")
            .graph("none")
            .runbook("HearingsCancelledHigh"),
        timeseries("Decisions by inexperienced staff (7-day share)", "percentunit")
            .desc("Share of decisions of the trailing 7 days taken by employees who were not experienced at decision time, per track, with max_inexperienced_decision_ratio (backlogd_threshold) as a dashed red line: above it, in a track with at least min_weekly_decisions decisions, DecisionsByInexperiencedStaff raises a ticket. Rising with the intake of new hires is expected; a high share without enough mentoring and audits is a quality risk.")
            .query(q(r#"sum by (track) (increase(backlogd_decisions_by_inexperienced_total{track=~"$track"}[7d])) / (sum by (track) (increase(backlogd_cases_decided_total{track=~"$track"}[7d])) > 0)"#, "{{track}}"))
            .query(q(r#"max(backlogd_threshold{name="max_inexperienced_decision_ratio"})"#, "threshold max_inexperienced_decision_ratio"))
            .legend(&["lastNotNull", "mean"])
            .runbook("DecisionsByInexperiencedStaff"),
        timeseries("Benefit of the doubt and no additional investigation (7-day share)", "percentunit")
            .desc("Share of decisions of the trailing 7 days with basis benefit_of_doubt, and reported without additional investigation. Both rising together under backlog pressure suggests cases are decided with less scrutiny.")
            .query(q(r#"sum(increase(backlogd_decisions_benefit_of_doubt_total{track=~"$track"}[7d])) / (sum(increase(backlogd_cases_decided_total{track=~"$track"}[7d])) > 0)"#, "benefit of the doubt"))
            .query(q(r#"sum(increase(backlogd_decisions_without_investigation_total{track=~"$track"}[7d])) / (sum(increase(backlogd_cases_decided_total{track=~"$track"}[7d])) > 0)"#, "without additional investigation"))
            .legend(&["lastNotNull", "mean"])
            .runbook("BenefitOfDoubtSpike"),
        timeseries("Cancelled hearings (7-day share)", "percentunit")
            .desc("Share of hearings of the trailing 7 days that were cancelled, per track, with max_hearing_cancellation_ratio (backlogd_threshold) as a dashed red line: above it, in a track with at least min_weekly_hearings hearings, HearingsCancelledHigh raises a ticket. A high or rising share delays cases and wastes hearing capacity (interpreters, rooms, officers).")
            .query(q(r#"sum by (track) (increase(backlogd_hearings_total{track=~"$track", result="cancelled"}[7d])) / (sum by (track) (increase(backlogd_hearings_total{track=~"$track"}[7d])) > 0)"#, "{{track}}"))
            .query(q(r#"max(backlogd_threshold{name="max_hearing_cancellation_ratio"})"#, "threshold max_hearing_cancellation_ratio"))
            .legend(&["lastNotNull", "mean"])
            .runbook("HearingsCancelledHigh"),
        timeseries("Reopened cases per decision (30 days)", "percentunit")
            .desc("Cases reopened (e.g. a decision annulled by a court) in the trailing 30 days relative to decisions in the same period, per track. A rising ratio means earlier decisions did not hold up: a lagging quality signal.")
            .query(q(r#"sum by (track) (increase(backlogd_cases_reopened_total{track=~"$track"}[30d])) / (sum by (track) (increase(backlogd_cases_decided_total{track=~"$track"}[30d])) > 0)"#, "{{track}}"))
            .legend(&["lastNotNull", "mean"]),
    ]
}
