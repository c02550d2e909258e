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
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=backlogd",
        "ConfigurationDirectory=backlogd",
        "LoadCredential=ingest-tokens:",
        "LoadCredential=pseudonym-key:",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(unit.contains(setting), "the unit lacks {setting:?}");
    }
}
