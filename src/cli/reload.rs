//! `backlogd reload`: asks a running daemon to reload its configuration and waits for the result.

use std::path::PathBuf;
use std::process::ExitCode;

use backlogd::config;

/// Asks a running daemon to reload its configuration and waits for the result: exit 0 when it
/// took effect, 1 with the reason when it did not (the daemon keeps running on the old one).
/// Used as the unit's ExecReload, so that `systemctl reload` reports a failed reload.
#[derive(clap::Args)]
pub struct Args {
    /// The daemon's configuration file: its server.listen and server.ingest_tokens_file say
    /// where to ask and with which token.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Base URL of the daemon instead of the configuration's server.listen.
    #[arg(long)]
    url: Option<String>,
    /// File whose first non-comment line is the bearer token (default: the configuration's
    /// server.ingest_tokens_file).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let Args {
        config: config_file,
        url,
        token_file,
    } = args;
    let loaded = match config_file.as_deref().map(config::load) {
        Some(Ok(loaded)) => Some(loaded),
        Some(Err(e)) => {
            eprintln!("backlogd reload: {e}");
            return ExitCode::FAILURE;
        }
        None => None,
    };
    if loaded.as_ref().is_some_and(|c| c.server.tls.is_some()) && url.is_none() {
        eprintln!(
            "backlogd reload: the daemon listens with TLS, which this command does not speak; send SIGHUP instead (kill -HUP)"
        );
        return ExitCode::FAILURE;
    }
    let Some(url) = url.or_else(|| {
        loaded
            .as_ref()
            .map(|c| backlogd::send::local_url(c.server.listen))
    }) else {
        eprintln!("backlogd reload: give --config FILE or --url URL");
        return ExitCode::FAILURE;
    };
    let tokens_file = token_file.or_else(|| {
        loaded
            .as_ref()
            .and_then(|c| c.server.ingest_tokens_file.clone())
    });
    let token = match super::first_token(tokens_file.as_deref()) {
        Ok(token) => token,
        Err(e) => {
            eprintln!("backlogd reload: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match backlogd::send::reload(&url, token.as_deref()) {
        Ok(_) => {
            println!("reloaded");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("backlogd reload: {e:#}");
            ExitCode::FAILURE
        }
    }
}
