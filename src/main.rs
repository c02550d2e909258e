//! The `backlogd` command: the daemon (`run`), a configuration check, a sender client, the event
//! log's inspection and repair (`repair`), and history: `backfill` and `alert-replay`. This file
//! parses the command line and dispatches; each command is a file in `cli/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(version, about = "Live backlog metrics for case-handling agencies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The commands in the order `backlogd --help` lists them; each one's help is its `Args`.
#[derive(Subcommand)]
enum Command {
    Run(cli::run::Args),
    CheckConfig(cli::check_config::Args),
    Pseudonym(cli::pseudonym::Args),
    Send(cli::send::Args),
    Reload(cli::reload::Args),
    Forecast(cli::forecast::Args),
    Simulate(cli::simulate::Args),
    Import(cli::import::Args),
    Repair(cli::repair::Args),
    Backfill(cli::backfill::Args),
    AlertReplay(cli::alert_replay::Args),
    Demo(cli::demo::Args),
    Report(cli::report::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => cli::run::run(args),
        Command::CheckConfig(args) => cli::check_config::run(args),
        Command::Pseudonym(args) => cli::pseudonym::run(args),
        Command::Send(args) => cli::send::run(args),
        Command::Reload(args) => cli::reload::run(args),
        Command::Forecast(args) => cli::forecast::run(args),
        Command::Simulate(args) => cli::simulate::run(args),
        Command::Import(args) => cli::import::run(args),
        Command::Repair(args) => cli::repair::run(args),
        Command::Backfill(args) => cli::backfill::run(args),
        Command::AlertReplay(args) => cli::alert_replay::run(args),
        Command::Demo(args) => cli::demo::run(args),
        Command::Report(args) => cli::report::run(args),
    }
}
