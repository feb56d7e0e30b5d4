//! The operator graph both front ends (SQL, builder) compile to.

use crate::aggregate::AggSpec;
use crate::expr::Expr;
use crate::window::Window;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitMode {
    /// One result per window and key when the window closes.
    Final,
    /// Updated rows, batched per `Job::flush` (the commit interval).
    Changes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMode {
    Event,
    Processing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Skip,
    DeadLetter,
    Stop,
}

/// The job's `WITH (...)` options.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub emit: EmitMode,
    /// How long after a window's end late records are still accepted.
    pub grace_ms: i64,
    pub time: TimeMode,
    /// Event time expression; `None` is the record timestamp.
    pub event_time: Option<Expr>,
    pub late_topic: Option<String>,
    /// A partition without data for this long stops holding the watermark back. Default 30 s:
    /// shorter closes windows sooner on sparse traffic, at the risk of dropping a slow
    /// partition's records as late.
    pub idle_timeout_ms: i64,
    pub on_error: OnError,
}

impl Default for JobOptions {
    fn default() -> JobOptions {
        JobOptions {
            emit: EmitMode::Final,
            grace_ms: 0,
            time: TimeMode::Event,
            event_time: None,
            late_topic: None,
            idle_timeout_ms: 30_000,
            on_error: OnError::Skip,
        }
    }
}

/// A row-level operator before the stateful stage, applied in order.
#[derive(Debug, Clone)]
pub enum RowOp {
    /// Keep rows where the predicate is true.
    Filter(Expr),
    /// One row per element of the array the expression yields (it becomes `Column::Item`).
    FlatMap(Expr),
}

/// What a stateless job writes.
#[derive(Debug, Clone)]
pub enum Projection {
    /// Key and value through unchanged (`SELECT value`, `SELECT key, value`, `SELECT *`).
    Passthrough,
    /// A JSON object of named columns; the input key is kept.
    Columns(Vec<(String, Expr)>),
}

/// The aggregation stage: key_by -> window -> aggregate -> having -> top-N.
#[derive(Debug, Clone)]
pub struct AggregatePlan {
    /// Group-by columns (input-side expressions) and their names.
    pub keys: Vec<(String, Expr)>,
    pub window: Option<Window>,
    pub aggs: Vec<AggSpec>,
    /// Post-aggregation predicate over `Column::Group/Agg/Window*`.
    pub having: Option<Expr>,
    /// Output columns (post-aggregation expressions).
    pub select: Vec<(String, Expr)>,
    /// Per-window order (expression, descending) and row limit.
    pub order_by: Vec<(Expr, bool)>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum Stage {
    Stateless(Projection),
    Aggregate(AggregatePlan),
}

/// A compiled job: source topic -> row operators -> stateless projection or aggregation -> sink.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub source: String,
    pub sink: String,
    pub options: JobOptions,
    pub ops: Vec<RowOp>,
    pub stage: Stage,
}

impl Plan {
    /// Whether the output topic should be compacted (unwindowed aggregates).
    pub fn compacted_output(&self) -> bool {
        matches!(&self.stage, Stage::Aggregate(a) if a.window.is_none())
    }
}
