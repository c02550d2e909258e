//! `backlogd repair` against the real binary: a store whose newest log segment has a zeroed frame
//! followed by valid frames (an unacknowledged tail written back out of order) makes the daemon
//! refuse to start naming file, offset and the repair command; `repair` reports the damage,
//! refuses to cut anywhere else or while the store is open, cuts exactly there, and the log then
//! opens with every record before the damage.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use backlogd::store::encode_record;
use backlogd::store::log::{Durability, EventLog, LogPosition};

const BINARY: &str = env!("CARGO_BIN_EXE_backlogd");
const SEGMENT_BYTES: u64 = 2048;

fn event(n: usize) -> Vec<u8> {
    let json = serde_json::json!({
        "id": format!("repair-{n}"),
        "type": "case.registered",
        "time": "2026-03-02T09:00:00+01:00",
        "data": {"case": format!("repair-case-{n}"), "track": "asylum", "location": "Ter Apel"},
    })
    .to_string();
    encode_record(1_772_438_400_000_000_000, json.as_bytes())
}

fn open_log(dir: &Path) -> (EventLog, Vec<(LogPosition, Vec<u8>)>) {
    let mut records = Vec::new();
    let log = EventLog::open(dir, LogPosition::default(), SEGMENT_BYTES, &mut |p, r| {
        records.push((p, r.to_vec()));
        Ok(())
    })
    .expect("the log opens");
    (log, records)
}

fn repair(args: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("repair")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the backlogd binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `backlogd run` on the shipped configuration with the store in `store`; it must exit (refuse)
/// within a bounded time. Returns its stderr.
fn run_expecting_refusal(store: &Path) -> String {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/backlogd.toml");
    let stderr_path = store.with_extension("stderr");
    let mut child = Command::new(BINARY)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("BACKLOGD__SERVER__LISTEN", "127.0.0.1:0")
        .env("BACKLOGD__STORE__PATH", store)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("the backlogd binary starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for backlogd") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("backlogd kept running on a damaged store");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    std::fs::read_to_string(&stderr_path).unwrap_or_default()
}

#[test]
fn repair_reports_and_cuts_a_garbage_tail_of_the_newest_segment() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = tmp.path().join("store");
    let log_dir = store.join("log");
    let (mut log, _) = open_log(&log_dir);
    let mut positions = Vec::new();
    for n in 0..60 {
        positions.push(log.append(&event(n)).expect("append"));
        if n % 5 == 4 {
            log.commit(Durability::Fsync).expect("commit");
        }
    }
    drop(log);
    let last = positions.last().expect("records").segment;
    let in_last: Vec<LogPosition> = positions
        .iter()
        .copied()
        .filter(|p| p.segment == last)
        .collect();
    assert!(in_last.len() >= 3 && last > 1, "{positions:?}");
    let damaged = in_last[1];
    let before = positions.iter().filter(|&&p| p < damaged).count();
    let file = format!("{last:020}.log");
    let segment: PathBuf = log_dir.join(&file);
    let mut bytes = std::fs::read(&segment).expect("segment");
    bytes[damaged.offset as usize..in_last[2].offset as usize].fill(0);
    std::fs::write(&segment, &bytes).expect("zeroed frame written");
    let spec = format!("{file}:{}", damaged.offset);

    // The daemon refuses, naming file, offset and the command.
    let stderr = run_expecting_refusal(&store);
    assert!(
        stderr.contains(&format!("{file} at offset {}", damaged.offset)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "backlogd repair --store {} --truncate-at {spec}",
            log_dir.display()
        )),
        "{stderr}"
    );

    // The report.
    let store_arg = store.to_str().expect("utf-8 path");
    let report = repair(&["--store", store_arg]);
    let stdout = text(&report.stdout);
    assert_eq!(
        report.status.code(),
        Some(1),
        "{stdout}{}",
        text(&report.stderr)
    );
    assert!(
        stdout.contains(&format!("damage: {file} at offset {}", damaged.offset)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{before} valid record(s)")),
        "{stdout}"
    );
    let after = positions.len() - before - 1;
    assert!(
        stdout.contains(&format!("{after} valid-looking record(s)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("--truncate-at {spec}")),
        "{stdout}"
    );

    // Refused elsewhere than the damage, and for a malformed argument.
    for wrong in [
        format!("{file}:{}", damaged.offset + 1),
        format!("{:020}.log:{}", last - 1, damaged.offset),
        "nonsense".to_string(),
    ] {
        let out = repair(&["--store", store_arg, "--truncate-at", &wrong]);
        assert_eq!(out.status.code(), Some(1), "{wrong}: {}", text(&out.stdout));
    }
    assert_eq!(
        std::fs::read(&segment).expect("segment"),
        bytes,
        "nothing cut"
    );

    // Refused while a daemon (here: this process) has the store open.
    let other = tmp.path().join("other");
    let (held, _) = open_log(&other.join("log"));
    let out = repair(&["--store", other.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("locked"),
        "{}",
        text(&out.stderr)
    );
    drop(held);

    // Refused when the newest snapshot lies beyond the damage (the log was committed past it).
    let snapshots = store.join("snapshots.sqlite");
    let beyond = backlogd::store::snapshot::SnapshotMeta {
        position: LogPosition {
            segment: last,
            offset: damaged.offset + 1,
        },
        taken_at: 0,
    };
    backlogd::store::snapshot::save(&snapshots, b"state", beyond, 0, b"", None)
        .expect("snapshot saved");
    let out = repair(&["--store", store_arg, "--truncate-at", &spec]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("newest snapshot"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&segment).expect("segment"),
        bytes,
        "nothing cut"
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", snapshots.display()));
    }

    // The cut.
    let out = repair(&["--store", store_arg, "--truncate-at", &spec]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("at offset {}", damaged.offset))
            && stdout.contains(&format!("{after} valid-looking record(s)")),
        "{stdout}"
    );
    let (log, records) = open_log(&log_dir);
    assert_eq!(records.len(), before);
    for (n, (position, record)) in records.iter().enumerate() {
        assert_eq!((*position, record), (positions[n], &event(n)));
    }
    assert_eq!(log.end(), damaged);
    drop(log);
    let out = repair(&["--store", store_arg]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("no damage"));
}
