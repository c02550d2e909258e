//! End-to-end load on the real daemon: C concurrent senders post NDJSON batches of B events of the
//! `scale` scenario over loopback to `backlogd run` with `durability = "fsync"`, while a scraper
//! fetches `/metrics` every 100 ms. Then the restart figures: time to ready after a `kill -9` right
//! after the burst, and after a clean stop.
//!
//! ```text
//! cargo bench --bench load -- [--senders 4] [--batch 5000] [--cases 1000000] [--employees 5000]
//! ```
//!
//! It prints one `name = value` line per figure (docs/benchmarks.md quotes them). Under `cargo test`
//! (no `--bench` argument) it runs a smoke size, so the tool stays working without timing anything.
//!
//! The physical limit is measured on the same disk in the same run: the same bodies appended to a
//! file with one `fdatasync` per batch, which is the least any durable ingest can do.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::{Duration, Instant};

use backlogd::send::Poster;
use backlogd::simulate::{self, Options, Scenario};

const BINARY: &str = env!("CARGO_BIN_EXE_backlogd");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/backlogd.toml");
const PATIENCE: Duration = Duration::from_secs(120);

struct Args {
    senders: usize,
    batch: usize,
    cases: u64,
    employees: u64,
    scrape_every: Duration,
    /// Open cases, employees (per-employee series on) and mentors of the scrape-at-scale phase.
    scale_open: usize,
    small_open: usize,
    scale_employees: usize,
    scale_mentors: usize,
    scrapes: usize,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let full = argv.iter().any(|a| a == "--bench");
    let value = |flag: &str, default: u64| -> u64 {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{flag} takes a number"))
            })
            .unwrap_or(default)
    };
    Args {
        senders: value("--senders", 4) as usize,
        batch: value("--batch", if full { 5000 } else { 500 }) as usize,
        cases: value("--cases", if full { 1_000_000 } else { 5_000 }),
        employees: value("--employees", if full { 5_000 } else { 25 }),
        scrape_every: Duration::from_millis(value("--scrape-ms", 100)),
        scale_open: value("--open", if full { 1_000_000 } else { 20_000 }) as usize,
        small_open: value("--small-open", if full { 10_000 } else { 200 }) as usize,
        scale_employees: value("--scale-employees", if full { 5_000 } else { 100 }) as usize,
        scale_mentors: value("--scale-mentors", if full { 500 } else { 10 }) as usize,
        scrapes: value("--scrapes", if full { 300 } else { 20 }) as usize,
    }
}

