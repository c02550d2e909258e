//! `backlogd pseudonym`: the pseudonym of an employee in /metrics.

use std::path::PathBuf;
use std::process::ExitCode;

use backlogd::config;

/// Prints the pseudonym under which an employee appears in /metrics when
/// workforce.employee_label = "pseudonym", so a team lead can find a person's series.
#[derive(clap::Args)]
pub struct Args {
    employee: String,
    /// Configuration file naming workforce.pseudonym_key_file.
    #[arg(long)]
    config: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    let Args { employee, config } = args;
    let edge = config::load(&config)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))
        .and_then(|c| {
            backlogd::workforce::EdgeSettings::from_config(&c).map_err(anyhow::Error::from)
        });
    match edge {
        Ok(edge) => match edge.pseudonym_key {
            Some(key) => {
                println!("{}", backlogd::workforce::pseudonym(&key, &employee));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "{}: workforce.employee_label is not \"pseudonym\"; employees appear {}",
                    config.display(),
                    match edge.employee_label {
                        config::EmployeeLabel::Id => "under their id",
                        _ => "in no per-employee series",
                    }
                );
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("backlogd pseudonym: {e:#}");
            ExitCode::FAILURE
        }
    }
}
