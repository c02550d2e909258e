//! Not a fuzz target: writes the seed corpora of the fuzz targets from simulated events, then exits
//! (it has libFuzzer's shape only so that `cargo fuzz build` builds it with the targets).
//!
//! `BACKLOGD_FUZZ_SEEDS=DIR make_seeds` runs `backlogd simulate --scenario taskforce --seed 1
//! --scale 0.002 --out DIR/simulated.ndjson` (in-process, through the command's own entry point; or
//! reads the NDJSON file named by `BACKLOGD_FUZZ_EVENTS` instead) and writes DIR/<target>/<name> for
//! every target: event lines and batches of them, real snapshots of states built from them, and a
//! real log segment holding them. scripts/fuzz runs it from the repository root (the scenario is
//! config/scenarios/taskforce.toml there).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use backlogd::core::State;
use backlogd::core::time::to_nanos_saturating;
use backlogd::store::log::{Durability, EventLog, LogPosition};
use backlogd::store::storage::Storage;
use backlogd::store::{encode_record, encode_settings};
use backlogd_fuzz::mem_storage::MemStorage;
use backlogd_fuzz::{EXAMPLE_EVENTS, SHIPPED_CONFIG, shipped_settings};
use libfuzzer_sys::fuzz_target;

/// A v2 snapshot kept by the core's tests (an older format the decoder still reads).
const SNAPSHOT_V2: &[u8] = include_bytes!("../../crates/backlogd-core/src/testdata/snapshot-v2.bin");

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The state after applying `lines` (each at its own time, as a live daemon would).
fn state_of(lines: &[&str]) -> State {
    let mut state = State::new(shipped_settings());
    for line in lines {
        if let Ok(event) = backlogd::wire::parse_event(line) {
            let now = state.now().max(to_nanos_saturating(event.time));
            let _ = state.apply(&event, now);
        }
    }
    state
}

/// A log segment holding a settings record and `lines` as event records, as the daemon writes it.
fn segment_of(lines: &[&str]) -> Vec<u8> {
    let storage = MemStorage::new();
    let dir = Path::new("/seeds/log");
    let shared: Arc<dyn Storage> = Arc::new(storage.clone());
    let mut log = EventLog::open_with(shared, dir, LogPosition::default(), 1 << 30, &mut |_, _| {
        Ok(())
    })
    .expect("a new log opens");
    let source = backlogd::config::ConfigSource::inline(SHIPPED_CONFIG).to_bytes();
    log.append(&encode_settings(0, &source)).expect("append");
    for line in lines {
        let arrival = backlogd::wire::parse_event(line)
            .map(|e| to_nanos_saturating(e.time))
            .unwrap_or(0);
        log.append(&encode_record(arrival, line.as_bytes()))
            .expect("append");
    }
    log.commit(Durability::None).expect("commit");
    drop(log);
    let path: PathBuf = dir.join(backlogd::store::log::segment_file_name(1));
    storage.get(&path).expect("segment 1 exists")
}

