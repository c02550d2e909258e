//! The shipped systemd unit: `systemd-analyze verify` accepts it, and its exposure score from
//! `systemd-analyze security --offline=yes` is at most 1.5 (lower is safer; 10 is unprotected).

use std::process::Command;

fn unit_with_this_binary(dir: &std::path::Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/backlogd.service"
    ))
    .expect("systemd/backlogd.service exists");
    // verify checks that ExecStart's binary exists: point it at the binary cargo built.
    let unit = unit.replace("/usr/bin/backlogd", env!("CARGO_BIN_EXE_backlogd"));
    let path = dir.join("backlogd.service");
    std::fs::write(&path, unit).unwrap();
    path
}

fn systemd_analyze(args: &[&str]) -> (bool, String) {
    let output = Command::new("systemd-analyze").args(args).output().expect(
        "systemd-analyze not found: run ./scripts/test, which installs the Debian package systemd",
    );
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_this_binary(dir.path());
    let (ok, text) = systemd_analyze(&["verify", unit.to_str().unwrap()]);
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    assert!(
        !text.contains("Unknown key") && !text.contains("Invalid") && !text.contains("Failed"),
        "systemd-analyze verify complained:\n{text}"
    );
}

#[test]
fn unit_exposure_is_at_most_1_5() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_this_binary(dir.path());
    let (_, text) = systemd_analyze(&["security", "--offline=yes", unit.to_str().unwrap()]);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line in:\n{text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(score <= 1.5, "exposure {score} > 1.5:\n{text}");
}

#[test]
fn unit_has_the_operational_settings() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/backlogd.service"
    ))
    .unwrap();
    for setting in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/usr/bin/backlogd reload --config /etc/backlogd/backlogd.toml",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=backlogd",
        "ConfigurationDirectory=backlogd",
        "RuntimeDirectory=backlogd",
        "LoadCredential=pseudonym-key:",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "PrivateMounts=yes",
        "StartLimitBurst=",
        "MemoryMax=",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(unit.contains(setting), "the unit lacks {setting:?}");
    }
}

/// The `+/bin/sh -c '…'` command of the unit line starting with `prefix`, with the unit's paths
/// moved under `root`.
fn refresh_command(unit: &str, prefix: &str, root: &std::path::Path) -> String {
    let line = unit
        .lines()
        .find(|l| l.starts_with(prefix) && l.contains("ingest-tokens"))
        .unwrap_or_else(|| panic!("the unit has a {prefix} line for the tokens"));
    let script = line
        .split_once("-c '")
        .and_then(|(_, rest)| rest.strip_suffix('\''))
        .expect("the line is +/bin/sh -c '...'");
    script
        .replace("/etc/backlogd", &root.join("etc").display().to_string())
        .replace("/run/backlogd", &root.join("run").display().to_string())
}

/// Token rotation under the unit: the runtime copy the daemon reads is refreshed by ExecReload
/// (run here as the unit would, minus systemd), so a reload after editing /etc/backlogd/ingest-tokens
/// accepts the new token and refuses the old one.
#[test]
fn exec_reload_refreshes_the_tokens_the_daemon_reads() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/backlogd.service"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    std::fs::write(dir.path().join("etc/ingest-tokens"), "old-token\n").unwrap();
    let run = |prefix: &str| {
        let script = refresh_command(&unit, prefix, dir.path());
        let status = Command::new("/bin/sh")
            .args(["-c", &script])
            .status()
            .unwrap();
        assert!(status.success(), "{prefix} {script}");
    };
    run("ExecStartPre=+");
    let copy = dir.path().join("run/ingest-tokens");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "old-token\n");
    std::fs::write(dir.path().join("etc/ingest-tokens"), "new-token\n").unwrap();
    run("ExecReload=+");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "new-token\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o400
    );
    // The daemon reads that copy (the unit's environment names it).
    assert!(unit.contains("BACKLOGD__SERVER__INGEST_TOKENS_FILE=/run/backlogd/ingest-tokens"));
}
