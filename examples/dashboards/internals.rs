//! backlogd / Internals: the daemon's own health, ingestion, latency and resources.

use serde_json::json;

use super::grafana::*;

pub fn dashboard() -> Dashboard {
    Dashboard {
        uid: "backlogd-internals",
        title: "backlogd / Internals",
        description: "Health of the backlogd daemon itself: scrape status, version, event ingestion (received, applied, duplicate, rejected), ingest and store commit latency, feed freshness, configuration reloads, dropped series and process resources, for one daemon (job and instance). The process_* and scrape series are restricted to the targets that export backlogd_build_info.",
        refresh: "1m",
        from: "now-24h",
        filters: Filters::None,
        links: Vec::new(),
        annotations: vec![],
        rows: vec![
            row("Health", health()),
            row("Ingestion", ingestion()),
            row("Latency", latency()),
            row("Feed, configuration and series", feed()),
            row("Process and scrape", process()).collapsed(),
        ],
    }
}

fn health() -> Vec<Panel> {
    vec![
        stat("Up", "short")
            .desc("Whether Prometheus could scrape each backlogd target (up), for targets that exported backlogd_build_info in the last day. DOWN (red) means the daemon is not running or not reachable: no metrics, no ingestion.")
            .query(q("up and on (job, instance) last_over_time(backlogd_build_info[1d])", "{{instance}}"))
            .colours(fixed("red", &[("green", 1.0)], "red (DOWN) below 1: Prometheus cannot scrape the daemon, and BacklogdDown pages after 5 minutes; green (UP) from 1."))
            .value_text("0", "DOWN", "red")
            .value_text("1", "UP", "green")
            .no_value("no backlogd target")
            .color_mode("background")
            .graph("none")
            .runbook("BacklogdDown"),
        stat("Version", "short")
            .desc("Version of the running backlogd binary per instance (backlogd_build_info). Several versions at once, or an unexpected one, means an upgrade went wrong or is in progress.")
            .query(q("max by (instance, version) (backlogd_build_info)", "{{version}}").instant())
            .color_mode("none")
            .graph("none")
            .text_mode("name"),
        stat("Uptime", "dtdurations")
            .desc("Time since the backlogd process started (backlogd_start_time_seconds, set by the daemon: the shipped unit hides /proc/stat, without which process_start_time_seconds is not exported). A short uptime that keeps resetting means the daemon restarts (crash loop or watchdog kills); check the journal. The Restarts annotation marks each start.")
            .query(q("time() - backlogd_start_time_seconds", "{{instance}}"))
            .colours(fixed("orange", &[("green", 3600.0)], "orange during the first hour after a start, green after it. BacklogdRestarting pages at 3 starts within 30 minutes."))
            .graph("none")
            .runbook("BacklogdRestarting"),
        stat("Config reload", "short")
            .desc("Whether the last configuration (re)load succeeded. FAILED (red) means the new configuration was refused and the old one is still in use: fix the file (backlogd check-config) and reload again.")
            .query(q("backlogd_config_last_reload_successful", "{{instance}}"))
            .colours(fixed("red", &[("green", 1.0)], "red (FAILED) below 1, where BacklogdConfigReloadFailed raises a ticket after 10 minutes; green (OK) from 1."))
            .value_text("0", "FAILED", "red")
            .value_text("1", "OK", "green")
            .color_mode("background")
            .graph("none")
            .runbook("BacklogdConfigReloadFailed"),
        stat("Last event age", "dtdurations")
            .desc("Wall-clock time since the event time of the latest applied event (the maximum event time, so back-filled old events do not make it look stale). A large value means the event feed from the case system has stopped.")
            .query(q("time() - max(backlogd_last_event_timestamp_seconds)", "last event age"))
            .colours(threshold("max_ingest_gap_seconds", "BacklogdIngestStalled pages when nothing has been applied for 3 hours and the latest event is older than this, or when last week had events at this time"))
            .runbook("BacklogdIngestStalled"),
        stat("Series dropped (range)", "short")
            .desc("Employees whose per-employee series were dropped during the selected range because limits.max_employee_series was reached. Anything above 0 means the per-employee workforce panels are incomplete: raise the limit.")
            .query(q("sum(increase(backlogd_series_dropped_total[$__range]))", "dropped").instant())
            .colours(fixed("green", &[("red", 1.0)], "red from 1: BacklogdEmployeeSeriesDropped raises a ticket for any series dropped within an hour."))
            .decimals(0)
            .graph("none")
            .runbook("BacklogdEmployeeSeriesDropped"),
    ]
}

