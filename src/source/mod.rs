//! Event sources beside HTTP ingest: thin async shells that hand batches to the engine and
//! acknowledge upstream only once the engine's answer says the batch is committed. They hold no
//! state of their own beyond what is in flight; the engine (and its log) owns the position.

pub mod nats;
pub mod partition;
