//! Records inside a v2 batch: decoding (decompressing through `kafka_protocol::compression`
//! when needed) and re-encoding for compaction.
//!
//! ```text
//! record: length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//!         | keyLength varint | key | valueLength varint | value | headerCount varint | headers
//! header: keyLength varint | key | valueLength varint | value     (lengths -1 = null)
//! ```

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};

use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::error::StorageError;

/// Compression codec of a batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn from_bits(bits: i16) -> Option<Self> {
        match bits {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// One header of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// One decoded record; slices borrow from the batch (or its decompressed copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Absolute offset: batch base offset + offset delta.
    pub offset: i64,
    /// Effective timestamp: the batch max timestamp for LogAppendTime batches.
    pub timestamp: i64,
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub attributes: i8,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<RecordHeader<'a>>,
}

/// The records of one batch, decompressed if the batch was compressed.
pub struct BatchRecords<'a> {
    header: BatchHeader<'a>,
    data: Cow<'a, [u8]>,
}

impl<'a> BatchRecords<'a> {
    /// Prepares record iteration; decompresses compressed batches (the only copy made).
    pub fn new(header: BatchHeader<'a>) -> Result<Self, StorageError> {
        let raw = header.records_bytes();
        let compression = header
            .compression()
            .ok_or_else(|| StorageError::corrupt(0, "unknown compression codec"))?;
        let data = match compression {
            Compression::None => Cow::Borrowed(raw),
            other => Cow::Owned(decompress(other, raw)?.to_vec()),
        };
        Ok(BatchRecords { header, data })
    }

    pub fn header(&self) -> &BatchHeader<'a> {
        &self.header
    }

    /// Iterates exactly `records_count` records; a short or overlong body is an error.
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter {
            base_offset: self.header.base_offset(),
            base_timestamp: self.header.base_timestamp(),
            log_append_time: self
                .header
                .is_log_append_time()
                .then(|| self.header.max_timestamp()),
            remaining: self.header.records_count().max(0) as usize,
            cursor: Cursor { buf: &self.data },
        }
    }
}

/// Iterator over the records of a [`BatchRecords`].
pub struct RecordIter<'a> {
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    remaining: usize,
    cursor: Cursor<'a>,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            if !self.cursor.buf.is_empty() {
                self.cursor.buf = &[];
                return Some(Err(StorageError::corrupt(0, "bytes after the last record")));
            }
            return None;
        }
        self.remaining -= 1;
        let result = self.decode_one();
        if result.is_err() {
            self.remaining = 0;
            self.cursor.buf = &[];
        }
        Some(result)
    }
}

