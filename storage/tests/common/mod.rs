//! Shared helpers: a harness that runs one test body against every `Log` implementation.
#![allow(dead_code)]

use std::ops::{Deref, DerefMut};

use millrace_storage::batch::{validate, BatchIter};
use millrace_storage::{Log, LogConfig, MemoryLog, PartitionLog};
use tempfile::TempDir;

/// A log plus whatever keeps it alive (the temp dir of a file log).
pub struct Harness {
    pub log: Box<dyn Log>,
    pub dir: Option<TempDir>,
}

impl Deref for Harness {
    type Target = dyn Log;
    fn deref(&self) -> &Self::Target {
        &*self.log
    }
}

impl DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.log
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    File,
    Memory,
}

pub fn make(kind: Kind, config: LogConfig) -> Harness {
    match kind {
        Kind::File => {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = PartitionLog::open(dir.path(), config, 0).expect("open");
            Harness {
                log: Box::new(log),
                dir: Some(dir),
            }
        }
        Kind::Memory => Harness {
            log: Box::new(MemoryLog::new(config).expect("memory log")),
            dir: None,
        },
    }
}

/// Defines `mod $name { #[test] fn file(); #[test] fn memory(); }` running `$body(Kind)`.
#[macro_export]
macro_rules! suite {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn file() {
                ($body)($crate::common::Kind::File)
            }
            #[test]
            fn memory() {
                ($body)($crate::common::Kind::Memory)
            }
        }
    };
}

/// Small segments and dense indexes so tests exercise rolls and index lookups.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

/// One read batch: `(base offset, last offset, bytes)`.
pub type ReadBatch = (i64, i64, Vec<u8>);

/// Reads the whole log from its start, checking CRCs and offset order.
pub fn read_all(log: &dyn Log) -> Vec<ReadBatch> {
    let mut out: Vec<ReadBatch> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 64 * 1024, i64::MAX).expect("read");
        assert!(!bytes.is_empty(), "empty read at {offset} below log end");
        for item in BatchIter::new(&bytes) {
            let (pos, header) = item.expect("framing");
            validate(header.bytes(), pos).expect("valid batch");
            if let Some(last) = out.last() {
                assert!(header.base_offset() > last.1, "offsets must increase");
            }
            out.push((
                header.base_offset(),
                header.last_offset(),
                header.bytes().to_vec(),
            ));
            offset = header.last_offset() + 1;
        }
    }
    out
}

/// Batch bytes without the 16 bytes the log rewrites (base offset, length, leader epoch).
pub fn body(batch: &[u8]) -> &[u8] {
    &batch[16..]
}
