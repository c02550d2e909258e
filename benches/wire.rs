//! Figures for the event parser: `wire::parse_event` on the lines of the `taskforce` scenario.
//!
//! `cargo bench --bench wire -- --bench` parses 1,000,000 lines (three passes, the median
//! printed). Under `cargo test` it parses a small smoke size, checking only that every line parses.

use std::time::Instant;

use backlogd::simulate::{Options, Scenario, generate};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let count = if full { 1_000_000 } else { 20_000 };
    let scenario = Scenario::builtin("taskforce").expect("a shipped scenario");
    let options = Options {
        seed: 7,
        ..Options::default()
    };
    let lines: Vec<String> = generate(&scenario, &options)
        .expect("the shipped options fit")
        .take(count)
        .map(|event| event.line)
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut rates = Vec::new();
    for _ in 0..if full { 3 } else { 1 } {
        let began = Instant::now();
        for line in &lines {
            // A shipped scenario writes only valid events.
            std::hint::black_box(backlogd::wire::parse_event(line).expect("a valid event"));
        }
        rates.push(lines.len() as f64 / began.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "wire::parse_event: {} lines ({:.0} bytes each), median of {}: {:.0} events/s",
        lines.len(),
        bytes as f64 / lines.len() as f64,
        rates.len(),
        rates[rates.len() / 2]
    );
}
