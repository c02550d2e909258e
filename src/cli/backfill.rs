//! `backlogd backfill`: history from event files as OpenMetrics text, and a store to start from.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backlogd::config;

/// Writes the state's history from event files as OpenMetrics text (the families /metrics
/// shows, at every --step, timestamped) for `promtool tsdb create-blocks-from openmetrics`.
/// Exit 0, 2 when some events were rejected (the output is complete), 1 on a refusal or error.
/// See docs/backfill.md.
#[derive(clap::Args)]
pub struct Args {
    /// The daemon's configuration (tracks, windows, thresholds, ingest.max_future_skew ...).
    #[arg(long)]
    config: PathBuf,
    /// Distance between the written instants: 1h, 5m, 1d, PT1H ... (needed for the
    /// OpenMetrics text; not with --store alone).
    #[arg(long, value_parser = backlogd::backfill::parse_duration)]
    step: Option<jiff::SignedDuration>,
    /// First instant written: RFC 3339 with Z or an offset (2026-11-01T15:00:00+01:00),
    /// YYYY-MM-DD (midnight UTC) or now; default: the first event's time rounded up to a
    /// multiple of --step.
    #[arg(long, value_parser = backlogd::instant::instant_arg)]
    from: Option<jiff::Timestamp>,
    /// Last instant written at most (the same forms as --from); default: the latest event
    /// time.
    #[arg(long, value_parser = backlogd::instant::instant_arg)]
    to: Option<jiff::Timestamp>,
    /// Write to this file (complete or not at all) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also (or, without --out, only) write a new store in this directory whose snapshot is
    /// the state at the end, daily history included: `backlogd run` with this store.path
    /// continues from it. The directory must not hold a store.
    #[arg(long)]
    store: Option<PathBuf>,
    /// With --store, when the events are also the messages of the NATS stream the daemon
    /// will consume (sources.nats): the stream and the sequence of the last of them, e.g.
    /// CASES:431207. The daemon's source then resumes right after it; without it, a daemon
    /// with [sources.nats] refuses to start on the store until sources.nats.start_after is set.
    #[arg(long, value_name = "STREAM:SEQUENCE", value_parser = stream_position, requires = "store")]
    stream_position: Option<backlogd::store::SourcePosition>,
    /// Refuse to write more samples than this (steps x series).
    #[arg(long, default_value_t = backlogd::backfill::DEFAULT_MAX_SAMPLES)]
    max_samples: u64,
    /// A label added to every sample (repeatable): give the job and instance labels
    /// Prometheus gives the live daemon, e.g. --label job=backlogd --label instance=host:9723.
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = super::label_filter)]
    labels: Vec<(String, String)>,
    /// NDJSON event files, read in this order, in time order each.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// No progress display (drawn on standard error only when that is a terminal).
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> ExitCode {
    let Args {
        config,
        step,
        from,
        to,
        out,
        store,
        stream_position,
        max_samples,
        labels,
        files,
        quiet,
    } = args;
    let writing = out.is_some() || store.is_none();
    let Some(step) = step.or((!writing).then_some(jiff::SignedDuration::from_hours(1))) else {
        eprintln!(
            "backlogd backfill: --step is needed for the OpenMetrics text (or give --store DIR without --out)"
        );
        return ExitCode::from(2);
    };
    let options = backlogd::backfill::Options {
        files,
        step,
        from,
        to,
        max_samples,
        labels,
        not_after: None,
        progress: !quiet,
    };
    backfill(
        &config,
        &options,
        out.as_deref(),
        store.as_deref().map(|dir| (dir, stream_position.as_ref())),
    )
}

