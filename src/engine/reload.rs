//! `Command::Reload`: new settings switched in without losing state, the switch logged (committed
//! with the rest of the group) so that replay switches at the same point.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Engine, Group, SHUTTING_DOWN, STORE_FAILED};
use crate::config::ConfigError;
use crate::core::{CoreSettings, SnapshotError, State};
use crate::store::encode_settings;
use crate::workforce::EdgeSettings;

/// Why a reload (or a configuration recorded in the store) did not take effect. The `Display` form
/// is the answer of `POST /-/reload` and the text of the log line; it is the whole story (no
/// variant's text leaves out its cause).
/// An error of a module above the engine (the server's tokens file, the TLS files), kept whole:
/// its message and its chain of causes.
pub type EdgeFileError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Started on the built-in configuration.
    #[error("running on the built-in configuration; there is no file to reload")]
    NoFile,
    /// The configuration file (or a stored configuration source) cannot be read or is invalid.
    #[error("{0}")]
    Config(ConfigError),
    /// A configuration recorded in the store no longer validates.
    #[error("the recorded configuration (from {origin}) is no longer valid: {error}")]
    RecordedInvalid { origin: String, error: ConfigError },
    /// The edge settings of the new configuration cannot be used (the pseudonym key).
    #[error(transparent)]
    Edge(crate::workforce::EdgeError),
    /// The ingest tokens file cannot be used (`server::TokensError`, which the engine cannot name:
    /// `server` depends on the engine).
    #[error(transparent)]
    Tokens(EdgeFileError),
    /// The TLS certificate or key cannot be used (`tls::TlsError`, boxed for the same reason).
    #[error(transparent)]
    Certificate(EdgeFileError),
    /// The metrics users file cannot be used.
    #[error(transparent)]
    MetricsUsers(crate::metrics_auth::UsersError),
    /// The core settings cannot change in place.
    #[error("{0}")]
    Refused(crate::core::SettingsError),
    /// The store failed earlier.
    #[error("{STORE_FAILED}")]
    StoreFailed,
    /// The engine is gone.
    #[error("{SHUTTING_DOWN}")]
    ShuttingDown,
}

impl Engine {
    /// Switches to `settings`, answered after the group's commit. A reload of an unchanged file
    /// changes nothing: no settings record, no snapshot, no rebuild (a storm of reloads costs
    /// nothing but the reading).
    pub(super) fn reload(
        &mut self,
        settings: CoreSettings,
        config_source: Arc<[u8]>,
        edge: EdgeSettings,
        reply: oneshot::Sender<Result<(), ReloadError>>,
        group: &mut Group,
    ) {
        if self.store_failed(group) {
            let _ = reply.send(Err(ReloadError::StoreFailed));
            return;
        }
        if *config_source == *self.config_source {
            if edge == *self.edge {
                self.telemetry.reloads_unchanged.inc();
            } else {
                // Only a file the edge reads changed (the pseudonym key).
                self.set_edge(edge);
                group.rebuild_rows = true;
            }
            let _ = reply.send(Ok(()));
            return;
        }
        if let Err(refused) = self.state.set_settings(settings.clone()) {
            let _ = reply.send(Err(ReloadError::Refused(refused)));
            return;
        }
        if let Err(e) = self.log.append(&encode_settings(group.now, &config_source)) {
            // The settings are switched in memory, but the store is failed from here on: the
            // daemon restarts and recovery reads the file again.
            group.store_error = Some(e);
            group.reloads.push(reply);
            return;
        }
        self.config_source = config_source;
        self.settings = Arc::new(settings);
        self.set_edge(edge);
        group.logged = true;
        group.rebuild_rows = true;
        group.reloads.push(reply);
    }

    /// Replaces the edge settings; the per-employee rows are rebuilt at the next publish.
    pub(super) fn set_edge(&mut self, edge: EdgeSettings) {
        if edge.employee_label != self.edge.employee_label
            || edge.pseudonym_key != self.edge.pseudonym_key
        {
            self.workforce_builder.reset();
        }
        self.edge = Arc::new(edge);
        self.workforce_dirty = true;
    }
}

/// The core settings a stored configuration source describes.
pub(super) fn settings_from(config_source: &[u8]) -> Result<CoreSettings, ReloadError> {
    let config_source =
        crate::config::ConfigSource::from_bytes(config_source).map_err(ReloadError::Config)?;
    let config = config_source
        .load()
        .map_err(|error| ReloadError::RecordedInvalid {
            origin: config_source.origin.to_string(),
            error,
        })?;
    Ok(crate::config::core_settings(&config))
}

/// Puts `state` under `settings`: in place when only derived figures change, otherwise (tracks,
/// phases or roles changed) through its snapshot encoding, as a restart would.
pub(super) fn switch_settings(
    state: &mut State,
    settings: CoreSettings,
) -> Result<(), SnapshotError> {
    if state.set_settings(settings.clone()).is_ok() {
        return Ok(());
    }
    let bytes = state.encode_snapshot();
    *state = State::decode_snapshot(settings, &bytes)?;
    Ok(())
}
