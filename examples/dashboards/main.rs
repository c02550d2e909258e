//! Generates the Grafana dashboards in `dashboards/` from their declarations in this directory:
//!
//! ```sh
//! cargo run --example dashboards            # rewrites dashboards/*.json
//! cargo run --example dashboards -- OUTDIR  # writes them elsewhere
//! ```
//!
//! Each dashboard is declared once (`overview.rs`, `workforce.rs`, `quality.rs`, `internals.rs`):
//! rows of panels with title, description, unit, PromQL and colours. `grafana.rs` turns them into
//! Grafana's JSON model and adds what every dashboard shares: the `job`/`instance` scoping of every
//! query, annotations, links, the layout. `tests/dashboards.rs` fails when the checked-in JSON is
//! not what this generates. Hand edits to the JSON are lost: change the declarations instead.

// The test (tests/dashboards.rs) includes this file as a module and uses only part of it.
#![allow(dead_code)]

pub mod grafana;
mod internals;
mod overview;
mod quality;
mod workforce;

use std::path::{Path, PathBuf};

/// Where the panels' runbook links point: the section of each alert is `#<alert name in lower
/// case>` (docs/runbooks.md). Point it at your own copy (an intranet wiki, a fork) and regenerate.
pub const RUNBOOK_BASE_URL: &str =
    "https://github.com/backlogd/backlogd/blob/main/docs/runbooks.md";

/// The drill-down to the overdue cases themselves (`GET /v1/cases/overdue`, docs/http.md), served
/// by the daemon at the address Prometheus scrapes (`${instance}`). Use `https://` when the daemon
/// serves TLS.
pub const DRILLDOWN_URL: &str = "http://${instance}/v1/cases/overdue";

/// The command that regenerates the dashboards (quoted by the staleness test).
pub const REGENERATE: &str = "cargo run --example dashboards";

/// Every dashboard: its file name in `dashboards/` and its JSON model.
pub fn dashboards() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("backlog-overview.json", overview::dashboard().to_json()),
        ("workforce.json", workforce::dashboard().to_json()),
        ("quality.json", quality::dashboard().to_json()),
        ("internals.json", internals::dashboard().to_json()),
    ]
}

/// The text of a dashboard file: pretty JSON (two-space indent) and a final newline.
pub fn render(dashboard: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(dashboard).expect("a JSON value serialises");
    text.push('\n');
    text
}

/// Writes every dashboard into `dir`; returns the paths written.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    dashboards()
        .iter()
        .map(|(name, dashboard)| {
            let path = dir.join(name);
            std::fs::write(&path, render(dashboard))?;
            Ok(path)
        })
        .collect()
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards"));
    match write_all(&dir) {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
        }
        Err(error) => {
            eprintln!(
                "cannot write the dashboards into {}: {error}",
                dir.display()
            );
            std::process::exit(1);
        }
    }
}
