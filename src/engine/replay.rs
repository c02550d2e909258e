//! Recovery's log replay, pipelined over two threads: a reader thread scans the log tail (frames,
//! checksums) and parses each record while the engine thread decodes the snapshot; the engine then
//! applies the parsed records in log order. On two cores a restart costs about the larger of the
//! two halves plus the applying, instead of their sum.

use std::path::Path;

use crate::core::event::Event;
use crate::core::time::EpochNanos;
use crate::store::log::{DirLock, EventLog, LogError, LogPosition, ReplayError};
use crate::store::{Record, decode_record};
use crate::wire;

/// Records handed over at a time: large enough that the channel costs nothing per record, small
/// enough that the engine starts applying early.
const BATCH: usize = 4096;

/// One log record, parsed.
pub(super) enum Replayed {
    Event {
        position: LogPosition,
        arrival: EpochNanos,
        event: Event,
        /// The record's size in the log.
        bytes: usize,
    },
    Settings {
        position: LogPosition,
        /// The engine's clock when the reload was made.
        at: EpochNanos,
        config_source: Box<[u8]>,
    },
    /// The stream source committed up to here.
    SourcePosition(crate::store::SourcePosition),
}

/// Why recovery failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RecoveryError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Decode(E),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Opens the log at `dir` from `from`, reading and parsing its tail on a second thread while
/// `decode` builds the starting state here; then hands every parsed record, in log order, to
/// `apply`. Any error stops both threads.
pub(super) fn open_and_replay<S, E: std::error::Error + Send + 'static>(
    lock: DirLock,
    dir: &Path,
    from: LogPosition,
    segment_bytes: u64,
    decode: impl FnOnce() -> Result<S, E>,
    mut apply: impl FnMut(&mut S, Replayed) -> Result<(), ReplayError>,
) -> Result<(S, EventLog), RecoveryError<E>> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Replayed>>(4);
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let log =
                EventLog::open_locked(lock, dir, from, segment_bytes, &mut |position, payload| {
                    batch.push(parse(position, payload)?);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        // Closed: the engine thread failed (its error is the one reported).
                        tx.send(full)
                            .map_err(|_| ReplayError("recovery stopped".to_owned()))?;
                    }
                    Ok(())
                })?;
            let _ = tx.send(batch);
            Ok::<EventLog, LogError>(log)
        });
        // On an early return `rx` is dropped, so the reader stops at its next batch; the scope
        // joins it.
        let mut state = decode().map_err(RecoveryError::Decode)?;
        for batch in rx.iter() {
            for record in batch {
                apply(&mut state, record)?;
            }
        }
        let log = match reader.join() {
            Ok(log) => log?,
            // The release profile aborts on panic; in a debug build, carry the panic on.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok((state, log))
    })
}

fn parse(position: LogPosition, payload: &[u8]) -> Result<Replayed, ReplayError> {
    match decode_record(payload) {
        Some(Record::Event { arrival, raw }) => {
            let event = wire::parse_event(raw).map_err(|e| {
                ReplayError(format!(
                    "record at {position:?} no longer parses: {}",
                    e.rejection
                ))
            })?;
            Ok(Replayed::Event {
                position,
                arrival,
                event,
                bytes: payload.len(),
            })
        }
        Some(Record::Settings { at, source }) => Ok(Replayed::Settings {
            position,
            at,
            config_source: source.into(),
        }),
        Some(Record::Position(source_position)) => Ok(Replayed::SourcePosition(source_position)),
        None => Err(ReplayError(format!(
            "record at {position:?} is not a backlogd log record"
        ))),
    }
}
