//! The file operations the event log needs, behind a trait: [`RealStorage`] (std::fs) in
//! production, and in tests a fault-injecting in-memory implementation that also models what a
//! power loss keeps (`store::faulty`).
//!
//! The write path makes one `write_all` per commit group and segment, so dynamic dispatch costs
//! nothing measurable.

use std::any::Any;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A segment file opened for reading (replay, inspection).
pub trait ReadFile: Read + Seek + Send {
    /// The file's length in bytes.
    fn size(&mut self) -> io::Result<u64>;
}

/// A segment file opened for appending.
pub trait AppendFile: Send {
    /// Appends all of `data` at the end of the file.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&mut self) -> io::Result<()>;
    /// `ftruncate`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// What the event log does to its directory. Paths are full paths inside the log directory.
pub trait Storage: Send + Sync {
    /// `mkdir -p`; returns the directories it created, outermost first (empty if `dir` existed).
    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Takes an exclusive lock on `path` (created if missing) for as long as the returned guard
    /// lives; `Ok(None)` when someone else holds it.
    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send>>>;
    /// The names of the entries of `dir` (names that are not UTF-8 are left out).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The length of the file at `path`.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Opens an existing file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>>;
    /// Opens an existing file for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Creates a new, empty file for appending; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// `fsync`s a directory, making its entries (created and removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealStorage;

impl ReadFile for File {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl AppendFile for File {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        Write::write_all(self, data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

impl Storage for RealStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut created: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.is_dir())
            .map(Path::to_path_buf)
            .collect();
        created.reverse();
        if !created.is_empty() {
            fs::create_dir_all(dir)?;
        }
        Ok(created)
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send>>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(error)) => Err(error),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        let file = File::open(path)?;
        drop_cached_pages(&file, path);
        Ok(Box::new(file))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(OpenOptions::new().append(true).open(path)?))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(
            OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(path)?,
        ))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Creates `dir` and any missing parents, then syncs the parent of every directory it created, so
/// the new directories survive a power loss (a file synced inside a directory whose own entry was
/// never synced can vanish with it). Nothing is synced if `dir` existed.
pub fn create_dir_durably(storage: &dyn Storage, dir: &Path) -> io::Result<()> {
    for created in storage.create_dir_all(dir)? {
        // `created` came from `ancestors()` of a non-empty path, so it has a parent unless it is a
        // root, which always exists and is never created; a relative one-component path has the
        // empty parent, meaning the working directory.
        let parent = match created.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        storage.sync_dir(parent)?;
    }
    Ok(())
}

/// Asks the kernel to drop the file's clean cached pages, so that reading it reads what is on the
/// disk. After a failed writeback Linux marks the pages clean although they never reached the disk;
/// a restart in the same boot would otherwise replay records that a power loss would take away.
/// Dirty pages are not dropped (they are written back first). Best effort: failure is logged.
fn drop_cached_pages(file: &File, path: &Path) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open for the
        // lifetime of `file`, which outlives the call.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            tracing::warn!(
                file = %path.display(),
                error = %io::Error::from_raw_os_error(rc),
                "event log: cannot drop cached pages before reading"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, path);
}