fn ingestion() -> Vec<Panel> {
    vec![
        timeseries("Events received by source", "short")
            .desc("Events per second received by this process over HTTP (per source), whether applied or not. A drop to 0 while the case system is working means the feed stopped. Counters start at zero after a restart.")
            .query(q("sum by (source) (rate(backlogd_events_received_total[$__rate_interval]))", "{{source}}"))
            .legend(&["mean", "max"])
            .runbook("BacklogdIngestStalled"),
        timeseries("Events applied by type", "short")
            .desc("Events per second applied to the state, per event type (replay at start-up not counted). Shows what the feed consists of; an unexpected type dominating can point at a misbehaving producer.")
            .query(q("sum by (event_type) (rate(backlogd_events_applied_total[$__rate_interval]) > 0)", "{{event_type}}"))
            .stacked()
            .legend(&["mean", "max"])
            .runbook("BacklogdIngestStalled"),
        timeseries("Events rejected and duplicate", "short")
            .desc("Events per second rejected (per reason) and ignored as duplicates (id applied before). Rejections mean the producer sends invalid or inconsistent events (e.g. unknown_case, invalid_field): each is a case change backlogd did not record. Some duplicates are normal after producer retries.")
            .query(q("sum by (reason) (rate(backlogd_events_rejected_total[$__rate_interval]) > 0)", "rejected {{reason}}"))
            .query(q("sum(rate(backlogd_events_duplicate_total[$__rate_interval]))", "duplicate"))
            .legend(&["mean", "max"])
            .runbook("BacklogdEventsRejected"),
        timeseries("Rejected share of received events", "percentunit")
            .desc("Fraction of the received events that were rejected. Should be near 0; a jump after a deployment of the producer or a configuration change (e.g. a removed track or phase) needs investigation.")
            .query(q("sum(rate(backlogd_events_rejected_total[$__rate_interval])) / (sum(rate(backlogd_events_received_total[$__rate_interval])) > 0)", "rejected share"))
            .legend(&["mean", "max"])
            .runbook("BacklogdEventsRejected"),
    ]
}

fn latency() -> Vec<Panel> {
    vec![
        timeseries("Ingest request duration", "s")
            .desc("Quantiles of the time from receiving a POST /v1/events request to answering it, commit included. Rising latency (seconds) means slow disk syncs or an overloaded daemon; producers may time out and retry.")
            .query(q("histogram_quantile(0.5, sum by (le) (rate(backlogd_ingest_request_duration_seconds_bucket[$__rate_interval])))", "p50"))
            .query(q("histogram_quantile(0.9, sum by (le) (rate(backlogd_ingest_request_duration_seconds_bucket[$__rate_interval])))", "p90"))
            .query(q("histogram_quantile(0.99, sum by (le) (rate(backlogd_ingest_request_duration_seconds_bucket[$__rate_interval])))", "p99"))
            .query(q("sum(rate(backlogd_ingest_request_duration_seconds_count[$__rate_interval]))", "requests/s"))
            .legend(&["mean", "max"])
            .override_fields("byName", "requests/s", json!([{"id": "unit", "value": "reqps"}, {"id": "custom.axisPlacement", "value": "right"}, {"id": "custom.drawStyle", "value": "bars"}, {"id": "custom.fillOpacity", "value": 30}])),
        timeseries("Store commit duration", "s")
            .desc("Quantiles of the time to write and sync one group commit of the event log. With durability = fsync this is bounded by the disk; values growing towards tens of milliseconds or more mean a slow or saturated disk.")
            .query(q("histogram_quantile(0.5, sum by (le) (rate(backlogd_store_commit_duration_seconds_bucket[$__rate_interval])))", "p50"))
            .query(q("histogram_quantile(0.9, sum by (le) (rate(backlogd_store_commit_duration_seconds_bucket[$__rate_interval])))", "p90"))
            .query(q("histogram_quantile(0.99, sum by (le) (rate(backlogd_store_commit_duration_seconds_bucket[$__rate_interval])))", "p99"))
            .query(q("sum(rate(backlogd_store_commit_duration_seconds_count[$__rate_interval]))", "commits/s"))
            .legend(&["mean", "max"])
            .override_fields("byName", "commits/s", json!([{"id": "unit", "value": "ops"}, {"id": "custom.axisPlacement", "value": "right"}, {"id": "custom.drawStyle", "value": "bars"}, {"id": "custom.fillOpacity", "value": 30}])),
        heatmap("Ingest request duration distribution", "s")
            .desc("Ingest requests per latency bucket over time (y = bucket upper bound in seconds). A second band appearing higher up means some requests are slow (e.g. waiting on a commit).")
            .size(24, 8)
            .query(q("sum by (le) (increase(backlogd_ingest_request_duration_seconds_bucket[$__rate_interval]))", "{{le}}").heatmap()),
    ]
}