fn main() {
    let args = args();
    let (epochs, events) = scale_events(&args);
    let bodies: Vec<&String> = epochs
        .iter()
        .flat_map(|epoch| epoch.streams.iter().flatten().chain(&epoch.departures))
        .collect();
    let bytes: usize = bodies.iter().map(|body| body.len()).sum();
    println!(
        "workload = scale scenario, {} events in {} batches of {} ({:.0} B/event), {} senders",
        events,
        bodies.len(),
        args.batch,
        bytes as f64 / events as f64,
        args.senders
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("store");

    let physical = physical_limit(dir.path(), &bodies);
    println!(
        "physical_limit_events_per_second = {:.0}  (append + fdatasync per batch, same disk)",
        events as f64 / physical.as_secs_f64()
    );

    let daemon = Daemon::start(&store);
    let rss_before = daemon.status_kib("VmRSS:");
    let cpu_before = daemon.cpu_seconds();
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        let addr = daemon.addr;
        let every = args.scrape_every;
        std::thread::spawn(move || scrape_loop(addr, every, &stop))
    };

    let began = Instant::now();
    let (request_latencies, rejected) = send_all(&daemon.url(), &epochs);
    let elapsed = began.elapsed();
    let cpu = daemon.cpu_seconds() - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let scrape_latencies = scraper.join().expect("the scraper does not panic");
    let peak_kib = daemon.status_kib("VmHWM:");
    let open = daemon.metric_sum("backlogd_cases_open");

    println!(
        "ingest_events_per_second = {:.0}",
        events as f64 / elapsed.as_secs_f64()
    );
    println!(
        "ingest_fraction_of_physical_limit = {:.2}",
        physical.as_secs_f64() / elapsed.as_secs_f64()
    );
    println!(
        "daemon_cpu_seconds_per_million_events = {:.2}",
        cpu * 1e6 / events as f64
    );
    println!("rejected_events = {rejected}");
    assert_eq!(rejected, 0, "the senders keep each case's events in order");
    print_percentiles("request_latency", &request_latencies);
    print_percentiles("scrape_latency", &scrape_latencies);
    println!("scrapes = {}", scrape_latencies.len());
    println!("open_cases = {open:.0}");
    println!(
        "peak_rss_mib = {:.1}  (before the load: {:.1})",
        peak_kib as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    println!(
        "rss_bytes_per_open_case = {:.0}  (whole process, remembered ids included)",
        (daemon.status_kib("VmRSS:") - rss_before) as f64 * 1024.0 / open.max(1.0)
    );

    // Restart right after the burst, without letting the daemon snapshot or stop cleanly.
    daemon.kill9();
    let (mut daemon, ready) = Daemon::start_timed(&store);
    println!("ready_after_kill9_seconds = {:.3}", ready.as_secs_f64());
    let recovered = daemon.metric_sum("backlogd_cases_open");
    assert_eq!(
        recovered, open,
        "the restarted daemon shows the acknowledged state"
    );
    daemon.terminate();
    let (mut daemon, ready) = Daemon::start_timed(&store);
    println!(
        "ready_after_clean_stop_seconds = {:.3}",
        ready.as_secs_f64()
    );
    daemon.terminate();

    // /metrics at a given size, and at a small one, with per-employee series.
    let small = args.small_open.max(1);
    let small_p = scrape_at_scale(&dir.path().join("small"), small, &args);
    let large_p = scrape_at_scale(&dir.path().join("large"), args.scale_open, &args);
    println!(
        "scrape_p99_ratio_{}_to_{} = {:.2}",
        args.scale_open,
        small,
        large_p.as_secs_f64() / small_p.as_secs_f64()
    );
}

/// A fresh daemon holding `open` open cases, all assigned to `args.scale_employees` employees of
/// whom `args.scale_mentors` mentor a newcomer each; prints the scrape latency over `args.scrapes`
/// scrapes, the memory per open case, and the restart figures at that size. Returns the scrape p99.
fn scrape_at_scale(store: &Path, open: usize, args: &Args) -> Duration {
    let daemon = Daemon::start(store);
    let rss_before = daemon.status_kib("VmRSS:");
    let time = jiff::Timestamp::now();
    let year_ago = time - jiff::SignedDuration::from_hours(24 * 365);
    let employees = args.scale_employees.max(2);
    let mut lines = Vec::with_capacity(2 * open + employees);
    let event = |id: String, kind: &str, data: String| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","type":"{kind}","source":"load","time":"{time}","data":{data}}}"#
        )
    };
    for e in 0..employees {
        let newcomer = e >= employees - args.scale_mentors.min(employees / 2);
        lines.push(event(
            format!("join-{e}"),
            "employee.joined",
            format!(
                r#"{{"employee":"e{e}","role":"caseworker","experienced":{}}}"#,
                !newcomer
            ),
        ));
    }
    for m in 0..args.scale_mentors.min(employees / 2) {
        lines.push(event(
            format!("mentor-{m}"),
            "mentor.assigned",
            format!(r#"{{"mentor":"e{m}","mentee":"e{}"}}"#, employees - 1 - m),
        ));
    }
    let locations = ["north", "east", "south", "west", "centre", "island"];
    for c in 0..open {
        // Received over the past year: about half are overdue.
        let received = year_ago + jiff::SignedDuration::from_secs((c as i64 * 7919) % 31_536_000);
        lines.push(event(
            format!("reg-{c}"),
            "case.registered",
            format!(
                r#"{{"case":"C-{c:09}","track":"asylum","received_at":"{received}","location":"{}"}}"#,
                locations[c % locations.len()]
            ),
        ));
        lines.push(event(
            format!("asg-{c}"),
            "case.assigned",
            format!(r#"{{"case":"C-{c:09}","employee":"e{}"}}"#, c % employees),
        ));
    }
    let poster =
        Poster::new(backlogd::client::Client::new(&daemon.url(), None, None).expect("a client"));
    for chunk in lines.chunks(10_000) {
        let mut body = chunk.join("\n");
        body.push('\n');
        let answer = poster.post(body).expect("the daemon answers");
        assert!(
            answer.rejected.is_empty(),
            "synthetic events are valid: {:?}",
            answer.rejected.first().map(|r| &r.message)
        );
    }
    let shown = daemon.metric_sum("backlogd_cases_open");
    assert_eq!(shown as usize, open, "/metrics shows every open case");
    let rss = daemon.status_kib("VmRSS:").saturating_sub(rss_before) as f64 * 1024.0;
    let mut latencies = Vec::with_capacity(args.scrapes);
    let mut series = 0;
    let cpu_before = daemon.cpu_seconds();
    for _ in 0..args.scrapes {
        let began = Instant::now();
        let (status, body) = get(daemon.addr, "/metrics").expect("/metrics answers");
        latencies.push(began.elapsed());
        assert_eq!(status, 200);
        series = body.lines().filter(|l| !l.starts_with('#')).count();
        std::thread::sleep(Duration::from_millis(10));
    }
    let cpu = daemon.cpu_seconds() - cpu_before;
    let name = format!("at_{open}_open");
    println!(
        "{name}: employees = {employees}, mentors = {}, series = {series}, remembered ids = {}",
        args.scale_mentors,
        lines.len()
    );
    print_percentiles(&format!("{name}_scrape_latency"), &latencies);
    println!(
        "{name}_daemon_cpu_ms_per_scrape = {:.2}",
        cpu * 1000.0 / args.scrapes as f64
    );
    println!(
        "{name}_rss_bytes_per_open_case = {:.0}  (remembered ids included: {:.1} per case)",
        rss / open as f64,
        lines.len() as f64 / open as f64
    );
    daemon.kill9();
    let (mut daemon, ready) = Daemon::start_timed(store);
    println!(
        "{name}_ready_after_kill9_seconds = {:.3}",
        ready.as_secs_f64()
    );
    daemon.terminate();
    let mut sorted = latencies;
    sorted.sort_unstable();
    sorted[((sorted.len() - 1) as f64 * 0.99).round() as usize]
}

/// The events of one stretch of the history: a stream of NDJSON bodies per sender, then the
/// employees who left during it.
struct Epoch {
    streams: Vec<Vec<String>>,
    departures: Vec<String>,
}

/// The `scale` scenario ending now, cut into epochs for `args.senders` concurrent senders, and the
/// number of distinct events.
///
/// Senders run concurrently, so the events of one case all go through one sender, in order (each
/// case belongs to one sender by a hash of its id). Employees joining or mentored go to every
/// sender, ahead of the case events that follow them; the daemon applies the first copy and counts
/// the others as duplicates. An employee leaving must come after every event that names them, which
/// other senders may still be sending: departures wait for the end of their epoch, when every
/// sender has finished it.
fn scale_events(args: &Args) -> (Vec<Epoch>, usize) {
    let scenario = Scenario::builtin("scale").expect("scale is built in");
    let now = jiff::Timestamp::now().as_second();
    let options = Options {
        to: Some(now),
        cases: Some(args.cases),
        employees: Some(args.employees),
        ..Options::default()
    };
    let generator = simulate::generate(&scenario, &options).expect("valid options");
    let senders = args.senders.max(1);
    let epoch_events = (args.batch * senders * 8).max(1);
    let mut epochs = Vec::new();
    let mut bodies = Bodies::new(senders, args.batch);
    let mut departures = Bodies::new(1, args.batch);
    let mut events = 0;
    for line in generator.lines() {
        events += 1;
        if line.contains("\"type\":\"employee.left\"") {
            departures.push(0, &line);
        } else if let Some(case) = case_of(&line) {
            bodies.push(hash(case) % senders, &line);
        } else {
            (0..senders).for_each(|sender| bodies.push(sender, &line));
        }
        if events % epoch_events == 0 {
            epochs.push(Epoch {
                streams: bodies.finish(),
                departures: departures.finish().remove(0),
            });
        }
    }
    epochs.push(Epoch {
        streams: bodies.finish(),
        departures: departures.finish().remove(0),
    });
    (epochs, events)
}

/// NDJSON bodies of at most `batch` lines per sender.
struct Bodies {
    batch: usize,
    done: Vec<Vec<String>>,
    open: Vec<(String, usize)>,
}

impl Bodies {
    fn new(senders: usize, batch: usize) -> Bodies {
        Bodies {
            batch,
            done: vec![Vec::new(); senders],
            open: vec![(String::new(), 0); senders],
        }
    }

    fn push(&mut self, sender: usize, line: &str) {
        let (body, count) = &mut self.open[sender];
        body.push_str(line);
        body.push('\n');
        *count += 1;
        if *count == self.batch {
            self.done[sender].push(std::mem::take(body));
            *count = 0;
        }
    }

    /// Every sender's bodies so far, the last one possibly short; starts afresh.
    fn finish(&mut self) -> Vec<Vec<String>> {
        for (sender, (body, count)) in self.open.iter_mut().enumerate() {
            if *count > 0 {
                self.done[sender].push(std::mem::take(body));
                *count = 0;
            }
        }
        let senders = self.done.len();
        std::mem::replace(&mut self.done, vec![Vec::new(); senders])
    }
}

/// The case id of a simulated event line, if it names one.
fn case_of(line: &str) -> Option<&str> {
    let start = line.find("\"case\":\"")? + "\"case\":\"".len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

fn hash(text: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish() as usize
}

/// Appends every body to one file with an `fdatasync` after each: the floor under any durable
/// ingest of these batches on this disk.
fn physical_limit(dir: &Path, bodies: &[&String]) -> Duration {
    let path = dir.join("physical-limit.log");
    let mut file = std::fs::File::create(&path).expect("create the file");
    let began = Instant::now();
    for body in bodies {
        file.write_all(body.as_bytes()).expect("append");
        file.sync_data().expect("fdatasync");
    }
    let elapsed = began.elapsed();
    drop(file);
    let _ = std::fs::remove_file(path);
    elapsed
}

/// Posts each sender's stream from its own thread, in order, epoch by epoch; between epochs one
/// sender posts the departures. Returns each request's latency and the events the daemon rejected.
fn send_all(url: &str, epochs: &[Epoch]) -> (Vec<Duration>, u64) {
    let senders = epochs.first().map_or(1, |epoch| epoch.streams.len());
    let latencies = Mutex::new(Vec::new());
    let rejected = AtomicUsize::new(0);
    let barrier = Barrier::new(senders);
    std::thread::scope(|scope| {
        for sender in 0..senders {
            let (latencies, rejected, barrier) = (&latencies, &rejected, &barrier);
            scope.spawn(move || {
                let poster =
                    Poster::new(backlogd::client::Client::new(url, None, None).expect("a client"));
                let mut mine = Vec::new();
                let mut post = |body: &String| {
                    let began = Instant::now();
                    let answer = poster.post(body.clone()).expect("the daemon answers");
                    mine.push(began.elapsed());
                    if let Some(first) = answer.rejected.first() {
                        eprintln!("rejected: {}: {}", first.reason, first.message);
                    }
                    rejected.fetch_add(answer.rejected.len(), Ordering::Relaxed);
                };
                for epoch in epochs {
                    epoch.streams[sender].iter().for_each(&mut post);
                    if barrier.wait().is_leader() {
                        epoch.departures.iter().for_each(&mut post);
                    }
                    barrier.wait();
                }
                latencies.lock().expect("no sender panics").extend(mine);
            });
        }
    });
    (
        latencies.into_inner().expect("no sender panicked"),
        rejected.into_inner() as u64,
    )
}

fn scrape_loop(addr: SocketAddr, every: Duration, stop: &AtomicBool) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let (status, body) = get(addr, "/metrics").expect("/metrics answers");
        latencies.push(began.elapsed());
        assert_eq!(status, 200, "/metrics answers 200");
        assert!(body.contains("backlogd_"), "/metrics has the families");
        next += every;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        } else {
            next = Instant::now();
        }
    }
    latencies
}

