//! `backlogd alert-replay`: when the alerts of a rules file would have fired over a past range.

use std::path::PathBuf;
use std::process::ExitCode;

/// Evaluates the alerting rules of a rules file over a past range against a Prometheus (e.g.
/// one started on blocks built from `backlogd backfill`), applying for: and keep_firing_for:
/// as Prometheus does, and prints when each alert was pending, firing and resolved.
/// See docs/backfill.md.
#[derive(clap::Args)]
pub struct Args {
    /// Base URL of the Prometheus, e.g. http://127.0.0.1:9090.
    #[arg(long)]
    prometheus: String,
    #[command(flatten)]
    ca_file: super::CaFile,
    /// The rules file (e.g. config/prometheus/backlogd-rules.yml).
    #[arg(long)]
    rules: PathBuf,
    /// First evaluation: RFC 3339 with Z or an offset (2026-11-01T15:00:00+01:00),
    /// YYYY-MM-DD (midnight UTC) or now.
    #[arg(long, value_parser = backlogd::instant::instant_arg)]
    from: jiff::Timestamp,
    /// Last evaluation at most (the same forms as --from).
    #[arg(long, value_parser = backlogd::instant::instant_arg)]
    to: jiff::Timestamp,
    /// Evaluation interval: 5m, 1h ... On backfilled data, not finer than the backfill's step
    /// unless Prometheus runs with --query.lookback-delta at least that step.
    #[arg(long, default_value = "5m", value_parser = backlogd::backfill::parse_duration)]
    step: jiff::SignedDuration,
    /// Print JSON (an array of episodes) instead of a table.
    #[arg(long)]
    json: bool,
    /// Only this alert (repeatable).
    #[arg(long = "alert", value_name = "NAME")]
    alerts: Vec<String>,
    /// Only rules with this static label, e.g. source=data (repeatable).
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = super::label_filter)]
    labels: Vec<(String, String)>,
    /// Query the expressions as written instead of replacing recording rule names by their
    /// expressions (when the recorded series exist in Prometheus).
    #[arg(long)]
    no_inline: bool,
    /// Also list alerts that were pending but never fired.
    #[arg(long)]
    pending: bool,
}

pub fn run(args: Args) -> ExitCode {
    let json = args.json;
    let options = backlogd::alert_replay::Options {
        prometheus: args.prometheus,
        timeout: args.ca_file.request_timeout(),
        ca_file: args.ca_file.ca_file,
        rules: args.rules,
        from: args.from,
        to: args.to,
        step: args.step,
        alerts: args.alerts,
        labels: args.labels,
        no_inline: args.no_inline,
        pending: args.pending,
    };
    match backlogd::alert_replay::replay(&options) {
        Ok(rows) if json => match serde_json::to_string_pretty(&rows) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("backlogd alert-replay: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(rows) => {
            print!("{}", backlogd::alert_replay::table(&rows));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("backlogd alert-replay: {e}");
            ExitCode::FAILURE
        }
    }
}
