//! Test storage for the event log: in memory, injects `EIO`/`ENOSPC` at the Nth mutating
//! operation, and models what a power loss keeps.
//!
//! Every file has the bytes a reader sees (`data`, the page cache) and the bytes a power loss keeps
//! (`durable`, set to `data` by a successful `sync_data`); the directory has its entries and the
//! entries a power loss keeps (set by a successful `sync_dir`). [`FaultyStorage::power_loss`] then
//! either keeps exactly what was synced ([`PowerLoss::Strict`]) or, for every unsynced page, file
//! length and directory entry change, flips a coin ([`PowerLoss::Random`]): a later page may
//! survive while an earlier one is lost, a created file's entry may vanish, a removed one come back.
//!
//! Fault points are the mutating operations: `create_new`, `write_all`, `sync_data`, `set_len`,
//! `remove`, `sync_dir`, numbered from 1. A failing `write_all` writes the first half of its bytes
//! first (a short write). A sticky fault fails its point and every later one (the machine is
//! losing power).
//!
//! Read points are numbered apart from them, from 1: `list`, `len`, `open_read`, `open_append` and
//! every `read` of a file opened for reading; [`FaultyStorage::fail_read_at`] fails one of them
//! (and every later one, if sticky), as a disk that returns `EIO` on a bad sector would.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::storage::{AppendFile, ReadFile, Storage};

/// Granularity of what a random power loss keeps or drops.
pub const PAGE: usize = 16;

/// The error a fault injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    Eio,
    Enospc,
}

impl Errno {
    fn error(self) -> io::Error {
        io::Error::from_raw_os_error(match self {
            Errno::Eio => libc::EIO,
            Errno::Enospc => libc::ENOSPC,
        })
    }
}

/// What survives a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerLoss {
    /// Exactly what was synced.
    Strict,
    /// What was synced, and each unsynced page, file length and directory entry change with
    /// probability 1/2, independently (seeded).
    Random { seed: u64 },
}

/// splitmix64: small, deterministic, good enough to pick pages.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    at: u64,
    errno: Errno,
    sticky: bool,
}

/// One numbering of points (the mutating operations, or the reads) and the fault armed on it.
#[derive(Debug, Default)]
struct Points {
    passed: u64,
    fault: Option<Fault>,
    injected: u64,
}

impl Points {
    /// Counts one point; fails it if the fault is armed for it.
    fn pass(&mut self) -> io::Result<()> {
        self.passed += 1;
        if let Some(fault) = self.fault
            && (self.passed == fault.at || (fault.sticky && self.passed > fault.at))
        {
            self.injected += 1;
            return Err(fault.errno.error());
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct FileData {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    /// Indexed by file id; removed files stay (a power loss may bring their entry back).
    files: Vec<FileData>,
    dirs: BTreeSet<PathBuf>,
    entries: BTreeMap<PathBuf, usize>,
    durable_entries: BTreeMap<PathBuf, usize>,
    locks: BTreeSet<PathBuf>,
    /// The mutating operations (fault points).
    writes: Points,
    /// Every directory synced, in order.
    synced_dirs: Vec<PathBuf>,
    /// The read points.
    reads: Points,
}

impl State {
    fn id(&self, path: &Path) -> io::Result<usize> {
        self.entries
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

/// In-memory storage with fault injection and power loss; clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    state: Arc<Mutex<State>>,
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread poisons the mutex; the state itself is still consistent.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultyStorage {
    pub fn new() -> FaultyStorage {
        FaultyStorage::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    /// Fails fault point `at` (and, if `sticky`, every later one) with `errno`.
    pub fn fail_at(&self, at: u64, errno: Errno, sticky: bool) {
        self.state().writes.fault = Some(Fault { at, errno, sticky });
    }

    /// Fault points passed so far.
    pub fn points(&self) -> u64 {
        self.state().writes.passed
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.state().writes.injected
    }

    /// The machine loses power and boots again: see [`PowerLoss`]. Disarms the fault and drops
    /// every lock (the process is gone).
    pub fn power_loss(&self, mode: PowerLoss) {
        let mut state = self.state();
        let mut rng = match mode {
            PowerLoss::Strict => None,
            PowerLoss::Random { seed } => Some(Rng::new(seed)),
        };
        let mut entries = state.durable_entries.clone();
        if let Some(rng) = rng.as_mut() {
            let names: BTreeSet<PathBuf> = state
                .entries
                .keys()
                .chain(state.durable_entries.keys())
                .cloned()
                .collect();
            for name in names {
                let current = state.entries.get(&name).copied();
                if current != state.durable_entries.get(&name).copied() && rng.coin() {
                    match current {
                        Some(id) => entries.insert(name, id),
                        None => entries.remove(&name),
                    };
                }
            }
        }
        let ids: BTreeSet<usize> = entries.values().copied().collect();
        for id in ids {
            let file = &mut state.files[id];
            let mut kept = file.durable.clone();
            if let Some(rng) = rng.as_mut() {
                let len = if rng.coin() {
                    file.data.len()
                } else {
                    file.durable.len()
                };
                kept.resize(len, 0);
                let mut start = 0;
                while start < len.min(file.data.len()) {
                    let end = (start + PAGE).min(len).min(file.data.len());
                    if kept[start..end] != file.data[start..end] && rng.coin() {
                        kept[start..end].copy_from_slice(&file.data[start..end]);
                    }
                    start = end;
                }
            }
            file.data = kept.clone();
            file.durable = kept;
        }
        state.entries = entries.clone();
        state.durable_entries = entries;
        state.writes.fault = None;
        state.reads.fault = None;
        state.locks.clear();
    }

    /// The bytes a reader sees in `path`, if it exists.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state();
        let id = state.id(path).ok()?;
        Some(state.files[id].data.clone())
    }
}

struct LockGuard {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        lock_state(&self.state).locks.remove(&self.path);
    }
}

struct FaultyFile {
    state: Arc<Mutex<State>>,
    id: usize,
}

impl AppendFile for FaultyFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut state = lock_state(&self.state);
        let result = state.writes.pass();
        let written = if result.is_ok() {
            data
        } else {
            &data[..data.len() / 2]
        };
        state.files[self.id].data.extend_from_slice(written);
        result
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut state = lock_state(&self.state);
        state.writes.pass()?;
        let file = &mut state.files[self.id];
        file.durable = file.data.clone();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut state = lock_state(&self.state);
        state.writes.pass()?;
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        state.files[self.id].data.resize(len, 0);
        Ok(())
    }
}

/// A file opened for reading: a copy of its bytes at the open; every `read` is a read point.
struct FaultyReader {
    state: Arc<Mutex<State>>,
    bytes: Cursor<Vec<u8>>,
}

impl io::Read for FaultyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        lock_state(&self.state).reads.pass()?;
        self.bytes.read(buf)
    }
}

