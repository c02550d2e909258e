//! ARCHITECTURE.md's dependency table is true: for every top-level module of `src/`, the set of
//! other modules its code names (`crate::X` in the library, `backlogd::X` in the binary, whose
//! `main.rs` also names the modules it declares, `mod cli;`; comments and `#[cfg(test)] mod tests`
//! aside) equals the set the table lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ARCHITECTURE: &str = include_str!("../ARCHITECTURE.md");

fn table() -> BTreeMap<String, BTreeSet<String>> {
    let start = ARCHITECTURE
        .find("<!-- dependencies: begin -->")
        .expect("ARCHITECTURE.md has the dependency table markers");
    let end = ARCHITECTURE
        .find("<!-- dependencies: end -->")
        .expect("ARCHITECTURE.md has the end marker");
    ARCHITECTURE[start..end]
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let names = |cell: &str| -> BTreeSet<String> {
                cell.split(',')
                    .map(|name| name.trim().trim_matches('`').to_owned())
                    .filter(|name| !name.is_empty())
                    .collect()
            };
            let module = names(cells[1]).into_iter().next().expect("a module name");
            (module, names(cells[2]))
        })
        .collect()
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
}

/// The modules each module's non-test code names.
fn actual() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        // Test code: `tests.rs` files and whatever lies in a `tests/` directory of src/.
        if relative.file_name().is_some_and(|n| n == "tests.rs")
            || relative.components().any(|c| c.as_os_str() == "tests")
            || relative == Path::new("lib.rs")
        {
            continue;
        }
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let code = without_inline_test_modules(&text);
        let entry = uses.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            // The binary's root names its own modules (`cli`) by declaring them.
            if relative == Path::new("main.rs")
                && let Some(name) = line
                    .trim()
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'))
            {
                entry.insert(name.trim().to_owned());
            }
            for prefix in ["crate::", "backlogd::"] {
                for (at, _) in line.match_indices(prefix) {
                    let name: String = line[at + prefix.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        entry.insert(name);
                    }
                }
            }
        }
    }
    uses
}

/// `text` without its inline test modules (`#[cfg(test)] mod NAME { … }`, braces matched; string
/// and character literals with braces are rare enough in this code base to be ignored). A module
/// declared `mod tests;` lives in its own file and cuts nothing: the whole file is read, code after
/// the declaration included.
fn without_inline_test_modules(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let header_end = item.find(['{', ';']).unwrap_or(item.len());
        if item.starts_with("mod ") && item[header_end..].starts_with('{') {
            let mut depth = 0usize;
            let mut end = item.len();
            for (i, c) in item.char_indices().skip(header_end) {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &item[end..];
        } else {
            // An attribute on something else (`mod tests;`, a test helper): keep reading after it.
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn the_scanner_reads_past_a_test_module_declaration() {
    let code = "use crate::a;\n#[cfg(test)]\nmod tests;\nfn f() { crate::b::g(); }\n\
                #[cfg(test)]\nmod inline {\n    use crate::c;\n    fn t() { if x { crate::d(); } }\n}\n\
                fn h() { crate::e(); }\n";
    let kept = without_inline_test_modules(code);
    for used in ["crate::a", "crate::b", "crate::e"] {
        assert!(kept.contains(used), "{used} in {kept:?}");
    }
    for test_only in ["crate::c", "crate::d"] {
        assert!(!kept.contains(test_only), "{test_only} in {kept:?}");
    }
}

#[test]
fn the_dependency_table_in_architecture_md_is_true() {
    let documented = table();
    let actual = actual();
    let mut problems = Vec::new();
    for (module, uses) in &actual {
        match documented.get(module) {
            None => problems.push(format!("module `{module}` is not in the table")),
            Some(listed) => {
                for extra in uses.difference(listed) {
                    problems.push(format!(
                        "`{module}` uses `{extra}`, which the table does not list"
                    ));
                }
                for gone in listed.difference(uses) {
                    problems.push(format!(
                        "the table says `{module}` uses `{gone}`, but it does not"
                    ));
                }
            }
        }
    }
    for module in documented.keys() {
        if !actual.contains_key(module) && module != "core" {
            problems.push(format!(
                "the table lists `{module}`, which is not a module of src/"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md is out of date:\n{}",
        problems.join("\n")
    );
    assert!(
        documented["core"].is_empty(),
        "core depends on nothing else in the crate"
    );
}

/// The crates the core must never depend on, directly or through another crate: everything that
/// does IO, spawns, serialises or exports. The compiler enforces the boundary (the core is its own
/// package); this test enforces the list.
const IO_CRATES: &[&str] = &[
    "async-nats",
    "hyper",
    "hyper-util",
    "mio",
    "prometheus",
    "rusqlite",
    "rustls",
    "serde",
    "serde_json",
    "tokio",
    "tokio-rustls",
    "tracing",
];

#[test]
fn the_core_crate_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args(["tree", "--offline", "-p", "backlogd-core", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree writes UTF-8");
    let crates: BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        crates.contains("backlogd-core") && crates.contains("jiff"),
        "cargo tree lists the core and its dependencies: {crates:?}"
    );
    let io: Vec<&&str> = IO_CRATES.iter().filter(|c| crates.contains(**c)).collect();
    assert!(io.is_empty(), "the core depends on {io:?}: {crates:?}");
}

/// `anyhow` is for the binary's glue only (`src/main.rs`, `src/cli/`): the library returns typed
/// errors, so that callers branch on variants, not on strings.
#[test]
fn anyhow_stays_in_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (main, cli) = (root.join("src/main.rs"), root.join("src/cli"));
    let found: Vec<String> = rust_files(&root.join("src"))
        .into_iter()
        .chain(rust_files(&root.join("crates")))
        .filter(|path| *path != main && !path.starts_with(&cli))
        .filter(|path| std::fs::read_to_string(path).unwrap().contains("anyhow"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(found.is_empty(), "anyhow outside the CLI: {found:?}");
}
