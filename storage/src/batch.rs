//! Kafka v2 record batch: the on-disk and on-wire format (they are the same bytes).
//!
//! ```text
//! 0  baseOffset i64          | 8  batchLength i32 (bytes after this field)
//! 12 partitionLeaderEpoch i32| 16 magic i8 = 2      | 17 crc u32 (CRC32C of bytes 21..end)
//! 21 attributes i16          | 23 lastOffsetDelta i32 | 27 baseTimestamp i64
//! 35 maxTimestamp i64        | 43 producerId i64     | 51 producerEpoch i16
//! 53 baseSequence i32        | 57 recordsCount i32   | 61 records...
//! ```
//! Only `baseOffset` and `partitionLeaderEpoch` change on append; the CRC does not cover them.

use crate::error::StorageError;
use crate::records::Compression;

/// Size of the fixed batch header, including the 12-byte log overhead.
pub const HEADER_BYTES: usize = 61;
/// `baseOffset` + `batchLength`: the bytes not counted in `batchLength`.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only supported magic byte.
pub const MAGIC_V2: i8 = 2;
/// Smallest encoded record (7 single-byte varints); bounds `recordsCount` of plain batches.
pub const RECORD_BYTES_MIN: usize = 7;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const LENGTH_AT: usize = 8;
pub(crate) const LEADER_EPOCH_AT: usize = 12;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const ATTRIBUTES_AT: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(crate) const BASE_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
pub(crate) const PRODUCER_ID_AT: usize = 43;
pub(crate) const PRODUCER_EPOCH_AT: usize = 51;
pub(crate) const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORDS_COUNT_AT: usize = 57;

const _: () = assert!(RECORDS_COUNT_AT + 4 == HEADER_BYTES);
const _: () = assert!(MAGIC_AT + 1 == CRC_AT && CRC_AT + 4 == ATTRIBUTES_AT);

/// Attribute bit: timestamps are LogAppendTime.
pub const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;
/// Attribute bit: part of a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 1 << 4;
/// Attribute bit: control batch (transaction markers).
pub const ATTR_CONTROL: i16 = 1 << 5;
/// Attribute bits 0-2: compression codec.
pub const ATTR_COMPRESSION_MASK: i16 = 0x7;

/// A read-only view of one batch's header over a byte slice holding the whole batch.
///
/// Constructed by [`BatchHeader::parse`] (framing only) or [`validate`] (framing + CRC);
/// the slice is exactly one batch long.
#[derive(Debug, Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> BatchHeader<'a> {
    /// Checks framing (header present, length sane, whole batch present, magic 2) of the
    /// batch at the start of `buf` and returns a view of exactly that batch.
    /// `position` is only used in error messages.
    pub fn parse(buf: &'a [u8], position: usize) -> Result<Self, StorageError> {
        if buf.len() < LOG_OVERHEAD_BYTES {
            return Err(StorageError::corrupt(position, "truncated batch header"));
        }
        let batch_length = read_i32(buf, LENGTH_AT);
        let min_length = (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
        if batch_length < min_length {
            return Err(StorageError::corrupt(
                position,
                format!("batch length {batch_length} below header size"),
            ));
        }
        let total = LOG_OVERHEAD_BYTES
            .checked_add(batch_length as usize)
            .ok_or_else(|| StorageError::corrupt(position, "batch length overflows"))?;
        if total > buf.len() {
            return Err(StorageError::corrupt(
                position,
                format!(
                    "batch of {total} bytes runs past the {} available",
                    buf.len()
                ),
            ));
        }
        let header = BatchHeader {
            bytes: &buf[..total],
        };
        if header.magic() != MAGIC_V2 {
            return Err(StorageError::corrupt(
                position,
                format!("unsupported magic {}", header.magic()),
            ));
        }
        Ok(header)
    }

    /// The whole batch.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Total size in bytes, log overhead included.
    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }
    pub fn base_offset(&self) -> i64 {
        read_i64(self.bytes, BASE_OFFSET_AT)
    }
    pub fn batch_length(&self) -> i32 {
        read_i32(self.bytes, LENGTH_AT)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(self.bytes, LEADER_EPOCH_AT)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_AT] as i8
    }
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(fixed(self.bytes, CRC_AT))
    }
    pub fn attributes(&self) -> i16 {
        i16::from_be_bytes(fixed(self.bytes, ATTRIBUTES_AT))
    }
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(self.bytes, LAST_OFFSET_DELTA_AT)
    }
    pub fn base_timestamp(&self) -> i64 {
        read_i64(self.bytes, BASE_TIMESTAMP_AT)
    }
    pub fn max_timestamp(&self) -> i64 {
        read_i64(self.bytes, MAX_TIMESTAMP_AT)
    }
    pub fn producer_id(&self) -> i64 {
        read_i64(self.bytes, PRODUCER_ID_AT)
    }
    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(fixed(self.bytes, PRODUCER_EPOCH_AT))
    }
    pub fn base_sequence(&self) -> i32 {
        read_i32(self.bytes, BASE_SEQUENCE_AT)
    }
    pub fn records_count(&self) -> i32 {
        read_i32(self.bytes, RECORDS_COUNT_AT)
    }
    /// `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }
    /// Compression codec from attribute bits 0-2; `None` for an unknown codec.
    pub fn compression(&self) -> Option<Compression> {
        Compression::from_bits(self.attributes() & ATTR_COMPRESSION_MASK)
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & ATTR_LOG_APPEND_TIME != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    /// The batch comes from an idempotent producer (tracked by the producer state).
    pub fn has_producer_sequence(&self) -> bool {
        self.producer_id() >= 0 && self.base_sequence() >= 0
    }
    /// The records section (possibly compressed).
    pub fn records_bytes(&self) -> &'a [u8] {
        &self.bytes[HEADER_BYTES..]
    }
    /// CRC32C over attributes..end, as stored in the `crc` field.
    pub fn computed_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES_AT..])
    }
}

