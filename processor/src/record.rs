//! Records in and out of a job, and what a job hands back to its runtime.

/// One input record, as the runtime read it from a source partition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp in epoch milliseconds (the default event time).
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// A record with a text value and no key (tests and examples).
    pub fn text(partition: i32, offset: i64, timestamp: i64, value: &str) -> Record {
        Record {
            partition,
            offset,
            timestamp,
            key: None,
            value: Some(value.as_bytes().to_vec()),
            headers: Vec::new(),
        }
    }
}

/// One record for the output (or late) topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutputRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

impl OutputRecord {
    /// Key as lossy text, for tests and logs.
    pub fn key_str(&self) -> String {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default()
    }

    /// Value as lossy text, for tests and logs.
    pub fn value_str(&self) -> String {
        self.value
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

/// A record the job could not process, for the dead-letter topic (`on_error = 'dead_letter'`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub record: Record,
    pub error: String,
}

/// What `Job::process` and `Job::advance` hand to the runtime, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A result for the job's output topic.
    Result(OutputRecord),
    /// A record too late for its window, for `late_topic` (only when that option is set).
    Late(OutputRecord),
    /// A record that failed under `on_error = 'dead_letter'`.
    DeadLetter(DeadLetter),
}

/// One entry of the job's compacted changelog topic (`_job.N.state`): `value: None` is a
/// tombstone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangelogEntry {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}
