//! Millrace stream processing core: compiled jobs (SQL or Rust builder) that turn input records
//! into windowed results, late records, dead letters and changelog entries.
//!
//! **Owns** the operator graph ([`Plan`]), windows and watermarks, aggregation state and its
//! changelog representation, the SQL front end and the typed builder.
//!
//! **Must not depend on** tokio, the broker or the client: the core is sans-IO. Records and the
//! wall clock come in as arguments ([`Job::process`], [`Job::advance`]); outputs and changelog
//! entries go out as return values ([`Job::flush`]). A runtime elsewhere consumes the input as
//! consumer group `_job.N`, writes results and the `_job.N.state` changelog, then commits
//! offsets. That keeps every semantic testable alone and deterministic.
//!
//! Module map:
//! - `record`: [`Record`] in, [`OutputRecord`]/[`Output`] out, [`ChangelogEntry`].
//! - `value`: [`Value`], SQL comparison, JSON encoding.
//! - `expr`, `functions`: compiled expressions and scalar functions.
//! - `aggregate`: aggregate functions and mergeable accumulators.
//! - `window`: tumbling/hopping/session specs; hopping windows as panes of gcd(size, slide).
//! - `plan`: the operator graph and job options.
//! - `state`: keyed window state, window closing, changelog encoding.
//! - `sliding`: running rows of hopping windows, so a slide costs its entering and leaving panes.
//! - `hash`: the seeded fast hasher of the state maps.
//! - `job`: [`Job`], the runtime-facing state machine (watermarks, emit modes, on_error).
//! - `encode`: output keys and JSON values.
//! - `sql`: `CREATE JOB ... AS INSERT INTO ... SELECT ...` -> [`Plan`].
//! - `builder`: [`Pipeline`], the typed Rust API -> [`Plan`].

pub mod aggregate;
pub mod builder;
pub mod encode;
pub mod error;
pub mod expr;
pub mod functions;
pub mod hash;
pub mod job;
pub mod plan;
pub mod record;
pub mod sliding;
pub mod sql;
pub mod state;
pub mod value;
pub mod window;

pub use aggregate::{AggKind, AggSpec};
pub use builder::Pipeline;
pub use error::{ProcessorError, RecordError};
pub use job::{ErrorSample, Job, JobStats, Route};
pub use plan::{EmitMode, JobOptions, OnError, Plan, TimeMode};
pub use record::{ChangelogEntry, DeadLetter, Output, OutputRecord, Record};
pub use sql::compile;
pub use value::Value;
pub use window::Window;