/// The OpenMetrics text to stdout or, whole or not at all, to `out` (not with
/// `store` alone); the new store in `store`; the summary and throughput to stderr.
fn backfill(
    config_file: &Path,
    options: &backlogd::backfill::Options,
    out: Option<&Path>,
    store: Option<(&Path, Option<&backlogd::store::SourcePosition>)>,
) -> ExitCode {
    use backlogd::backfill::{BackfillError, run_to_state};
    let fail = |message: String| {
        eprintln!("backlogd backfill: {message}");
        ExitCode::FAILURE
    };
    let source = match config::ConfigSource::read(config_file) {
        Ok(source) => source,
        Err(e) => return fail(format!("{}: {e}", config_file.display())),
    };
    let config = match source.load() {
        Ok(config) => config,
        Err(e) => return fail(format!("{}: {e}", config_file.display())),
    };
    // The store's lock is held from here until its snapshot is written: a daemon started on the
    // directory meanwhile refuses to start instead of starting empty (issue 24, finding 4).
    let seeding = match store.map(|(dir, _)| backlogd::backfill::store::begin(dir)) {
        Some(Err(e)) => return fail(e.to_string()),
        Some(Ok(seeding)) => Some(seeding),
        None => None,
    };
    let started = std::time::Instant::now();
    let mut options = options.clone();
    if store.is_some() {
        options.not_after = Some(jiff::Timestamp::now() + config.ingest.max_future_skew);
    }
    let options = &options;
    let result = match (out, store) {
        (Some(path), _) => {
            let mut partial = path.as_os_str().to_owned();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let file = match std::fs::File::create(&partial) {
                Ok(file) => file,
                Err(e) => return fail(format!("{}: {e}", partial.display())),
            };
            let writer = std::io::BufWriter::with_capacity(1 << 20, file);
            let result = run_to_state(&config, options, Some(writer));
            let result = result.and_then(|done| {
                std::fs::rename(&partial, path)
                    .map(|()| done)
                    .map_err(BackfillError::Write)
            });
            if result.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            result
        }
        (None, Some(_)) => run_to_state(&config, options, None::<std::io::Sink>),
        (None, None) => {
            let stdout = std::io::stdout().lock();
            let writer = std::io::BufWriter::with_capacity(1 << 20, stdout);
            run_to_state(&config, options, Some(writer))
        }
    };
    let (summary, state) = match result {
        Ok(done) => done,
        Err(e) => return fail(e.to_string()),
    };
    if let (Some((dir, stream_position)), Some(seeding)) = (store, seeding) {
        match seeding.write(&state, &source, stream_position) {
            Ok(written) => eprintln!(
                "backlogd backfill: wrote the store {}: {} open cases, {} days of history, a {} byte snapshot",
                dir.display(),
                written.open_cases,
                written.history_days,
                written.snapshot_bytes
            ),
            Err(e) => return fail(e.to_string()),
        }
    }
    drop(state);
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let rejected: u64 = summary.rejected.values().sum();
    for line in &summary.rejections_named {
        eprintln!("backlogd backfill: rejected {line}");
    }
    eprintln!(
        "backlogd backfill: {} events read: {} applied, {} duplicates, {rejected} rejected {:?}; {} steps from {} to {}, {} samples; {seconds:.2} s ({:.0} events/s, {:.0} samples/s)",
        summary.lines,
        summary.applied,
        summary.duplicates,
        summary.rejected,
        summary.steps,
        summary.first_step.map_or("-".to_owned(), |t| t.to_string()),
        summary.last_step.map_or("-".to_owned(), |t| t.to_string()),
        summary.samples,
        summary.lines as f64 / seconds,
        summary.samples as f64 / seconds,
    );
    if rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// `STREAM:SEQUENCE`, a position in a NATS JetStream stream.
fn stream_position(text: &str) -> Result<backlogd::store::SourcePosition, String> {
    let (stream, sequence) = text
        .rsplit_once(':')
        .filter(|(stream, _)| !stream.trim().is_empty())
        .ok_or_else(|| format!("{text:?}: expected STREAM:SEQUENCE, e.g. CASES:431207"))?;
    let sequence = sequence.trim().parse::<u64>().map_err(|_| {
        format!("{text:?}: the sequence {sequence:?} is not a whole number, e.g. CASES:431207")
    })?;
    Ok(backlogd::store::SourcePosition {
        stream: stream.trim().to_owned(),
        sequence,
    })
}
