//! `backlogd run`: the daemon.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backlogd::config;

/// Runs the daemon.
#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (default: config/backlogd.toml in the working directory or next to
    /// the binary, then /etc/backlogd/backlogd.toml, then the built-in default).
    #[arg(long)]
    config: Option<PathBuf>,
}

const EMBEDDED_DEFAULT: &str = include_str!("../../config/backlogd.toml");

pub fn run(args: Args) -> ExitCode {
    let path = args.config.or_else(default_config_path);
    let source = match &path {
        Some(path) => config::ConfigSource::read(path),
        None => Ok(config::ConfigSource::inline(EMBEDDED_DEFAULT)),
    };
    let source = match source {
        Ok(source) => source,
        Err(e) => {
            eprintln!("backlogd: invalid configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = match source.load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("backlogd: invalid configuration:");
            eprintln!("{}", e.report(&source.origin, &source.text));
            return ExitCode::FAILURE;
        }
    };
    backlogd::daemon::init_logging(&config);
    backlogd::daemon::abort_on_panic();
    match backlogd::daemon::run(config, source, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("backlogd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_config_path() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("config/backlogd.toml")];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("config/backlogd.toml"));
    }
    candidates.push(PathBuf::from("/etc/backlogd/backlogd.toml"));
    candidates.into_iter().find(|p| p.is_file())
}