fn print_percentiles(name: &str, latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{name}_ms = p50 {:.2}, p99 {:.2}, max {:.2}  ({} samples)",
        at(0.5),
        at(0.99),
        at(1.0),
        sorted.len()
    );
}

/// A plain HTTP/1.1 GET with `Connection: close`: (status, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Ok((status, body))
}

struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Daemon {
    fn start(store: &Path) -> Daemon {
        Daemon::start_timed(store).0
    }

    /// Starts `backlogd run` on the shipped configuration with the store at `store`, and waits
    /// for `/readyz`; returns the daemon and the time from spawn to ready.
    fn start_timed(store: &Path) -> (Daemon, Duration) {
        let began = Instant::now();
        let mut child = Command::new(BINARY)
            .args(["run", "--config", CONFIG])
            .env("BACKLOGD__SERVER__LISTEN", "127.0.0.1:0")
            .env("BACKLOGD__STORE__PATH", store)
            .env("BACKLOGD__STORE__DURABILITY", "fsync")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the backlogd binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Drains stderr for the daemon's life, so that the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.strip_prefix("backlogd listening on http://") {
                    let _ = tx.send(address.trim().to_owned());
                }
            }
        });
        let addr: SocketAddr = rx
            .recv_timeout(PATIENCE)
            .expect("backlogd prints its address")
            .parse()
            .expect("the address is IP:port");
        let daemon = Daemon { child, addr };
        while began.elapsed() < PATIENCE {
            if let Ok((200, _)) = get(addr, "/readyz") {
                return (daemon, began.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("backlogd was not ready within {PATIENCE:?}");
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The sum of every sample of `family` on `/metrics`.
    fn metric_sum(&self, family: &str) -> f64 {
        let (_, body) = get(self.addr, "/metrics").expect("/metrics answers");
        body.lines()
            .filter(|line| {
                line.strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// A `kB` figure of /proc/PID/status (VmRSS:, VmHWM:).
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// User + system CPU seconds of the daemon so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name and state.
        (ticks(11) + ticks(12)) / clock_ticks_per_second()
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}
