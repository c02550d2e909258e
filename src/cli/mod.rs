//! The commands of `backlogd`, one file each: its arguments (`Args`, clap) and `run`, which does
//! the work through the library and turns the outcome into the exit code and the messages on
//! standard error. `main.rs` only parses and dispatches.

pub mod alert_replay;
pub mod backfill;
pub mod check_config;
pub mod demo;
pub mod forecast;
pub mod import;
pub mod pseudonym;
pub mod reload;
pub mod repair;
pub mod report;
pub mod run;
pub mod send;
pub mod simulate;

use std::path::Path;

/// The first token of a tokens file (one a line, `#` comments), or `None` without a file.
pub fn first_token(path: Option<&Path>) -> anyhow::Result<Option<String>> {
    path.map(backlogd::server::read_tokens)
        .transpose()
        .map(|tokens| tokens.and_then(|t| t.into_iter().next()))
}

/// `--label NAME=VALUE`.
pub fn label_filter(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{text:?}: expected NAME=VALUE, e.g. source=data"))
}
