//! `backlogd import`: a case table (and an employee table) as CSV into events.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Converts a case table (and an employee table) exported as CSV into the events of
/// docs/events.md, in time order, for `backfill --store` or `send`. A mapping file names the
/// columns, the date formats and the zone. Exit 0, 2 when some rows were bad (named by file,
/// line and column; the others are converted), 1 on a refusal. See docs/backfill.md.
#[derive(clap::Args)]
pub struct Args {
    /// The mapping (TOML): [format], [cases], [employees] (config/examples/import/).
    #[arg(long)]
    mapping: PathBuf,
    /// The case table, one row per case, with a header line.
    #[arg(long)]
    cases: PathBuf,
    /// The employee table, one row per employee, with a header line.
    #[arg(long)]
    employees: Option<PathBuf>,
    /// Write the NDJSON here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The instant of the export (RFC 3339, YYYY-MM-DD or now): a suspension ending or an
    /// employee leaving after it has not happened yet.
    #[arg(long, default_value = "now", value_parser = backlogd::instant::instant_arg)]
    as_of: jiff::Timestamp,
    /// No progress display (drawn on standard error only when that is a terminal).
    #[arg(long)]
    quiet: bool,
}

/// The events to `out` (whole or not at all) or stdout; the summary and the bad rows to stderr.
pub fn run(args: Args) -> ExitCode {
    import(
        &args.mapping,
        &args.cases,
        args.employees.as_deref(),
        args.out.as_deref(),
        args.as_of,
        args.quiet,
    )
}

fn import(
    mapping: &Path,
    cases: &Path,
    employees: Option<&Path>,
    out: Option<&Path>,
    as_of: jiff::Timestamp,
    quiet: bool,
) -> ExitCode {
    let result = backlogd::import::read_mapping(mapping).and_then(|mapping| match out {
        Some(path) => {
            let partial = path.with_extension("partial");
            let file =
                std::fs::File::create(&partial).map_err(backlogd::import::ImportError::Write)?;
            let summary = backlogd::import::run(
                &mapping,
                cases,
                employees,
                as_of,
                !quiet,
                std::io::BufWriter::new(file),
            )?;
            std::fs::rename(&partial, path).map_err(backlogd::import::ImportError::Write)?;
            Ok(summary)
        }
        None => backlogd::import::run(
            &mapping,
            cases,
            employees,
            as_of,
            !quiet,
            std::io::BufWriter::new(std::io::stdout().lock()),
        ),
    });
    match result {
        Ok(summary) => {
            for line in &summary.bad_rows {
                eprintln!("backlogd import: skipped {line}");
            }
            eprintln!(
                "backlogd import: {} cases and {} employees read, {} rows skipped, {} events written",
                summary.cases,
                summary.employees,
                summary.bad_rows.len(),
                summary.events
            );
            if summary.bad_rows.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("backlogd import: {e}");
            ExitCode::FAILURE
        }
    }
}
