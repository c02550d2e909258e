//! docs/configuration.md cannot drift from the code: every key the configuration parser accepts
//! (read from the parser itself, through the "unknown key; expected one of …" error it gives for a
//! misspelt key) has a row in the section of its table, and the document points nowhere outside
//! the repository.

const DOC: &str = include_str!("../docs/configuration.md");
const TRACK: &str = "[tracks.a]\ndecision_period = \"P1M\"\n";

/// The keys the parser expects where `toml` has the unknown key `bogus`.
fn expected_keys(toml: &str) -> Vec<String> {
    let errors = backlogd::config::load_from_str(toml)
        .err()
        .unwrap_or_else(|| panic!("an unknown key is refused:\n{toml}"));
    // The unknown key's problem (a table missing its required keys has others too).
    let error = errors
        .problems()
        .iter()
        .map(ToString::to_string)
        .find(|problem| problem.contains("unknown key"))
        .unwrap_or_else(|| errors.to_string());
    let list = error
        .split_once("expected ")
        .map(|(_, list)| list.trim_start_matches("one of "))
        .unwrap_or_else(|| panic!("no key list in {error:?}"));
    list.split([',', ' '])
        .filter(|word| word.starts_with('`'))
        .map(|word| word.trim_matches('`').to_owned())
        .collect()
}

/// The body of the `## ` section whose heading contains `heading`.
fn section(heading: &str) -> &'static str {
    DOC.split("\n## ")
        .find(|part| {
            part.lines()
                .next()
                .is_some_and(|line| line.contains(heading))
        })
        .unwrap_or_else(|| panic!("docs/configuration.md has no section {heading:?}"))
}

#[test]
fn every_key_the_parser_accepts_is_documented_in_its_section() {
    let mut missing = Vec::new();
    let mut check = |heading: &str, keys: Vec<String>| {
        let body = section(heading);
        for key in keys {
            if !body.contains(&format!("| `{key}` |")) {
                missing.push(format!("{heading} {key}"));
            }
        }
    };
    let top = expected_keys(&format!("bogus = 1\n{TRACK}"));
    assert!(top.len() > 10, "{top:?}");
    for key in &top {
        match key.as_str() {
            "phases" => check("Top level", vec![key.clone()]),
            "tracks" => check(
                "[tracks.NAME]",
                expected_keys(&format!("{TRACK}bogus = 1\n")),
            ),
            "targets" => check(
                "[[targets]]",
                expected_keys(&format!("{TRACK}[[targets]]\nbogus = 1\n")),
            ),
            // A table of sources, each a table of its own keys.
            "sources" => {
                for source in expected_keys(&format!("[sources]\nbogus = 1\n{TRACK}")) {
                    check(
                        &format!("`[sources.{source}]`"),
                        expected_keys(&format!("[sources.{source}]\nbogus = 1\n{TRACK}")),
                    );
                }
            }
            // A free table of name = number pairs: documented as a whole.
            "thresholds" => {
                section("[thresholds]");
            }
            table => check(
                &format!("`[{table}]`"),
                expected_keys(&format!("[{table}]\nbogus = 1\n{TRACK}")),
            ),
        }
    }
    let tiers = expected_keys(&format!(
        "{TRACK}penalty = [{{ days = 1, per_day = 1, bogus = 1 }}]\n"
    ));
    for key in tiers {
        if !section("[tracks.NAME]").contains(&key) {
            missing.push(format!("[tracks.NAME] penalty tier {key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks rows for {missing:?}"
    );
}

/// Every file of the repository (but this one, which names the pattern) stands on its own: nothing
/// points to the shared folder next to it or to a SPEC file outside it.
#[test]
fn nothing_in_the_repository_points_outside_it() {
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "target" || name.starts_with('.') || name.starts_with("docs_") {
                continue;
            }
            if path.is_dir() {
                walk(&path, found);
            } else if let Ok(text) = std::fs::read_to_string(&path)
                && (text.contains(concat!("..", "/shared"))
                    || text.contains("SPEC.md")
                    || text.contains("SPEC §"))
            {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &mut found);
    assert!(
        found.is_empty(),
        "these files point outside the repository: {found:?}"
    );
}
