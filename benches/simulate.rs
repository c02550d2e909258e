//! Figures for `backlogd simulate`: how long the `scale` scenario takes to generate 1,000,000
//! events (`--cases 1000000 --employees 5000`), as JSON lines written to a sink, and the whole
//! nominal `taskforce` history.
//!
//! `cargo bench --bench simulate` prints the full figures. Under `cargo test` (no `--bench`
//! argument) it runs a small size so the code stays exercised without timing anything meaningful.

use std::io::Write;
use std::time::Instant;

use backlogd::simulate::{Options, Scenario, generate};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let events: usize = if full { 1_000_000 } else { 20_000 };

    let scale = Scenario::builtin("scale").expect("built-in scenario");
    let options = Options {
        cases: Some(1_000_000),
        employees: Some(5_000),
        ..Options::default()
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 16, std::io::sink());
    let began = Instant::now();
    let mut bytes = 0usize;
    let mut count = 0usize;
    for event in generate(&scale, &options)
        .expect("valid options")
        .take(events)
    {
        sink.write_all(event.line.as_bytes()).unwrap();
        sink.write_all(b"\n").unwrap();
        bytes += event.line.len() + 1;
        count += 1;
    }
    sink.flush().unwrap();
    let elapsed = began.elapsed();
    println!(
        "simulate scale (--cases 1000000 --employees 5000): {count} events, {:.1} MB of NDJSON in {:.2} s ({:.0} events/s)",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );

    let taskforce = Scenario::builtin("taskforce").expect("built-in scenario");
    let options = Options {
        scale: if full { 1.0 } else { 0.02 },
        ..Options::default()
    };
    let began = Instant::now();
    let count = generate(&taskforce, &options)
        .expect("valid options")
        .count();
    let elapsed = began.elapsed();
    println!(
        "simulate taskforce (730 days, scale {}): {count} events in {:.2} s ({:.0} events/s)",
        options.scale,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
}
