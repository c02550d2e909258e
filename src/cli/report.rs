//! `backlogd report`: a running daemon's HTML report, written to a file.

use std::path::PathBuf;
use std::process::ExitCode;

/// Writes the report of a running daemon (its daily history and announced targets) as one
/// self-contained HTML file; the daemon also serves it as GET /report
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    daemon: super::DaemonArgs,
    /// First day, inclusive: YYYY-MM-DD, a day of the daemon's time.timezone (the history
    /// has one row a day, so an instant is refused).
    #[arg(long, value_parser = backlogd::instant::day_arg)]
    from: Option<jiff::civil::Date>,
    /// Last day, inclusive (YYYY-MM-DD).
    #[arg(long, value_parser = backlogd::instant::day_arg)]
    to: Option<jiff::civil::Date>,
    /// Language of the texts: en or nl; default: the daemon's report.language.
    #[arg(long)]
    lang: Option<String>,
    /// The HTML file to write.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    super::finish("report", execute(args))
}

fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        daemon,
        from,
        to,
        lang,
        out,
    } = args;
    let lang = lang
        .map(|lang| {
            backlogd::report::Lang::parse(&lang)
                .ok_or_else(|| anyhow::anyhow!("--lang {lang}: expected en or nl"))
        })
        .transpose()?;
    let client = daemon.client()?;
    let page = backlogd::report::fetch(&client, from, to, lang)?;
    std::fs::write(&out, page)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}