impl<'a> RecordIter<'a> {
    fn decode_one(&mut self) -> Result<Record<'a>, StorageError> {
        let length = self.cursor.varint()?;
        let length = usize::try_from(length)
            .map_err(|_| StorageError::corrupt(0, "negative record length"))?;
        let mut body = Cursor {
            buf: self.cursor.take(length)?,
        };
        let attributes = body.take(1)?[0] as i8;
        let timestamp_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        let key = body.nullable_bytes()?;
        let value = body.nullable_bytes()?;
        let header_count = body.varint()?;
        let header_count = usize::try_from(header_count)
            .map_err(|_| StorageError::corrupt(0, "negative header count"))?;
        if header_count > body.buf.len() {
            return Err(StorageError::corrupt(0, "header count exceeds record"));
        }
        let mut headers = Vec::with_capacity(header_count);
        for _ in 0..header_count {
            let key = body
                .nullable_bytes()?
                .ok_or_else(|| StorageError::corrupt(0, "null header key"))?;
            let value = body.nullable_bytes()?;
            headers.push(RecordHeader { key, value });
        }
        if !body.buf.is_empty() {
            return Err(StorageError::corrupt(0, "bytes after record headers"));
        }
        let timestamp = self
            .log_append_time
            .unwrap_or_else(|| self.base_timestamp.wrapping_add(timestamp_delta));
        Ok(Record {
            offset: self.base_offset + i64::from(offset_delta),
            timestamp,
            offset_delta,
            timestamp_delta,
            attributes,
            key,
            value,
            headers,
        })
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if n > self.buf.len() {
            return Err(StorageError::corrupt(0, "record runs past its batch"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn varlong(&mut self) -> Result<i64, StorageError> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.take(1)?[0];
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(StorageError::corrupt(0, "varint too long"))
    }

    fn varint(&mut self) -> Result<i32, StorageError> {
        i32::try_from(self.varlong()?).map_err(|_| StorageError::corrupt(0, "varint overflow"))
    }

    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, StorageError> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }
}

fn decompress(compression: Compression, raw: &[u8]) -> Result<Bytes, StorageError> {
    let mut input = raw;
    let grab = |buf: &mut Bytes| Ok(std::mem::take(buf));
    let result = match compression {
        Compression::None => return Ok(Bytes::copy_from_slice(raw)),
        Compression::Gzip => codec::Gzip::decompress(&mut input, grab),
        Compression::Snappy => codec::Snappy::decompress(&mut input, grab),
        Compression::Lz4 => codec::Lz4::decompress(&mut input, grab),
        Compression::Zstd => codec::Zstd::decompress(&mut input, grab),
    };
    result.map_err(|e| StorageError::corrupt(0, format!("decompression failed: {e}")))
}

fn compress(compression: Compression, plain: &[u8], out: &mut Vec<u8>) -> Result<(), StorageError> {
    let fill = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(plain);
        Ok(())
    };
    let result = match compression {
        Compression::None => {
            out.extend_from_slice(plain);
            return Ok(());
        }
        Compression::Gzip => codec::Gzip::compress(out, fill),
        Compression::Snappy => codec::Snappy::compress(out, fill),
        Compression::Lz4 => codec::Lz4::compress(out, fill),
        Compression::Zstd => codec::Zstd::compress(out, fill),
    };
    result.map_err(|e| StorageError::corrupt(0, format!("compression failed: {e}")))
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Appends one encoded record (length-prefixed) to `out`.
pub fn encode_record(out: &mut Vec<u8>, record: &Record<'_>) {
    let mut body = Vec::with_capacity(16 + record.value.map_or(0, <[u8]>::len));
    body.push(record.attributes as u8);
    put_varlong(&mut body, record.timestamp_delta);
    put_varlong(&mut body, i64::from(record.offset_delta));
    put_nullable(&mut body, record.key);
    put_nullable(&mut body, record.value);
    put_varlong(&mut body, record.headers.len() as i64);
    for header in &record.headers {
        put_nullable(&mut body, Some(header.key));
        put_nullable(&mut body, header.value);
    }
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// Re-encodes `template` keeping only `records` (a subset of its own records): same base
/// offset, last offset delta, timestamps, producer fields, attributes and codec; new count
/// and CRC. Offsets of the kept records do not change.
pub fn rebuild_batch(
    template: &BatchHeader<'_>,
    records: &[Record<'_>],
    out: &mut Vec<u8>,
) -> Result<(), StorageError> {
    let compression = template
        .compression()
        .ok_or_else(|| StorageError::corrupt(0, "unknown compression codec"))?;
    let start = out.len();
    out.extend_from_slice(&template.bytes()[..HEADER_BYTES]);
    let mut plain = Vec::new();
    for record in records {
        encode_record(&mut plain, record);
    }
    compress(compression, &plain, out)?;
    let batch_length = i32::try_from(out.len() - start - batch::LOG_OVERHEAD_BYTES)
        .map_err(|_| StorageError::corrupt(0, "rebuilt batch too large"))?;
    let count = records.len() as i32;
    out[start + batch::LENGTH_AT..start + batch::LENGTH_AT + 4]
        .copy_from_slice(&batch_length.to_be_bytes());
    out[start + batch::RECORDS_COUNT_AT..start + HEADER_BYTES]
        .copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&out[start + batch::ATTRIBUTES_AT..]);
    out[start + batch::CRC_AT..start + batch::CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{build_batch, ProducerFields, TestRecord};

    fn compressed_copy(batch: &[u8], codec: Compression, bits: i16) -> Vec<u8> {
        let header = batch::validate(batch, 0).unwrap();
        let records_set = BatchRecords::new(header).unwrap();
        let records: Vec<_> = records_set.iter().map(Result::unwrap).collect();
        let mut template = batch.to_vec();
        let attributes = (header.attributes() & !batch::ATTR_COMPRESSION_MASK) | bits;
        template[batch::ATTRIBUTES_AT..batch::ATTRIBUTES_AT + 2]
            .copy_from_slice(&attributes.to_be_bytes());
        let template = BatchHeader::parse(&template, 0).unwrap();
        let mut out = Vec::new();
        rebuild_batch(&template, &records, &mut out).unwrap();
        assert_eq!(batch::validate(&out, 0).unwrap().compression(), Some(codec));
        out
    }

    #[test]
    fn records_round_trip_through_every_codec() {
        let records: Vec<_> = (0..10)
            .map(|i| {
                TestRecord::new(
                    Some(format!("key{i}").as_bytes()),
                    (i != 4).then_some(b"value".as_slice()),
                    100 + i,
                )
            })
            .collect();
        let plain = build_batch(&records, ProducerFields::default());
        for (codec, bits) in [
            (Compression::Gzip, 1),
            (Compression::Snappy, 2),
            (Compression::Lz4, 3),
            (Compression::Zstd, 4),
        ] {
            let packed = compressed_copy(&plain, codec, bits);
            let header = batch::validate(&packed, 0).unwrap();
            let decoded_set = BatchRecords::new(header).unwrap();
            let decoded: Vec<_> = decoded_set.iter().map(Result::unwrap).collect();
            assert_eq!(decoded.len(), 10);
            for (i, r) in decoded.iter().enumerate() {
                assert_eq!(r.offset, i as i64);
                assert_eq!(r.timestamp, 100 + i as i64);
                assert_eq!(r.key, Some(format!("key{i}").as_bytes()));
                assert_eq!(r.value.is_none(), i == 4);
            }
        }
    }

    #[test]
    fn rebuilt_subset_keeps_offsets_and_crc() {
        let records: Vec<_> = (0..5)
            .map(|i| TestRecord::new(Some(b"k"), Some(b"v"), i))
            .collect();
        let plain = build_batch(&records, ProducerFields::default());
        let header = batch::validate(&plain, 0).unwrap();
        let all_set = BatchRecords::new(header).unwrap();
        let all: Vec<_> = all_set.iter().map(Result::unwrap).collect();
        let mut out = Vec::new();
        rebuild_batch(&header, &all[3..4], &mut out).unwrap();
        let rebuilt = batch::validate(&out, 0).unwrap();
        assert_eq!(rebuilt.last_offset_delta(), 4, "last offset delta is kept");
        assert_eq!(rebuilt.records_count(), 1);
        let kept_set = BatchRecords::new(rebuilt).unwrap();
        let kept: Vec<_> = kept_set.iter().map(Result::unwrap).collect();
        assert_eq!((kept[0].offset, kept[0].timestamp), (3, 3));
    }
}
