//! The `backlogd simulate` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use backlogd::simulate::post::{Pacer, Poster, send_events};
use backlogd::simulate::{Options, Scenario, StatsRow, generate, time};

/// Generates a deterministic stream of scenario events (NDJSON) to stdout, a file or a daemon.
#[derive(clap::Args)]
pub struct Args {
    /// Scenario: a name (config/scenarios/NAME.toml in the working directory or next to the binary,
    /// else the built-in steady, taskforce or scale) or a path to a .toml file.
    #[arg(long)]
    pub scenario: String,
    /// Seed of the random numbers: the same seed and arguments give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start of the history (day 0): RFC 3339 with Z or an offset (2026-11-01T15:00:00+01:00),
    /// YYYY-MM-DD (midnight UTC) or now. Default: --to minus the scenario's calendar.days, else
    /// the scenario's calendar.start.
    #[arg(long, value_parser = backlogd::instant::instant_arg)]
    pub from: Option<jiff::Timestamp>,
    /// End of the history (no later event), in the same forms. Default: --from plus the
    /// scenario's calendar.days.
    #[arg(long, value_parser = backlogd::instant::instant_arg)]
    pub to: Option<jiff::Timestamp>,
    /// Emit only events later than this instant (the simulation still starts at --from), e.g. to
    /// continue a run posted earlier with --to.
    #[arg(long, value_parser = backlogd::instant::instant_arg)]
    pub after: Option<jiff::Timestamp>,
    /// Write the NDJSON to this file instead of stdout.
    #[arg(long, conflicts_with = "url")]
    pub out: Option<PathBuf>,
    /// Post the events to the daemon at this base URL (e.g. http://127.0.0.1:9723).
    #[arg(long)]
    pub url: Option<String>,
    /// Publish the events to this NATS server (nats://HOST:PORT) instead: one message per event,
    /// Nats-Msg-Id = the event id, every JetStream acknowledgement awaited (docs/scaling.md).
    #[arg(long, conflicts_with_all = ["url", "out"], requires = "subject")]
    pub nats: Option<String>,
    /// The subject to publish to with --nats (it must belong to a JetStream stream).
    #[arg(long, requires = "nats")]
    pub subject: Option<String>,
    /// File whose first non-comment line is the ingest bearer token (with --url).
    #[arg(long, requires = "url")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub ca_file: super::CaFile,
    /// At most this many events per second (sleeps between batches).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Events per request with --url (and per write otherwise).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Scale the scenario's cases so that about this many are registered over its calendar.days.
    #[arg(long)]
    pub cases: Option<u64>,
    /// Scale the scenario's staff so that about this many employees are hired.
    #[arg(long)]
    pub employees: Option<u64>,
    /// Multiply all counts of cases and employees (e.g. 0.5 for a quicker, smaller run).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Print the simulation's monthly figures (open, overdue estimate, staff, ...) to stderr.
    #[arg(long)]
    pub stats: bool,
    /// No progress display (drawn on standard error only when that is a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the command: exit 0, 2 when the daemon rejected events, 1 on any other failure.
pub fn run(args: Args) -> ExitCode {
    match execute(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("backlogd simulate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::resolve(&args.scenario)?;
    let options = Options {
        seed: args.seed,
        from: args.from.map(|t| t.as_second()),
        to: args.to.map(|t| t.as_second()),
        after: args.after.map(|t| t.as_second()),
        scale: args.scale,
        cases: args.cases,
        employees: args.employees,
    };
    let (from, to) = options.span(&scenario)?;
    let mut generator = generate(&scenario, &options)?;
    // Progress in simulated time.
    let progress = backlogd::progress::Progress::new(
        u64::try_from(to - from).unwrap_or(0),
        "events",
        args.quiet,
    );
    let mut events = generator
        .by_ref()
        .inspect(|event| progress.advance(u64::try_from(event.time - from).unwrap_or(0), 1));
    let code = if let (Some(nats), Some(subject)) = (&args.nats, &args.subject) {
        let mut pacer = Pacer::new(args.rate);
        let lines = events.by_ref().map(|event| {
            pacer.wait(1);
            event.line
        });
        let published = backlogd::publish::publish_lines(nats, subject, lines)?;
        progress.finish();
        println!(
            "published {}, duplicates {}",
            published.stored, published.duplicates
        );
        ExitCode::SUCCESS
    } else if let Some(url) = &args.url {
        if to > jiff::Timestamp::now().as_second() + 300 {
            eprintln!(
                "backlogd simulate: warning: --to {} is in the future; the daemon rejects events more than ingest.max_future_skew ahead of its clock",
                time::rfc3339(to)
            );
        }
        let token = match &args.token_file {
            Some(path) => backlogd::server::read_tokens(path)?.into_iter().next(),
            None => None,
        };
        let poster = Poster::new(args.ca_file.client(url, token)?);
        let totals = send_events(
            events.by_ref(),
            &poster,
            args.batch,
            args.rate,
            |rejected| {
                progress.println(&format!(
                    "{}: {}: {}",
                    rejected.id.as_deref().unwrap_or("(no id)"),
                    rejected.reason,
                    rejected.message
                ));
            },
        )?;
        progress.finish();
        println!(
            "accepted {}, duplicates {}, rejected {}",
            totals.accepted, totals.duplicates, totals.rejected
        );
        if totals.rejected == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        }
    } else {
        let sink: Box<dyn Write> = match &args.out {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut sink = std::io::BufWriter::with_capacity(1 << 16, sink);
        let mut pacer = Pacer::new(args.rate);
        let batch = pacer.batch(args.batch);
        let mut in_batch = 0;
        let mut result = Ok(());
        for event in events.by_ref() {
            if in_batch == 0 {
                pacer.wait(batch);
            }
            result = sink
                .write_all(event.line.as_bytes())
                .and_then(|()| sink.write_all(b"\n"));
            if result.is_err() {
                break;
            }
            in_batch += 1;
            if in_batch >= batch {
                in_batch = 0;
                if args.rate.is_some() {
                    result = sink.flush();
                    if result.is_err() {
                        break;
                    }
                }
            }
        }
        if result.is_ok() {
            result = sink.flush();
        }
        progress.finish();
        match result {
            // A closed pipe (`| head`) ends the stream quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.context("cannot write the events")?,
        }
        ExitCode::SUCCESS
    };
    if args.stats {
        eprintln!("{}", StatsRow::HEADER);
        for row in generator.stats() {
            eprintln!("{}", row.line());
        }
    }
    Ok(code)
}
