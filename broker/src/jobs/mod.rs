//! Stream processing jobs on the broker: the admin operations that turn job
//! submissions into metadata records (`admin`), their error (`error`), the
//! supervisor that runs a task per job (`runtime`), one job's consume-process-
//! commit loop (`task`), its state shards and routing step (`shard`), and the
//! status board the admin API reads (`status`).
//!
//! A job is cluster metadata (`MetadataRecord::CreateJob` and friends); the
//! SQL is compiled with `millrace_processor::compile` before it is accepted,
//! so the metadata log only ever holds jobs that compile.

pub mod admin;
pub mod dir;
pub mod error;
pub mod runtime;
pub mod shard;
pub mod status;
pub mod task;

pub use error::JobAdminError;
pub use runtime::JobRuntime;
pub use status::{JobState, JobStatus, StatusBoard};
