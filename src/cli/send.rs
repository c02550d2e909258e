//! `backlogd send`: event files to a running daemon (HTTP) or to a NATS stream.

use std::path::PathBuf;
use std::process::ExitCode;

/// Posts NDJSON event files to a running daemon.
#[derive(clap::Args)]
pub struct Args {
    /// NDJSON files, one event a line.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    daemon: super::DaemonArgs,
    /// Events per request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Attempts per batch while the daemon is unavailable (503 or no connection).
    #[arg(long, default_value_t = 20)]
    max_attempts: u32,
    /// Publish to this NATS server (nats://HOST:PORT) instead of posting: one message per
    /// event with Nats-Msg-Id = the event id, every JetStream acknowledgement awaited.
    #[arg(long, requires = "subject")]
    nats: Option<String>,
    /// The subject to publish to with --nats (it must belong to a JetStream stream).
    #[arg(long, requires = "nats")]
    subject: Option<String>,
    /// No progress display (it is drawn on standard error only when that is a terminal).
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> ExitCode {
    super::finish("send", execute(args))
}

fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        files,
        daemon,
        batch,
        max_attempts,
        nats,
        subject,
        quiet,
    } = args;
    if let (Some(nats), Some(subject)) = (nats, subject) {
        return Ok(send_to_nats(&nats, &subject, &files));
    }
    let options = backlogd::send::SendOptions {
        files,
        client: daemon.client()?,
        batch,
        max_attempts,
        quiet,
    };
    let totals = backlogd::send::run(options)?;
    Ok(if totals.rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `backlogd send --nats`: every non-blank line of the files, one message each.
fn send_to_nats(url: &str, subject: &str, files: &[PathBuf]) -> ExitCode {
    let mut lines = Vec::new();
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(text) => lines.extend(text.lines().map(str::to_owned)),
            Err(e) => {
                eprintln!("backlogd send: cannot read {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
    }
    match backlogd::publish::publish_lines(url, subject, lines.into_iter()) {
        Ok(published) => {
            println!(
                "published {}, duplicates {}",
                published.stored, published.duplicates
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("backlogd send: {e:#}");
            ExitCode::FAILURE
        }
    }
}
