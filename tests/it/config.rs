//! `backlogd check-config`: the shipped file is valid; a misspelt key is named, with exit 1.

use crate::harness::{backlogd, shipped_config};

#[test]
fn shipped_config_is_ok() {
    let path = shipped_config();
    let output = backlogd(&["check-config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
}

#[test]
fn misspelt_key_is_named_and_fails() {
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    assert!(shipped.contains("\nmax_body_bytes = "));
    let misspelt = shipped.replace("\nmax_body_bytes = ", "\nmax_body_byte = ");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backlogd.toml");
    std::fs::write(&path, misspelt).unwrap();

    let output = backlogd(&["check-config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let first = stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with(&format!("{}:", path.display())) && first.contains("max_body_byte"),
        "expected `FILE:LINE: key: problem` naming server.max_body_byte, got:\n{stderr}"
    );
    // The line is the misspelt key's own.
    let line: usize = first[path.display().to_string().len() + 1..]
        .split(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line in {first:?}"));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .nth(line - 1)
            .unwrap()
            .starts_with("max_body_byte ="),
        "{first}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("ok"),
        "a bad file must not be reported ok"
    );
}

/// The `backlogd_threshold` names the shipped alert and recording rules read.
fn thresholds_the_rules_read() -> std::collections::BTreeSet<String> {
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/prometheus/backlogd-rules.yml"),
    )
    .unwrap();
    rules
        .split("backlogd_threshold{name=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect()
}

/// A config with nothing but one track arms every shipped alert (issue 22): it exports every
/// threshold the shipped rules read, with the documented defaults; a value in `[thresholds]`
/// replaces a default. (Before, such a config exported 4 of the 14, and 10 alerts could never
/// fire.)
#[test]
fn a_one_track_config_exports_every_threshold_the_shipped_rules_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("one-track.toml");
    std::fs::write(
        &config,
        "[tracks.permits]\ndecision_period = \"P8W\"\n\n[thresholds]\nmax_overdue_cases = 7\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let daemon = crate::harness::Daemon::start_with_config(&config, &store, &[]);
    let metrics = daemon.metrics();
    let exported: std::collections::BTreeMap<String, f64> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("backlogd_threshold{name=\""))
        .filter_map(|rest| {
            let (name, value) = rest.split_once("\"} ")?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect();
    let read = thresholds_the_rules_read();
    assert!(read.len() >= 14, "{read:?}");
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| !exported.contains_key(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "not exported: {missing:?}\n{exported:?}"
    );
    // The file's value replaces the default; the defaults are those docs/configuration.md gives.
    assert_eq!(exported["max_overdue_cases"], 7.0);
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    // The four exported from other keys (workforce, mentoring, quality) are documented there.
    const FROM_OTHER_KEYS: [&str; 4] = [
        "max_open_cases",
        "max_mentees",
        "min_pass_ratio",
        "max_audit_gap_seconds",
    ];
    for (name, value) in &exported {
        if name == "max_overdue_cases" || FROM_OTHER_KEYS.contains(&name.as_str()) {
            continue;
        }
        let row = docs
            .lines()
            .find(|line| line.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("docs/configuration.md has no row for {name}"));
        let documented = row.split('|').nth(2).unwrap().trim().trim_matches('`');
        let documented: f64 = documented
            .replace([',', ' '], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}: default {documented:?}"));
        assert_eq!(documented, *value, "{name}");
    }
}
