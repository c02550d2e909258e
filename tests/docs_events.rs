//! `docs/events.md` is the contract the builders of senders read. These tests keep it in step with
//! the code: every event type and every rejection reason is documented, every event type has a
//! section whose example lines parse as events of that type, and the page stands on its own (no
//! link or text pointing outside the repository).

use std::path::{Component, Path};

use backlogd::core::event::{EventType, RejectReason};

const DOC_PATH: &str = "docs/events.md";
const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md"));

/// The names in `names` that appear nowhere in the page in backticks (which includes headings
/// such as "### `case.registered`").
fn undocumented(names: impl IntoIterator<Item = &'static str>) -> Vec<&'static str> {
    names
        .into_iter()
        .filter(|name| !DOC.contains(&format!("`{name}`")))
        .collect()
}

#[test]
fn every_event_type_and_rejection_reason_is_documented() {
    let types = undocumented(EventType::ALL.iter().map(|t| t.as_str()));
    let reasons = undocumented(RejectReason::ALL.iter().map(|r| r.as_str()));
    assert!(
        types.is_empty() && reasons.is_empty(),
        "{DOC_PATH} does not document (as a heading or in backticks):\n  event types: {}\n  rejection reasons: {}",
        if types.is_empty() {
            "none missing".to_owned()
        } else {
            types.join(", ")
        },
        if reasons.is_empty() {
            "none missing".to_owned()
        } else {
            reasons.join(", ")
        },
    );
}

/// The example lines of each section headed "### `<event type>`": every line of its ```json
/// blocks, by section name.
fn examples_by_section() -> Vec<(String, Vec<(usize, String)>)> {
    let mut sections: Vec<(String, Vec<(usize, String)>)> = Vec::new();
    let mut fence: Option<String> = None;
    for (number, line) in DOC.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().to_owned()),
            };
            continue;
        }
        match &fence {
            None => {
                if trimmed.starts_with('#') {
                    let title = trimmed.trim_start_matches('#').trim();
                    let name = title
                        .strip_prefix('`')
                        .and_then(|t| t.strip_suffix('`'))
                        .filter(|name| EventType::parse(name).is_some());
                    sections.push((name.unwrap_or("").to_owned(), Vec::new()));
                }
            }
            Some(info) if info == "json" && !trimmed.is_empty() => {
                if let Some((_, examples)) = sections.last_mut() {
                    examples.push((number + 1, trimmed.to_owned()));
                }
            }
            Some(_) => {}
        }
    }
    sections.retain(|(name, _)| !name.is_empty());
    sections
}

#[test]
fn every_event_type_has_a_section_with_examples_that_parse_as_that_type() {
    let sections = examples_by_section();
    let mut problems = Vec::new();
    for event_type in EventType::ALL {
        let name = event_type.as_str();
        let found: Vec<_> = sections.iter().filter(|(n, _)| n == name).collect();
        match found.as_slice() {
            [] => problems.push(format!("no section \"### `{name}`\"")),
            [(_, examples)] if examples.is_empty() => {
                problems.push(format!("section `{name}` has no ```json example line"));
            }
            [_] => {}
            _ => problems.push(format!("more than one section \"### `{name}`\"")),
        }
    }
    for (name, examples) in &sections {
        for (line, example) in examples {
            match backlogd::wire::parse_event(example) {
                Ok(event) if event.kind.event_type().as_str() == name => {}
                Ok(event) => problems.push(format!(
                    "line {line}: the example in section `{name}` is a {}",
                    event.kind.event_type().as_str()
                )),
                Err(rejected) => problems.push(format!(
                    "line {line}: the example in section `{name}` is rejected: {}",
                    rejected.rejection
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{DOC_PATH}:\n  {}",
        problems.join("\n  ")
    );
}

/// Where a relative link from `docs/` leads, or `None` when it leaves the repository.
fn resolve_in_repository(target: &str) -> Option<Vec<String>> {
    let mut parts = vec!["docs".to_owned()];
    for component in Path::new(target).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts)
}

#[test]
fn the_page_stands_on_its_own() {
    let mut problems = Vec::new();
    for (number, line) in DOC.lines().enumerate() {
        let line_number = number + 1;
        let lower = line.to_ascii_lowercase();
        for forbidden in [OUTSIDE, "spec.md", "://", "file:"] {
            if lower.contains(forbidden) {
                problems.push(format!("line {line_number}: mentions {forbidden:?}"));
            }
        }
        // The original contract document is not part of the repository; the page must not lean
        // on it ("as the SPEC says").
        if line
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == "SPEC")
        {
            problems.push(format!("line {line_number}: refers to a SPEC"));
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split('#').next().unwrap_or("");
            if !target.is_empty() && resolve_in_repository(target).is_none() {
                problems.push(format!(
                    "line {line_number}: the link to {target:?} leaves the repository"
                ));
            }
            rest = &after[end..];
        }
    }
    assert!(
        problems.is_empty(),
        "{DOC_PATH} points outside the repository:\n  {}",
        problems.join("\n  ")
    );
}

/// The path outside the repository where its first contract lived, spelled so that this file itself
/// does not contain it.
const OUTSIDE: &str = concat!("..", "/shared");
