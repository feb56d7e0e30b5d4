//! Stream processing jobs on the broker: the admin operations that turn job
//! submissions into metadata records (`admin`), and their error (`error`).
//!
//! A job is cluster metadata (`MetadataRecord::CreateJob` and friends); the
//! SQL is compiled with `millrace_processor::compile` before it is accepted,
//! so the metadata log only ever holds jobs that compile.

pub mod admin;
pub mod error;

pub use error::JobAdminError;