impl io::Seek for FaultyReader {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        self.bytes.seek(to)
    }
}

impl ReadFile for FaultyReader {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.bytes.get_ref().len() as u64)
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut state = self.state();
        let mut created = Vec::new();
        for ancestor in dir.ancestors() {
            if state.dirs.insert(ancestor.to_path_buf()) && ancestor.parent().is_some() {
                created.push(ancestor.to_path_buf());
            }
        }
        created.reverse();
        Ok(created)
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send>>> {
        let mut state = self.state();
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(LockGuard {
            state: self.state.clone(),
            path: path.to_path_buf(),
        })))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state();
        state.reads.pass()?;
        if !state.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(state
            .entries
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let mut state = self.state();
        state.reads.pass()?;
        let id = state.id(path)?;
        Ok(state.files[id].data.len() as u64)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        let mut state = self.state();
        state.reads.pass()?;
        let id = state.id(path)?;
        Ok(Box::new(FaultyReader {
            state: self.state.clone(),
            bytes: Cursor::new(state.files[id].data.clone()),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let id = {
            let mut state = self.state();
            state.reads.pass()?;
            state.id(path)?
        };
        Ok(Box::new(FaultyFile {
            state: self.state.clone(),
            id,
        }))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut state = self.state();
        state.writes.pass()?;
        if state.entries.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let id = state.files.len();
        state.files.push(FileData::default());
        state.entries.insert(path.to_path_buf(), id);
        Ok(Box::new(FaultyFile {
            state: self.state.clone(),
            id,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.writes.pass()?;
        state
            .entries
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.writes.pass()?;
        state.synced_dirs.push(dir.to_path_buf());
        state
            .durable_entries
            .retain(|path, _| path.parent() != Some(dir));
        let current: Vec<(PathBuf, usize)> = state
            .entries
            .iter()
            .filter(|(path, _)| path.parent() == Some(dir))
            .map(|(path, &id)| (path.clone(), id))
            .collect();
        state.durable_entries.extend(current);
        Ok(())
    }
}

impl FaultyStorage {
    /// The directories synced so far, in order.
    pub fn synced_dirs(&self) -> Vec<PathBuf> {
        self.state().synced_dirs.clone()
    }

    /// Disarms the fault, if any.
    pub fn disarm(&self) {
        self.state().writes.fault = None;
    }

    /// Fails read point `at` (and, if `sticky`, every later one) with `errno`.
    pub fn fail_read_at(&self, at: u64, errno: Errno, sticky: bool) {
        self.state().reads.fault = Some(Fault { at, errno, sticky });
    }

    /// Read points passed so far.
    pub fn read_points(&self) -> u64 {
        self.state().reads.passed
    }

    /// Read faults injected so far.
    pub fn read_injected(&self) -> u64 {
        self.state().reads.injected
    }

    /// Disarms the read fault, if any.
    pub fn disarm_reads(&self) {
        self.state().reads.fault = None;
    }
}

#[cfg(test)]
mod tests;
