//! `backlogd forecast`: a running daemon's what-if forecast, as a table, JSON or an SVG.

use std::path::PathBuf;
use std::process::ExitCode;

/// Asks a running daemon for its what-if forecast (GET /v1/forecast, docs/forecast.md) and
/// prints it week by week; with --svg, draws it beside the announced targets.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    daemon: super::DaemonArgs,
    /// Weeks to project (1 to 104; default 52).
    #[arg(long)]
    weeks: Option<u32>,
    /// A hiring wave COUNT@WEEK (inexperienced staff joining at the start of that week, 0 =
    /// now); repeatable.
    #[arg(long)]
    hires: Vec<String>,
    /// Time over which a new hire rises from the observed inexperienced rate to the
    /// experienced rate: weeks, or a duration in weeks and days such as P26W (default P26W).
    #[arg(long)]
    ramp_up: Option<String>,
    /// Mentees per mentor while they ramp up (default: the observed ratio; 0: no mentoring).
    #[arg(long)]
    mentor_ratio: Option<f64>,
    /// Employees leaving per week (default 0).
    #[arg(long)]
    leavers_per_week: Option<f64>,
    /// New cases per week (default: the observed net inflow).
    #[arg(long)]
    inflow_per_week: Option<f64>,
    /// Prints the daemon's JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also writes the projection beside the announced targets as an SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    super::finish("forecast", execute(args))
}

fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            params.push((key.to_owned(), value));
        }
    };
    put("weeks", args.weeks.map(|w| w.to_string()));
    put("ramp_up", args.ramp_up);
    put("mentor_ratio", args.mentor_ratio.map(|x| x.to_string()));
    put(
        "leavers_per_week",
        args.leavers_per_week.map(|x| x.to_string()),
    );
    put(
        "inflow_per_week",
        args.inflow_per_week.map(|x| x.to_string()),
    );
    for wave in args.hires {
        params.push(("hires".to_owned(), wave));
    }
    let options = backlogd::forecast::ForecastOptions {
        client: args.daemon.client()?,
        params,
        json: args.json,
        svg: args.svg,
    };
    backlogd::forecast::run(&options)?;
    Ok(ExitCode::SUCCESS)
}
