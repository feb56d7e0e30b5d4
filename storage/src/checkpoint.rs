//! Small metadata files in the partition directory, each written atomically (temp file,
//! fsync, rename, fsync of the directory) and guarded by a CRC32C.
//!
//! - `recovery-point-offset-checkpoint`: offset below which data is known flushed.
//! - `log-start-offset-checkpoint`: log start offset moved by DeleteRecords.
//! - `clean-shutdown`: written by `close`; holds the log end offset and active segment size
//!   so the next open scans nothing.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, StorageError};
use crate::failpoints::{self, FailPoint};

pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub(crate) const LOG_START_FILE: &str = "log-start-offset-checkpoint";
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Suffix of files being written; leftovers are deleted at open.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

const OFFSETS_MAGIC: &[u8; 4] = b"MRCP";

/// `fsync` with the `Fsync` fault point in front of it.
pub(crate) fn fsync(file: &File, path: &Path) -> Result<(), StorageError> {
    failpoints::check(FailPoint::Fsync)?;
    file.sync_data().ctx("fsync", path)
}

/// Makes renames and deletes in `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    let handle = File::open(dir).ctx("open dir", dir)?;
    fsync(&handle, dir)
}

/// Replaces `dir/name` with `bytes` atomically.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).ctx("create", &tmp)?;
    file.write_all(bytes).ctx("write", &tmp)?;
    fsync(&file, &tmp)?;
    drop(file);
    std::fs::rename(&tmp, &target).ctx("rename", &target)?;
    fsync_dir(dir)
}

/// Writes a checkpoint holding a list of i64 values.
pub(crate) fn write_offsets(dir: &Path, name: &str, values: &[i64]) -> Result<(), StorageError> {
    let mut bytes = Vec::with_capacity(8 + 8 * values.len() + 4);
    bytes.extend_from_slice(OFFSETS_MAGIC);
    bytes.extend_from_slice(&(values.len() as u32).to_be_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    write_atomic(dir, name, &bytes)
}

/// Reads a checkpoint written by [`write_offsets`]. A missing file is `Ok(None)`; a file
/// that fails its checks is an error (callers decide whether to fall back).
pub(crate) fn read_offsets(dir: &Path, name: &str) -> Result<Option<Vec<i64>>, StorageError> {
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx("read", &path),
    };
    if bytes.len() < 12 || &bytes[..4] != OFFSETS_MAGIC {
        return Err(StorageError::corrupt_file(&path, "bad header"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return Err(StorageError::corrupt_file(&path, "crc mismatch"));
    }
    let count = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
    if body.len() != 8 + 8 * count {
        return Err(StorageError::corrupt_file(&path, "length mismatch"));
    }
    let values = body[8..]
        .chunks_exact(8)
        .map(|c| i64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Ok(Some(values))
}

/// Reads a single-offset checkpoint, treating a damaged file as missing.
pub(crate) fn read_offset_or_none(dir: &Path, name: &str) -> Option<i64> {
    match read_offsets(dir, name) {
        Ok(Some(values)) if values.len() == 1 => Some(values[0]),
        _ => None,
    }
}
