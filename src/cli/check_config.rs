//! `backlogd check-config`: every problem of a configuration file, or "ok".

use std::path::PathBuf;
use std::process::ExitCode;

use backlogd::config;

/// Validates a configuration file and prints what is wrong with it (exit 1) or "ok".
#[derive(clap::Args)]
pub struct Args {
    file: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    let file = args.file;
    let source = match config::ConfigSource::read(&file) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match source.load() {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Every problem found, one a line, with the file's line where it can be told.
            eprintln!("{}", e.report(&file.display().to_string(), &source.text));
            ExitCode::FAILURE
        }
    }
}
