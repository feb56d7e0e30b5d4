//! The single-node metadata log: length- and CRC-framed JSON records in one
//! file, fsynced before a change is acknowledged.
//!
//! This is the persistence the Raft log store will take over (cluster issue):
//! the same records, the same "durable before applied" rule.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::MetadataRecord;
use super::MetadataError;

/// A record's frame header: payload length then CRC32C of the payload.
const HEADER_BYTES: usize = 8;
/// No metadata record is anywhere near this; a larger length is corruption.
const RECORD_BYTES_MAX: usize = 16 << 20;

/// An append-only metadata log file.
pub struct MetadataLog {
    path: PathBuf,
    file: File,
}

impl MetadataLog {
    /// Opens (or creates) the log in `dir` and returns every whole record.
    /// A torn or corrupt tail (a crash mid-append) is cut off.
    pub fn open(dir: &Path) -> Result<(Self, Vec<MetadataRecord>), MetadataError> {
        std::fs::create_dir_all(dir).map_err(|e| MetadataError::io(dir, e))?;
        let path = dir.join("metadata.log");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| MetadataError::io(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| MetadataError::io(&path, e))?;
        let (records, valid) = decode_all(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = valid,
                dropped = bytes.len() - valid,
                "metadata log has a torn tail; truncating it"
            );
            file.set_len(valid as u64)
                .and_then(|_| file.sync_all())
                .map_err(|e| MetadataError::io(&path, e))?;
            file.seek(SeekFrom::End(0))
                .map_err(|e| MetadataError::io(&path, e))?;
        }
        Ok((Self { path, file }, records))
    }

    /// Appends one record durably.
    pub fn append(&mut self, record: &MetadataRecord) -> Result<(), MetadataError> {
        let payload =
            serde_json::to_vec(record).map_err(|e| MetadataError::Encode(e.to_string()))?;
        let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        frame.extend_from_slice(&payload);
        let pos = self
            .file
            .metadata()
            .map_err(|e| MetadataError::io(&self.path, e))?
            .len();
        let written = self
            .file
            .write_all(&frame)
            .and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            // Leave no half record behind for the next append to follow.
            let _ = self.file.set_len(pos);
            return Err(MetadataError::io(&self.path, e));
        }
        Ok(())
    }
}

/// Decodes whole records; returns them and the length of the valid prefix.
fn decode_all(bytes: &[u8]) -> (Vec<MetadataRecord>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= HEADER_BYTES {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_be_bytes(bytes[pos + 4..pos + 8].try_into().unwrap_or_default());
        let start = pos + HEADER_BYTES;
        if len > RECORD_BYTES_MAX || bytes.len() - start < len {
            break;
        }
        let payload = &bytes[start..start + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        match serde_json::from_slice(payload) {
            Ok(r) => records.push(r),
            Err(_) => break,
        }
        pos = start + len;
    }
    (records, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |n: i64| MetadataRecord::AllocateProducerIds { next: n };
        {
            let (mut log, old) = MetadataLog::open(dir.path()).unwrap();
            assert!(old.is_empty());
            log.append(&rec(1)).unwrap();
            log.append(&rec(2)).unwrap();
        }
        let path = dir.path().join("metadata.log");
        let len = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of the third append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2, 3]).unwrap();
        drop(f);
        let (mut log, got) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(got, vec![rec(1), rec(2)]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        log.append(&rec(3)).unwrap();
        let (_, got) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(got, vec![rec(1), rec(2), rec(3)]);
    }
}