fn feed() -> Vec<Panel> {
    vec![
        timeseries("Last event age", "dtdurations")
            .desc("Wall-clock time since the event time of the latest applied event, with max_ingest_gap_seconds (backlogd_threshold) as a dashed red line. It rises steadily while no events arrive; growth outside quiet hours means the feed from the case system is stuck.")
            .size(8, 8)
            .query(q("time() - max(backlogd_last_event_timestamp_seconds)", "last event age"))
            .query(q(r#"max(backlogd_threshold{name="max_ingest_gap_seconds"})"#, "threshold max_ingest_gap_seconds"))
            .runbook("BacklogdIngestStalled"),
        timeseries("Config reload successful", "short")
            .desc("1 if the last configuration (re)load succeeded, 0 if it failed and the old configuration is kept. A 0 means threshold changes did not take effect.")
            .size(8, 8)
            .query(q("backlogd_config_last_reload_successful", "{{instance}}"))
            .legend(&["lastNotNull", "min"])
            .runbook("BacklogdConfigReloadFailed"),
        timeseries("Series dropped", "short")
            .desc("Employees whose per-employee series were dropped in the trailing hour because limits.max_employee_series was reached. Should be 0; otherwise the per-employee panels are incomplete.")
            .size(8, 8)
            .query(q("sum(increase(backlogd_series_dropped_total[1h]))", "dropped per hour"))
            .runbook("BacklogdEmployeeSeriesDropped"),
    ]
}

fn process() -> Vec<Panel> {
    vec![
        timeseries("Resident memory", "bytes")
            .desc("Resident memory of the backlogd process. The state of every open case and employee lives in memory, so it grows with the backlog; steady growth with a stable backlog suggests a leak. Watch it against the unit's MemoryMax if set.")
            .size(8, 8)
            .query(q("process_resident_memory_bytes and on (job, instance) backlogd_build_info", "{{instance}}")),
        timeseries("CPU usage", "percentunit")
            .desc("CPU time used by the backlogd process per second (100% = one core). Sustained high values mean the daemon cannot keep up with ingestion or scrapes.")
            .size(8, 8)
            .query(q("rate(process_cpu_seconds_total[$__rate_interval]) and on (job, instance) backlogd_build_info", "{{instance}}"))
            .legend(&["mean", "max"]),
        timeseries("Open file descriptors", "short")
            .desc("Open file descriptors of the backlogd process, with the process limit as a dashed red line. Approaching the limit makes new connections and log segments fail.")
            .size(8, 8)
            .query(q("process_open_fds and on (job, instance) backlogd_build_info", "open {{instance}}"))
            .query(q("process_max_fds and on (job, instance) backlogd_build_info", "threshold max fds {{instance}}")),
        timeseries("Scrape duration and samples", "s")
            .desc("How long Prometheus needs to scrape backlogd's /metrics and how many samples it returns. Per-employee series make the scrape grow with the workforce; a scrape close to the scrape timeout will start failing.")
            .size(24, 8)
            .query(q("scrape_duration_seconds and on (job, instance) backlogd_build_info", "duration {{instance}}"))
            .query(q("scrape_samples_scraped and on (job, instance) backlogd_build_info", "samples {{instance}}"))
            .override_fields("byRegexp", "^samples.*", json!([{"id": "unit", "value": "short"}, {"id": "custom.axisPlacement", "value": "right"}])),
    ]
}
