//! A memory-mapped file of fixed-size entries: the shared body of the offset and time
//! indexes. Preallocated while its segment is active, trimmed to its entries when sealed.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::error::{IoContext, StorageError};

pub(crate) struct IndexFile {
    path: PathBuf,
    entry_bytes: usize,
    /// `None` while the file is empty (a zero-length mapping is not portable).
    mmap: Option<MmapMut>,
    entries: usize,
    capacity_entries: usize,
}

impl IndexFile {
    /// Opens (creating if missing) an index file. Its entries are taken to be the whole
    /// file rounded down to an entry; `preallocate_bytes` grows the file for appends.
    pub fn open(
        path: &Path,
        entry_bytes: usize,
        preallocate_bytes: Option<u64>,
    ) -> Result<Self, StorageError> {
        let file = open_rw(path)?;
        let len = file.metadata().ctx("stat index", path)?.len();
        let entries = (len / entry_bytes as u64) as usize;
        let mut index = IndexFile {
            path: path.to_path_buf(),
            entry_bytes,
            mmap: None,
            entries,
            capacity_entries: entries,
        };
        let target = match preallocate_bytes {
            Some(bytes) => (bytes / entry_bytes as u64).max(entries as u64),
            None => entries as u64,
        };
        index.map(&file, target)?;
        Ok(index)
    }

    /// Deletes whatever is at `path` and starts an empty preallocated index.
    pub fn create(
        path: &Path,
        entry_bytes: usize,
        preallocate_bytes: u64,
    ) -> Result<Self, StorageError> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx("remove index", path),
        }
        let mut index = Self::open(path, entry_bytes, Some(preallocate_bytes))?;
        index.entries = 0;
        Ok(index)
    }

    fn map(&mut self, file: &File, capacity_entries: u64) -> Result<(), StorageError> {
        self.mmap = None;
        let len = capacity_entries * self.entry_bytes as u64;
        file.set_len(len).ctx("resize index", &self.path)?;
        self.capacity_entries = capacity_entries as usize;
        if len > 0 {
            // SAFETY: index files belong to this partition directory, which one log owns;
            // nothing else truncates or writes the file while the mapping lives, and the
            // file was just sized to cover the whole mapping.
            let mmap = unsafe { MmapMut::map_mut(file) }.ctx("mmap index", &self.path)?;
            self.mmap = Some(mmap);
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_full(&self) -> bool {
        self.entries >= self.capacity_entries
    }

    /// The raw bytes of entry `i` (`i < len()`).
    pub fn entry(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.entries);
        let start = i * self.entry_bytes;
        match &self.mmap {
            Some(m) => &m[start..start + self.entry_bytes],
            None => &[],
        }
    }

    /// Appends an entry; returns false when the index is full.
    pub fn push(&mut self, entry: &[u8]) -> bool {
        debug_assert_eq!(entry.len(), self.entry_bytes);
        if self.is_full() {
            return false;
        }
        let start = self.entries * self.entry_bytes;
        if let Some(m) = &mut self.mmap {
            m[start..start + self.entry_bytes].copy_from_slice(entry);
            self.entries += 1;
            return true;
        }
        false
    }

    /// Writes dirty index pages back to the file.
    pub fn flush(&self) -> Result<(), StorageError> {
        if let Some(m) = &self.mmap {
            m.flush().ctx("msync index", &self.path)?;
        }
        Ok(())
    }

    /// Shrinks the file to exactly its entries (segment sealed or log closed).
    pub fn trim(&mut self) -> Result<(), StorageError> {
        self.flush()?;
        let file = open_rw(&self.path)?;
        self.map(&file, self.entries as u64)?;
        file.sync_all().ctx("fsync index", &self.path)
    }

    /// Regrows a trimmed file so it accepts appends again.
    pub fn reopen_for_append(&mut self, preallocate_bytes: u64) -> Result<(), StorageError> {
        let file = open_rw(&self.path)?;
        let target = (preallocate_bytes / self.entry_bytes as u64).max(self.entries as u64);
        self.map(&file, target)
    }

    /// Unmaps and removes the file.
    pub fn delete(mut self) -> Result<(), StorageError> {
        self.mmap = None;
        remove_if_exists(&self.path)
    }
}

pub(crate) fn open_rw(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ctx("open", path)
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx("remove", path),
    }
}