/// `backlogd simulate --scenario taskforce --seed 1 --scale 0.002 --out DIR/simulated.ndjson`, run
/// in-process through the command's own entry point (about 2,000 events of every type).
fn simulate(out: &Path) -> PathBuf {
    use backlogd::simulate::cli::{SimulateArgs, run};
    let path = out.join("simulated.ndjson");
    std::fs::create_dir_all(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let args = SimulateArgs {
        scenario: "taskforce".into(),
        seed: 1,
        from: None,
        to: None,
        after: None,
        out: Some(path.clone()),
        url: None,
        token_file: None,
        rate: None,
        batch: 1000,
        cases: None,
        employees: None,
        scale: 0.002,
        stats: false,
    };
    if run(args) != std::process::ExitCode::SUCCESS {
        panic!("backlogd simulate failed");
    }
    path
}

fn make_seeds() {
    let out = PathBuf::from(std::env::var_os("BACKLOGD_FUZZ_SEEDS").expect("BACKLOGD_FUZZ_SEEDS"));
    let events_path = match std::env::var_os("BACKLOGD_FUZZ_EVENTS") {
        Some(path) => PathBuf::from(path),
        None => simulate(&out),
    };
    let text = std::fs::read_to_string(&events_path)
        .unwrap_or_else(|e| panic!("{}: {e}", events_path.display()));
    let simulated: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        simulated.len() >= 100,
        "expected a few hundred simulated events"
    );
    let example: Vec<&str> = EXAMPLE_EVENTS.lines().collect();

    // event_validation: one event a file. Every example line, and simulated lines spread over the
    // stream with at least a few of every event type.
    let mut per_type = std::collections::BTreeMap::<String, usize>::new();
    let mut count = 0;
    for (n, line) in simulated.iter().enumerate() {
        let kind = backlogd::wire::parse_event(line)
            .map(|e| e.kind.event_type().as_str().to_owned())
            .unwrap_or_default();
        let seen = per_type.entry(kind).or_default();
        if *seen < 8 || n % 20 == 0 {
            *seen += 1;
            count += 1;
            write(
                &out,
                "event_validation",
                &format!("sim-{n:05}"),
                line.as_bytes(),
            );
        }
    }
    for (n, line) in example.iter().enumerate() {
        write(
            &out,
            "event_validation",
            &format!("example-{n:03}"),
            line.as_bytes(),
        );
    }

    // body_parser: the control byte picks the format (byte % 3) and max_events (byte / 3 % 8 + 1);
    // 21, 22 and 23 are NDJSON, array and single with a limit of 8.
    for (n, chunk) in simulated.chunks(5).take(40).enumerate() {
        let mut ndjson = vec![21u8];
        ndjson.extend_from_slice(chunk.join("\n").as_bytes());
        write(&out, "body_parser", &format!("ndjson-{n:03}"), &ndjson);
        let mut array = vec![22u8];
        array.extend_from_slice(format!("[{}]", chunk.join(",")).as_bytes());
        write(&out, "body_parser", &format!("array-{n:03}"), &array);
        let mut single = vec![23u8];
        single.extend_from_slice(chunk[0].as_bytes());
        write(&out, "body_parser", &format!("single-{n:03}"), &single);
    }
    // Over the limit (8 events, limit 2: control 3), with CRLF and blank lines.
    let mut over = vec![3u8];
    over.extend_from_slice(simulated[..8].join("\r\n\n").as_bytes());
    write(&out, "body_parser", "ndjson-over-limit", &over);

    // event_sequence: runs of consecutive simulated events with snapshot and check steps, and the
    // example stream.
    for (n, chunk) in simulated.chunks(60).take(12).enumerate() {
        let mut seq = String::new();
        for (i, line) in chunk.iter().enumerate() {
            seq.push_str(line);
            seq.push('\n');
            if i % 20 == 19 {
                seq.push_str("snapshot\n+1440\ncheck\n");
            }
        }
        write(
            &out,
            "event_sequence",
            &format!("sim-{n:03}"),
            seq.as_bytes(),
        );
    }
    // And inputs of the other form (bytes decoded with `arbitrary`), from a fixed xorshift stream.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for n in 0..8 {
        let mut bytes: Vec<u8> = (0..256 << (n % 4))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        if bytes[0] == b'{' {
            bytes[0] = 0;
        }
        write(&out, "event_sequence", &format!("arbitrary-{n}"), &bytes);
    }
    let mut seq = example.join("\n");
    seq.push_str("\nsnapshot\n+43200\ncheck\n");
    write(&out, "event_sequence", "example", seq.as_bytes());

    // snapshot_decode: real snapshots of states built from prefixes of the stream, of the example
    // stream, of an empty state, and the older v2 format.
    for k in [0, 10, 60, 200, 500, simulated.len()] {
        let k = k.min(simulated.len());
        let bytes = state_of(&simulated[..k]).encode_snapshot();
        write(&out, "snapshot_decode", &format!("sim-{k:05}"), &bytes);
    }
    write(
        &out,
        "snapshot_decode",
        "example",
        &state_of(&example).encode_snapshot(),
    );
    write(&out, "snapshot_decode", "v2", SNAPSHOT_V2);

    // log_recovery: three control bytes (see the target) and a real segment.
    let segment = segment_of(&simulated[..40]);
    let small = segment_of(&simulated[..3]);
    let cases: [(&str, [u8; 3], &[u8]); 9] = [
        ("whole", [0x00, 0, 0], &segment),
        ("whole-append", [0x20, 0, 0], &segment),
        ("after-earlier", [0x08, 4, 0], &segment),
        ("after-gap", [0x1c, 4, 7], &small),
        ("small-replay-mid", [0x00, 5, 8], &small),
        ("no-header", [0x01, 0, 0], &segment[8..]),
        ("torn-tail", [0x00, 0, 0], &segment[..segment.len() - 37]),
        ("torn-header", [0x03, 0, 5], &[0u8; 24]),
        ("framed", [0x02, 0, 0], b"\x05hello\x03abc\x00garbage"),
    ];
    for (name, control, content) in cases {
        let mut bytes = control.to_vec();
        bytes.extend_from_slice(content);
        write(&out, "log_recovery", name, &bytes);
    }
    eprintln!(
        "make_seeds: {count} + {} event lines, {} body, {} sequence, 8 snapshot and 9 log seeds in {}",
        example.len(),
        40 * 3 + 1,
        13 + 8,
        out.display()
    );
}

/// Ends the process after the seeds are written (libFuzzer would otherwise start fuzzing).
fn exit() {
    std::process::exit(0);
}

fuzz_target!(
    init: {
        make_seeds();
        exit();
    },
    |_data: &[u8]| {}
);