/// Fully validates the batch at the start of `buf`: framing, magic, CRC32C, codec and
/// record-count sanity. Does not decode records.
pub fn validate(buf: &[u8], position: usize) -> Result<BatchHeader<'_>, StorageError> {
    let header = BatchHeader::parse(buf, position)?;
    let computed = header.computed_crc();
    if computed != header.crc() {
        return Err(StorageError::corrupt(
            position,
            format!("crc {:#010x} != computed {computed:#010x}", header.crc()),
        ));
    }
    let count = header.records_count();
    let delta = header.last_offset_delta();
    if count < 0 || delta < 0 || i64::from(count) > i64::from(delta) + 1 {
        return Err(StorageError::corrupt(
            position,
            format!("records count {count} does not fit last offset delta {delta}"),
        ));
    }
    let Some(compression) = header.compression() else {
        return Err(StorageError::corrupt(position, "unknown compression codec"));
    };
    if compression == Compression::None
        && (count as usize).saturating_mul(RECORD_BYTES_MIN) > header.records_bytes().len()
    {
        return Err(StorageError::corrupt(
            position,
            format!("{count} records cannot fit the batch"),
        ));
    }
    Ok(header)
}

/// Iterates the batches laid end to end in `buf`, checking framing only (no CRC).
/// Stops at the first framing error, which it yields once.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter {
            buf,
            position: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    /// `(position in buf, header)`.
    type Item = Result<(usize, BatchHeader<'a>), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        match BatchHeader::parse(&self.buf[self.position..], self.position) {
            Ok(header) => {
                let at = self.position;
                self.position += header.total_bytes();
                Some(Ok((at, header)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The first 16 bytes of a batch with `baseOffset` and `partitionLeaderEpoch` replaced:
/// what the log writes in place of the caller's first 16 bytes.
pub(crate) fn patched_prefix(batch: &[u8], base_offset: i64, leader_epoch: i32) -> [u8; 16] {
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&batch[..16]);
    prefix[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    prefix[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    prefix
}

/// Rewrites a batch for LogAppendTime: max timestamp = `now_ms`, timestamp-type bit set,
/// CRC recomputed. This is the one path that copies a batch.
pub(crate) fn stamp_log_append_time(batch: &[u8], now_ms: i64) -> Vec<u8> {
    let mut out = batch.to_vec();
    let attributes = i16::from_be_bytes(fixed(&out, ATTRIBUTES_AT)) | ATTR_LOG_APPEND_TIME;
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

fn fixed<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

pub(crate) fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(fixed(buf, at))
}

pub(crate) fn read_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(fixed(buf, at))
}
