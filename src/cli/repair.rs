//! `backlogd repair`: the event log of a stopped daemon inspected, and its damaged tail cut.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Inspects the event log of a stopped daemon and reports the first damage; with
/// --truncate-at, discards the newest segment's tail from that damage on (see docs/store.md).
#[derive(clap::Args)]
pub struct Args {
    /// The store directory (store.path; its log/ subdirectory is used) or the log directory.
    #[arg(long)]
    store: PathBuf,
    /// FILE:OFFSET exactly as the report (or the daemon's refusal) names the damage, e.g.
    /// 00000000000000000003.log:4711. Everything from there to the end of that file is removed.
    #[arg(long, value_name = "FILE:OFFSET")]
    truncate_at: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    repair(&args.store, args.truncate_at.as_deref())
}

/// Exit 0 when the log opens as it is (or was just repaired), 1 on damage the daemon refuses or on
/// any error.
fn repair(store: &Path, truncate_at: Option<&str>) -> ExitCode {
    use backlogd::store::log;
    let fail = |message: String| {
        eprintln!("backlogd repair: {message}");
        ExitCode::FAILURE
    };
    let (log_dir, snapshots) = if store.join("log").is_dir() {
        (store.join("log"), Some(store.join("snapshots.sqlite")))
    } else {
        (store.to_path_buf(), None)
    };
    if !log_dir.is_dir() {
        return fail(format!("{} is not a directory", log_dir.display()));
    }
    let Some(spec) = truncate_at else {
        return match log::inspect(&log_dir) {
            Ok(report) => {
                print!("{report}");
                match report.damage {
                    Some(damage) if !damage.torn_tail => ExitCode::FAILURE,
                    _ => ExitCode::SUCCESS,
                }
            }
            Err(e) => fail(e.to_string()),
        };
    };
    let at = match spec.rsplit_once(':') {
        Some((file, offset)) => match (log::parse_segment_file_name(file), offset.parse()) {
            (Some(segment), Ok(offset)) => log::LogPosition { segment, offset },
            _ => {
                return fail(format!(
                    "--truncate-at {spec}: expected FILE:OFFSET, e.g. 00000000000000000003.log:4711"
                ));
            }
        },
        None => {
            return fail(format!(
                "--truncate-at {spec}: expected FILE:OFFSET, e.g. 00000000000000000003.log:4711"
            ));
        }
    };
    // A snapshot records a log position only after the log was committed up to it: if the newest
    // snapshot lies beyond the damage, records after the damage were acknowledged.
    if let Some(path) = &snapshots {
        match backlogd::store::snapshot::latest_meta(path) {
            Ok(Some(meta)) if meta.position > at => {
                return fail(format!(
                    "the newest snapshot in {} covers the log up to {}, beyond {spec}: records \
                     after the damage were acknowledged, so cutting there would lose them; restore \
                     from a backup instead (docs/store.md)",
                    path.display(),
                    meta.position
                ));
            }
            Ok(_) => {}
            Err(e) => return fail(format!("{e:#}")),
        }
    }
    match log::truncate_tail(&log_dir, at) {
        Ok(cut) => {
            println!(
                "truncated {} at offset {}: discarded {} byte(s) holding {} valid-looking record(s)",
                cut.path.display(),
                cut.offset,
                cut.bytes_discarded,
                cut.records_discarded
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}
