//! The `backlogd` command: the daemon (`run`), a configuration check, a sender client, the event
//! log's inspection and repair (`repair`), and history: `backfill` and `alert-replay`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use backlogd::config;

#[derive(Parser)]
#[command(version, about = "Live backlog metrics for case-handling agencies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the daemon.
    Run {
        /// Configuration file (default: config/backlogd.toml in the working directory or next to
        /// the binary, then /etc/backlogd/backlogd.toml, then the built-in default).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validates a configuration file and prints what is wrong with it (exit 1) or "ok".
    CheckConfig { file: PathBuf },
    /// Prints the pseudonym under which an employee appears in /metrics when
    /// workforce.employee_label = "pseudonym", so a team lead can find a person's series.
    Pseudonym {
        employee: String,
        /// Configuration file naming workforce.pseudonym_key_file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Posts NDJSON event files to a running daemon.
    Send {
        /// NDJSON files, one event a line.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Base URL of the daemon.
        #[arg(long, default_value = "http://127.0.0.1:9723")]
        url: String,
        /// File whose first non-comment line is the bearer token.
        #[arg(long)]
        token_file: Option<PathBuf>,
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
    },
    /// Asks a running daemon to reload its configuration and waits for the result: exit 0 when it
    /// took effect, 1 with the reason when it did not (the daemon keeps running on the old one).
    /// Used as the unit's ExecReload, so that `systemctl reload` reports a failed reload.
    Reload {
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
    },
    /// Asks a running daemon for its what-if forecast (GET /v1/forecast, docs/forecast.md) and
    /// prints it week by week; with --svg, draws it beside the announced targets.
    Forecast {
        /// Base URL of the daemon.
        #[arg(long, default_value = "http://127.0.0.1:9723")]
        url: String,
        /// File whose first non-comment line is the bearer token.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Weeks to project (1 to 104; default 52).
        #[arg(long)]
        weeks: Option<u32>,
        /// A hiring wave COUNT@WEEK (inexperienced staff joining at the start of that week, 0 =
        /// now); repeatable.
        #[arg(long)]
        hires: Vec<String>,
        /// Time over which a new hire rises from the observed inexperienced rate to the
        /// experienced rate: weeks, or a duration in weeks and days such as P26W (default P26W).
        #[arg(long)]
        ramp_up: Option<String>,
        /// Mentees per mentor while they ramp up (default: the observed ratio; 0: no mentoring).
        #[arg(long)]
        mentor_ratio: Option<f64>,
        /// Employees leaving per week (default 0).
        #[arg(long)]
        leavers_per_week: Option<f64>,
        /// New cases per week (default: the observed net inflow).
        #[arg(long)]
        inflow_per_week: Option<f64>,
        /// Prints the daemon's JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Also writes the projection beside the announced targets as an SVG file.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Generates a deterministic stream of scenario events (NDJSON) to stdout, a file or a daemon.
    Simulate(backlogd::simulate::cli::SimulateArgs),
    /// Converts a case table (and an employee table) exported as CSV into the events of
    /// docs/events.md, in time order, for `backfill --store` or `send`. A mapping file names the
    /// columns, the date formats and the zone. Exit 0, 2 when some rows were bad (named by file,
    /// line and column; the others are converted), 1 on a refusal. See docs/backfill.md.
    Import {
        /// The mapping (TOML): [format], [cases], [employees] (config/examples/import/).
        #[arg(long)]
        mapping: PathBuf,
        /// The case table, one row per case, with a header line.
        #[arg(long)]
        cases: PathBuf,
        /// The employee table, one row per employee, with a header line.
        #[arg(long)]
        employees: Option<PathBuf>,
        /// Write the NDJSON here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The instant of the export (RFC 3339, YYYY-MM-DD or now): a suspension ending or an
        /// employee leaving after it has not happened yet.
        #[arg(long, default_value = "now", value_parser = backlogd::instant::instant_arg)]
        as_of: jiff::Timestamp,
        /// No progress display (drawn on standard error only when that is a terminal).
        #[arg(long)]
        quiet: bool,
    },
    /// Inspects the event log of a stopped daemon and reports the first damage; with
    /// --truncate-at, discards the newest segment's tail from that damage on (see docs/store.md).
    Repair {
        /// The store directory (store.path; its log/ subdirectory is used) or the log directory.
        #[arg(long)]
        store: PathBuf,
        /// FILE:OFFSET exactly as the report (or the daemon's refusal) names the damage, e.g.
        /// 00000000000000000003.log:4711. Everything from there to the end of that file is removed.
        #[arg(long, value_name = "FILE:OFFSET")]
        truncate_at: Option<String>,
    },
    /// Writes the state's history from event files as OpenMetrics text (the families /metrics
    /// shows, at every --step, timestamped) for `promtool tsdb create-blocks-from openmetrics`.
    /// Exit 0, 2 when some events were rejected (the output is complete), 1 on a refusal or error.
    /// See docs/backfill.md.
    Backfill {
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
        #[arg(long = "label", value_name = "NAME=VALUE", value_parser = label_filter)]
        labels: Vec<(String, String)>,
        /// NDJSON event files, read in this order, in time order each.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// No progress display (drawn on standard error only when that is a terminal).
        #[arg(long)]
        quiet: bool,
    },
    /// Evaluates the alerting rules of a rules file over a past range against a Prometheus (e.g.
    /// one started on blocks built from `backlogd backfill`), applying for: and keep_firing_for:
    /// as Prometheus does, and prints when each alert was pending, firing and resolved.
    /// See docs/backfill.md.
    AlertReplay {
        /// Base URL of the Prometheus, e.g. http://127.0.0.1:9090.
        #[arg(long)]
        prometheus: String,
        /// The rules file (e.g. config/prometheus/backlogd-rules.yml).
        #[arg(long)]
        rules: PathBuf,
        /// First evaluation: RFC 3339 with Z or an offset (2026-11-01T15:00:00+01:00),
        /// YYYY-MM-DD (midnight UTC) or now.
        #[arg(long, value_parser = backlogd::instant::instant_arg)]
        from: jiff::Timestamp,
        /// Last evaluation at most (the same forms as --from).
        #[arg(long, value_parser = backlogd::instant::instant_arg)]
        to: jiff::Timestamp,
        /// Evaluation interval: 5m, 1h ... On backfilled data, not finer than the backfill's step
        /// unless Prometheus runs with --query.lookback-delta at least that step.
        #[arg(long, default_value = "5m", value_parser = backlogd::backfill::parse_duration)]
        step: jiff::SignedDuration,
        /// Print JSON (an array of episodes) instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this alert (repeatable).
        #[arg(long = "alert", value_name = "NAME")]
        alerts: Vec<String>,
        /// Only rules with this static label, e.g. source=data (repeatable).
        #[arg(long = "label", value_name = "NAME=VALUE", value_parser = label_filter)]
        labels: Vec<(String, String)>,
        /// Query the expressions as written instead of replacing recording rule names by their
        /// expressions (when the recorded series exist in Prometheus).
        #[arg(long)]
        no_inline: bool,
        /// Also list alerts that were pending but never fired.
        #[arg(long)]
        pending: bool,
    },
    /// Runs the daemon with a temporary store, replays the taskforce scenario's history into it,
    /// then keeps emitting live events, and prints the URLs to look at.
    Demo(backlogd::demo::DemoArgs),
    /// Writes the report of a running daemon (its daily history and announced targets) as one
    /// self-contained HTML file; the daemon also serves it as GET /report
    Report {
        /// Base URL of the daemon.
        #[arg(long, default_value = "http://127.0.0.1:9723")]
        url: String,
        /// File whose first non-comment line is the bearer token.
        #[arg(long)]
        token_file: Option<PathBuf>,
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
    },
}

const EMBEDDED_DEFAULT: &str = include_str!("../config/backlogd.toml");

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            let path = config.or_else(default_config_path);
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
        Command::CheckConfig { file } => {
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
        Command::Pseudonym { employee, config } => {
            let edge = config::load(&config)
                .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))
                .and_then(|c| backlogd::workforce::EdgeSettings::from_config(&c));
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
        Command::Reload {
            config: config_file,
            url,
            token_file,
        } => {
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
            let token = match first_token(tokens_file.as_deref()) {
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
        Command::Send {
            files,
            url,
            token_file,
            batch,
            max_attempts,
            nats,
            subject,
            quiet,
        } => {
            if let (Some(nats), Some(subject)) = (nats, subject) {
                return send_to_nats(&nats, &subject, &files);
            }
            let token = match first_token(token_file.as_deref()) {
                Ok(token) => token,
                Err(e) => {
                    eprintln!("backlogd send: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let options = backlogd::send::SendOptions {
                files,
                url,
                token,
                batch,
                max_attempts,
                quiet,
            };
            match backlogd::send::run(options) {
                Ok(totals) if totals.rejected == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(2),
                Err(e) => {
                    eprintln!("backlogd send: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Report {
            url,
            token_file,
            from,
            to,
            lang,
            out,
        } => {
            let result = (|| -> anyhow::Result<()> {
                let lang = lang
                    .map(|lang| {
                        backlogd::report::Lang::parse(&lang)
                            .ok_or_else(|| anyhow::anyhow!("--lang {lang}: expected en or nl"))
                    })
                    .transpose()?;
                let token = first_token(token_file.as_deref())?;
                let page = backlogd::report::fetch(&url, token.as_deref(), from, to, lang)?;
                std::fs::write(&out, page)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
                Ok(())
            })();
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("backlogd report: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Forecast {
            url,
            token_file,
            weeks,
            hires,
            ramp_up,
            mentor_ratio,
            leavers_per_week,
            inflow_per_week,
            json,
            svg,
        } => {
            let token = match first_token(token_file.as_deref()) {
                Ok(token) => token,
                Err(e) => {
                    eprintln!("backlogd forecast: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let mut params: Vec<(String, String)> = Vec::new();
            let mut put = |key: &str, value: Option<String>| {
                if let Some(value) = value {
                    params.push((key.to_owned(), value));
                }
            };
            put("weeks", weeks.map(|w| w.to_string()));
            put("ramp_up", ramp_up);
            put("mentor_ratio", mentor_ratio.map(|x| x.to_string()));
            put("leavers_per_week", leavers_per_week.map(|x| x.to_string()));
            put("inflow_per_week", inflow_per_week.map(|x| x.to_string()));
            for wave in hires {
                params.push(("hires".to_owned(), wave));
            }
            let options = backlogd::forecast::ForecastOptions {
                url,
                token,
                params,
                json,
                svg,
            };
            match backlogd::forecast::run(&options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("backlogd forecast: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Repair { store, truncate_at } => repair(&store, truncate_at.as_deref()),
        Command::Import {
            mapping,
            cases,
            employees,
            out,
            as_of,
            quiet,
        } => import(
            &mapping,
            &cases,
            employees.as_deref(),
            out.as_deref(),
            as_of,
            quiet,
        ),
        Command::Simulate(args) => backlogd::simulate::cli::run(args),
        Command::Demo(args) => backlogd::demo::run(args),
        Command::AlertReplay {
            prometheus,
            rules,
            from,
            to,
            step,
            json,
            alerts,
            labels,
            no_inline,
            pending,
        } => {
            let options = backlogd::alert_replay::Options {
                prometheus,
                rules,
                from,
                to,
                step,
                alerts,
                labels,
                no_inline,
                pending,
            };
            match backlogd::alert_replay::replay(&options) {
                Ok(rows) if json => match serde_json::to_string_pretty(&rows) {
                    Ok(text) => {
                        println!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("backlogd alert-replay: {e}");
                        ExitCode::FAILURE
                    }
                },
                Ok(rows) => {
                    print!("{}", backlogd::alert_replay::table(&rows));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("backlogd alert-replay: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Backfill {
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
        } => {
            let writing = out.is_some() || store.is_none();
            let Some(step) = step.or((!writing).then_some(jiff::SignedDuration::from_hours(1)))
            else {
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
    }
}

/// `backlogd backfill`: the OpenMetrics text to stdout or, whole or not at all, to `out` (not with
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
    if let Some(Err(e)) = store.map(|(dir, _)| backlogd::backfill::store::refuse_existing(dir)) {
        return fail(e.to_string());
    }
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
    if let Some((dir, stream_position)) = store {
        match backlogd::backfill::store::write(dir, &state, &source, stream_position) {
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

/// `backlogd repair`: exit 0 when the log opens as it is (or was just repaired), 1 on damage the
/// daemon refuses or on any error.
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

/// The first token of a tokens file (one a line, `#` comments), or `None` without a file.
fn first_token(path: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    path.map(backlogd::server::read_tokens)
        .transpose()
        .map(|tokens| tokens.and_then(|t| t.into_iter().next()))
}

/// `--label NAME=VALUE`.
/// `backlogd import`: the events to `out` (whole or not at all) or stdout; the summary and the bad
/// rows to stderr.
fn import(
    mapping: &Path,
    cases: &Path,
    employees: Option<&Path>,
    out: Option<&Path>,
    as_of: jiff::Timestamp,
    quiet: bool,
) -> ExitCode {
    let result = backlogd::import::read_mapping(mapping).and_then(|mapping| match out {
        Some(path) => {
            let partial = path.with_extension("partial");
            let file =
                std::fs::File::create(&partial).map_err(backlogd::import::ImportError::Write)?;
            let summary = backlogd::import::run(
                &mapping,
                cases,
                employees,
                as_of,
                !quiet,
                std::io::BufWriter::new(file),
            )?;
            std::fs::rename(&partial, path).map_err(backlogd::import::ImportError::Write)?;
            Ok(summary)
        }
        None => backlogd::import::run(
            &mapping,
            cases,
            employees,
            as_of,
            !quiet,
            std::io::BufWriter::new(std::io::stdout().lock()),
        ),
    });
    match result {
        Ok(summary) => {
            for line in &summary.bad_rows {
                eprintln!("backlogd import: skipped {line}");
            }
            eprintln!(
                "backlogd import: {} cases and {} employees read, {} rows skipped, {} events written",
                summary.cases,
                summary.employees,
                summary.bad_rows.len(),
                summary.events
            );
            if summary.bad_rows.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("backlogd import: {e}");
            ExitCode::FAILURE
        }
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

fn label_filter(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{text:?}: expected NAME=VALUE, e.g. source=data"))
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
