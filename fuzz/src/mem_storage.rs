//! A minimal in-memory `Storage` for the event log: files are byte vectors shared by all handles,
//! nothing ever fails and sync is a no-op. It lets `log_recovery` seed a segment file's bytes and
//! open the log without touching the disk (tens of thousands of opens a second), and look at the
//! files afterwards.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use backlogd::store::storage::{AppendFile, ReadFile, Storage};

#[derive(Debug, Default)]
struct Fs {
    dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, Arc<Mutex<Vec<u8>>>>,
    locks: BTreeSet<PathBuf>,
}

/// In-memory storage; clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    fs: Arc<Mutex<Fs>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Creates (or replaces) the file at `path` with `bytes`, creating its directory.
    pub fn put(&self, path: &Path, bytes: Vec<u8>) {
        let mut fs = lock(&self.fs);
        if let Some(parent) = path.parent() {
            for dir in parent.ancestors() {
                fs.dirs.insert(dir.to_path_buf());
            }
        }
        fs.files
            .insert(path.to_path_buf(), Arc::new(Mutex::new(bytes)));
    }

    /// The bytes of the file at `path`, if it exists.
    pub fn get(&self, path: &Path) -> Option<Vec<u8>> {
        let fs = lock(&self.fs);
        fs.files.get(path).map(|f| lock(f).clone())
    }

    fn file(&self, path: &Path) -> io::Result<Arc<Mutex<Vec<u8>>>> {
        lock(&self.fs)
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
}

struct MemRead(Cursor<Vec<u8>>);

impl Read for MemRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for MemRead {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl ReadFile for MemRead {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.0.get_ref().len() as u64)
    }
}

struct MemAppend(Arc<Mutex<Vec<u8>>>);

impl AppendFile for MemAppend {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        lock(&self.0).extend_from_slice(data);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        lock(&self.0).resize(len, 0);
        Ok(())
    }
}

struct LockGuard {
    fs: Arc<Mutex<Fs>>,
    path: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        lock(&self.fs).locks.remove(&self.path);
    }
}

impl Storage for MemStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut fs = lock(&self.fs);
        let mut created = Vec::new();
        for ancestor in dir.ancestors() {
            if fs.dirs.insert(ancestor.to_path_buf()) && ancestor.parent().is_some() {
                created.push(ancestor.to_path_buf());
            }
        }
        created.reverse();
        Ok(created)
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send>>> {
        let mut fs = lock(&self.fs);
        if !fs.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(LockGuard {
            fs: self.fs.clone(),
            path: path.to_path_buf(),
        })))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let fs = lock(&self.fs);
        if !fs.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(fs
            .files
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let file = self.file(path)?;
        let len = lock(&file).len() as u64;
        Ok(len)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        let file = self.file(path)?;
        let bytes = lock(&file).clone();
        Ok(Box::new(MemRead(Cursor::new(bytes))))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(MemAppend(self.file(path)?)))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut fs = lock(&self.fs);
        if fs.files.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let file = Arc::new(Mutex::new(Vec::new()));
        fs.files.insert(path.to_path_buf(), file.clone());
        Ok(Box::new(MemAppend(file)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        lock(&self.fs)
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}
