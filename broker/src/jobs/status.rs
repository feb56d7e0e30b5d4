//! [`StatusBoard`]: what every job's runtime task last reported, for the admin
//! API and the metrics page.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// Where a job's task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Starting,
    Running,
    Paused,
    WaitingForInput,
    Failed,
}

/// One job's status.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub sql: String,
    pub source: String,
    pub sink: String,
    pub state: JobState,
    pub last_error: Option<String>,
    pub records_in: u64,
    pub records_out: u64,
    /// Rates over the last commit interval.
    pub records_in_per_sec: f64,
    pub records_out_per_sec: f64,
    pub late_dropped: u64,
    pub errors: u64,
    pub watermark: Option<i64>,
    pub partitions: Vec<i32>,
    /// Records of the input behind the job's position, summed over its partitions.
    pub lag: i64,
}

impl JobStatus {
    pub fn new(name: &str, sql: &str) -> Self {
        let (source, sink) = millrace_processor::compile(sql)
            .map(|p| (p.source, p.sink))
            .unwrap_or_default();
        JobStatus {
            name: name.to_string(),
            sql: sql.to_string(),
            source,
            sink,
            state: JobState::Starting,
            last_error: None,
            records_in: 0,
            records_out: 0,
            records_in_per_sec: 0.0,
            records_out_per_sec: 0.0,
            late_dropped: 0,
            errors: 0,
            watermark: None,
            partitions: Vec::new(),
            lag: 0,
        }
    }
}

/// Status of every job, keyed by name; the runtime writes, the admin API reads.
#[derive(Debug, Default)]
pub struct StatusBoard {
    jobs: Mutex<BTreeMap<String, JobStatus>>,
}

impl StatusBoard {
    /// Changes one job's status (creating it from `sql` if unknown).
    pub fn update(&self, name: &str, sql: &str, f: impl FnOnce(&mut JobStatus)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let s = jobs
            .entry(name.to_string())
            .or_insert_with(|| JobStatus::new(name, sql));
        f(s);
    }

    pub fn remove(&self, name: &str) {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    pub fn get(&self, name: &str) -> Option<JobStatus> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all(&self) -> Vec<JobStatus> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_get_remove() {
        let b = StatusBoard::default();
        b.update(
            "t",
            "CREATE JOB t AS INSERT INTO o SELECT value FROM i",
            |s| s.state = JobState::Running,
        );
        let s = b.get("t").unwrap();
        assert_eq!((s.source.as_str(), s.sink.as_str()), ("i", "o"));
        assert_eq!(s.state, JobState::Running);
        assert_eq!(b.all().len(), 1);
        b.remove("t");
        assert!(b.get("t").is_none());
    }
}
