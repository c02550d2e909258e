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

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backlogd::client::{Client, ClientError};
use backlogd::server::TokensError;

/// A running daemon and how to reach it: `--url`, `--token-file`, `--ca-file`, `--timeout`.
#[derive(clap::Args)]
pub struct DaemonArgs {
    /// Base URL of the daemon.
    #[arg(long, default_value = "http://127.0.0.1:9723")]
    pub url: String,
    /// File whose first non-comment line is the bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub ca_file: CaFile,
}

impl DaemonArgs {
    /// A client of the daemon with its token.
    pub fn client(&self) -> anyhow::Result<Client> {
        self.ca_file
            .client_with_token_file(&self.url, self.token_file.as_deref())
    }
}

/// `--ca-file`, for the commands that make HTTP requests.
#[derive(clap::Args)]
pub struct CaFile {
    /// PEM file of the certificates to trust for an https:// URL, instead of the system's
    /// (which SSL_CERT_FILE or SSL_CERT_DIR replace).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds one request may take, from connecting to the whole answer; a daemon that accepts
    /// but does not answer in time fails the command (not retried).
    #[arg(long, value_name = "SECONDS", default_value_t = backlogd::client::DEFAULT_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
}

impl CaFile {
    /// `--timeout` as a span.
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout)
    }

    /// A client of `url` trusting these certificates, with `token` as the bearer token.
    pub fn client(&self, url: &str, token: Option<String>) -> Result<Client, ClientError> {
        Client::new(url, self.ca_file.as_deref(), token)
            .map(|client| client.with_timeout(self.request_timeout()))
    }

    /// A client of `url` trusting these certificates, with the first token of `token_file`.
    pub fn client_with_token_file(
        &self,
        url: &str,
        token_file: Option<&Path>,
    ) -> anyhow::Result<Client> {
        let token = first_token(token_file)?;
        Ok(self.client(url, token)?)
    }
}

/// The exit code of a command that ended with `result`; an error is printed as
/// `backlogd COMMAND: ERROR` with its causes, and exits 1.
pub fn finish(command: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("backlogd {command}: {e:#}");
        ExitCode::FAILURE
    })
}

/// The first token of a tokens file (one a line, `#` comments), or `None` without a file.
pub fn first_token(path: Option<&Path>) -> Result<Option<String>, TokensError> {
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
