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
        first.starts_with(&format!("{}: ", path.display())) && first.contains("max_body_byte"),
        "expected `FILE: key: problem` naming server.max_body_byte, got:\n{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("ok"),
        "a bad file must not be reported ok"
    );
}
