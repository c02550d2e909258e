//! `backlogd reload`: asks a running daemon to reload its configuration and waits for the result.

use std::path::PathBuf;
use std::process::ExitCode;

use backlogd::client::ClientError;
use backlogd::config;

/// Asks a running daemon to reload its configuration and waits for the result: exit 0 when it
/// took effect, 1 with the reason when it did not (the daemon keeps running on the old one).
/// Used as the unit's ExecReload, so that `systemctl reload` reports a failed reload.
#[derive(clap::Args)]
pub struct Args {
    /// The daemon's configuration file: its server.listen and server.ingest_tokens_file say
    /// where to ask and with which token.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Base URL of the daemon instead of the configuration's server.listen (with TLS, https://
    /// and that address: use a URL with a name the certificate holds when it holds no address).
    #[arg(long)]
    url: Option<String>,
    /// File whose first non-comment line is the bearer token (default: the configuration's
    /// server.ingest_tokens_file).
    #[arg(long)]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    ca_file: super::CaFile,
}

pub fn run(args: Args) -> ExitCode {
    super::finish("reload", execute(args))
}

fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        config: config_file,
        url,
        token_file,
        ca_file,
    } = args;
    // Its text only: a read error's Display already says its cause.
    let loaded = config_file
        .as_deref()
        .map(config::load)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = url
        .or_else(|| {
            loaded
                .as_ref()
                .map(|c| backlogd::client::local_url(c.server.listen, c.server.tls.is_some()))
        })
        .ok_or_else(|| anyhow::anyhow!("give --config FILE or --url URL"))?;
    let tokens_file = token_file.or_else(|| {
        loaded
            .as_ref()
            .and_then(|c| c.server.ingest_tokens_file.clone())
    });
    let client = ca_file.client_with_token_file(&url, tokens_file.as_deref())?;
    match client.reload() {
        Ok(_) => {
            println!("reloaded");
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Status {
            status, message, ..
        }) => Err(anyhow::anyhow!("the reload failed ({status}): {message}")),
        Err(e) => Err(e.into()),
    }
}
