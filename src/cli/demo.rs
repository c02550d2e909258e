//! `backlogd demo`: the daemon on the built-in configuration with a temporary store seeded, as
//! `backlogd backfill --store` does, with the `taskforce` scenario's history (about two years,
//! ending a minute ago: the daily history and the report have every day of it), then fed a small
//! live stream (new applications every second, a decision now and then) so the gauges move while
//! you watch. Ctrl-C stops it and removes the temporary store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use backlogd::simulate::post::Poster;
use backlogd::simulate::{Options, Scenario, generate, time::rfc3339};

/// Runs the daemon with a temporary store, replays the taskforce scenario's history into it,
/// then keeps emitting live events, and prints the URLs to look at.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the daemon listens.
    #[arg(long, default_value = "127.0.0.1:9723")]
    pub listen: std::net::SocketAddr,
    /// Seed of the scenario.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scale of the scenario (1.0 = a stock of about 15,000 cases and 250 new hires).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// New live applications per second after the history.
    #[arg(long, default_value_t = 2)]
    pub live_per_second: u32,
}

pub fn run(args: Args) -> ExitCode {
    let source = backlogd::config::ConfigSource::inline(include_str!("../../config/backlogd.toml"));
    let mut config = match source.load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("backlogd demo: the built-in configuration is invalid: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = store_path();
    config.server.listen = args.listen;
    config.store.path = store.clone();
    // A demo store is thrown away: skip fdatasync.
    config.store.durability = backlogd::config::Durability::None;
    backlogd::daemon::init_logging(&config);
    let url = format!("http://{}", args.listen);
    println!("backlogd demo: store {} (removed on exit)", store.display());
    println!("  metrics:     {url}/metrics");
    println!("  overdue:     {url}/v1/cases/overdue?limit=10");
    println!("  readiness:   {url}/readyz");
    println!("  report:      {url}/report  (the daily history of the two years)");
    println!(
        "  Prometheus:  scrape {} with config/prometheus/backlogd-rules.yml; dashboards in dashboards/",
        args.listen
    );
    let _ = std::fs::remove_dir_all(&store);
    if let Err(e) = seed(&config, &source, &args) {
        eprintln!("backlogd demo: seeding the store failed: {e:#}");
        let _ = std::fs::remove_dir_all(&store);
        return ExitCode::FAILURE;
    }
    let feeder_url = url.clone();
    std::thread::spawn(move || {
        if let Err(e) = feed(&feeder_url, &args) {
            eprintln!("backlogd demo: feeding events failed: {e:#}");
        }
    });
    // Only the store, listen address and durability differ from `source`: not core settings.
    let result = backlogd::daemon::run(config, source, None);
    let _ = std::fs::remove_dir_all(&store);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backlogd demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Writes the store the daemon starts from: the scenario's history applied at its own times,
/// through a temporary NDJSON file, as `backlogd backfill --store` does.
fn seed(
    config: &backlogd::config::Config,
    source: &backlogd::config::ConfigSource,
    args: &Args,
) -> anyhow::Result<()> {
    use std::io::Write;
    let started = std::time::Instant::now();
    let scenario = Scenario::resolve("taskforce")?;
    let options = Options {
        seed: args.seed,
        to: Some(now_seconds() - 60),
        scale: args.scale,
        ..Options::default()
    };
    let mut file_name = config.store.path.as_os_str().to_owned();
    file_name.push(".history.ndjson");
    let file = PathBuf::from(file_name);
    let result = (|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for event in generate(&scenario, &options)? {
            out.write_all(event.line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        drop(out);
        let backfill = backlogd::backfill::Options {
            files: vec![file.clone()],
            step: jiff::SignedDuration::from_hours(1),
            from: None,
            to: None,
            max_samples: backlogd::backfill::DEFAULT_MAX_SAMPLES,
            labels: Vec::new(),
            not_after: Some(jiff::Timestamp::now()),
            progress: false,
        };
        let (summary, state) =
            backlogd::backfill::run_to_state(config, &backfill, None::<std::io::Sink>)?;
        let written = backlogd::backfill::store::write(&config.store.path, &state, source, None)?;
        println!(
            "backlogd demo: history seeded: {} events, {} days, {} open cases, in {:.1} s; live events follow",
            summary.applied,
            written.history_days,
            written.open_cases,
            started.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    })();
    let _ = std::fs::remove_file(&file);
    result
}

/// Posts the live stream until the process ends.
fn feed(url: &str, args: &Args) -> anyhow::Result<()> {
    let poster = Poster::new(backlogd::client::Client::new(url, None, None)?);
    let mut body = format!(
        "{{\"id\":\"demo-live-officer\",\"type\":\"employee.joined\",\"time\":\"{}\",\"data\":{{\"employee\":\"demo-officer\",\"role\":\"decision_officer\",\"experienced\":true}}}}\n",
        rfc3339(now_seconds())
    );
    let mut registered = 0u64;
    let mut decided = 0u64;
    loop {
        let time = rfc3339(now_seconds());
        for _ in 0..args.live_per_second {
            body.push_str(&format!(
                "{{\"id\":\"demo-live-r{registered}\",\"type\":\"case.registered\",\"time\":\"{time}\",\"data\":{{\"case\":\"demo-live-{registered}\",\"track\":\"asylum\",\"location\":\"ter-apel\"}}}}\n"
            ));
            registered += 1;
        }
        // Decide a little less than comes in: the live backlog grows slowly, as it did.
        if decided + 1 < registered && !registered.is_multiple_of(3) {
            body.push_str(&format!(
                "{{\"id\":\"demo-live-d{decided}\",\"type\":\"case.decided\",\"time\":\"{time}\",\"data\":{{\"case\":\"demo-live-{decided}\",\"outcome\":\"granted\",\"decided_by\":\"demo-officer\"}}}}\n"
            ));
            decided += 1;
        }
        let answer = poster.post(std::mem::take(&mut body))?;
        for r in &answer.rejected {
            eprintln!(
                "live event rejected {}: {}: {}",
                r.id.as_deref().unwrap_or("(no id)"),
                r.reason,
                r.message
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The temporary store of this demo process.
fn store_path() -> PathBuf {
    std::env::temp_dir().join(format!("backlogd-demo-{}", std::process::id()))
}
