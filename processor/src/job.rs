//! `Job`: one instance of a compiled plan. Sans-IO: records and time come in as arguments;
//! results, late records, dead letters and changelog entries go out as return values.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::encode::{encode_key, encode_object, stable_hash};
use crate::error::{ProcessorError, RecordError};
use crate::expr::{GroupRow, InputRow};
use crate::plan::{AggregatePlan, EmitMode, OnError, Plan, Projection, RowOp, Stage, TimeMode};
use crate::record::{ChangelogEntry, DeadLetter, Output, OutputRecord, Record};
use crate::state::{GroupResult, Store, Update};
use crate::value::Value;

/// Changelog key of the job's own progress (watermarks, counters).
const META_KEY: &[u8] = b"M";

/// A bad record kept for `job describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSample {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
}

/// Counters for `job describe` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStats {
    pub records_in: u64,
    pub records_out: u64,
    /// Records too late for their window, dropped (no `late_topic`).
    pub late_dropped: u64,
    /// Records too late for their window, routed to `late_topic`.
    pub late_routed: u64,
    /// Records that failed (skipped, dead-lettered or stopping the job).
    pub errors: u64,
    pub last_error: Option<ErrorSample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct PartitionClock {
    /// Highest event time seen (None: assigned, no data yet).
    max_event_time: Option<i64>,
    /// Wall-clock time (from `advance`) of the last record.
    last_seen: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    closed_wm: Option<i64>,
    last_closed_end: Option<i64>,
    now: i64,
    clocks: Vec<(i32, PartitionClock)>,
    stats: JobStats,
}

/// What one record turned into before it touches state.
enum Row {
    Out(OutputRecord),
    Agg {
        key: Vec<u8>,
        group: Vec<Value>,
        args: Vec<Value>,
    },
}

/// A running job instance.
pub struct Job {
    plan: Plan,
    store: Option<Store>,
    clocks: BTreeMap<i32, PartitionClock>,
    now: i64,
    /// The watermark up to which windows have been closed.
    closed_wm: Option<i64>,
    stats: JobStats,
    /// (window start, window end, key) rows changed since the last flush (`emit = 'changes'`).
    changed: BTreeSet<(i64, i64, Vec<u8>)>,
    pending: Vec<OutputRecord>,
    shard: Option<(u64, u64)>,
    scratch: Vec<(i64, i64)>,
}

impl Job {
    pub fn new(plan: Plan) -> Job {
        let store = match &plan.stage {
            Stage::Aggregate(a) => Some(Store::new(
                a.window,
                a.aggs.iter().map(|s| s.kind).collect(),
            )),
            Stage::Stateless(_) => None,
        };
        Job {
            plan,
            store,
            clocks: BTreeMap::new(),
            now: 0,
            closed_wm: None,
            stats: JobStats::default(),
            changed: BTreeSet::new(),
            pending: Vec::new(),
            shard: None,
            scratch: Vec::new(),
        }
    }

    /// Compile a `CREATE JOB` statement and start an instance of it.
    pub fn from_sql(sql: &str) -> Result<Job, ProcessorError> {
        crate::sql::compile(sql).map(Job::new)
    }

    /// Rebuild an instance from its changelog (entries in topic order; later ones win).
    pub fn restore(
        plan: Plan,
        entries: impl IntoIterator<Item = ChangelogEntry>,
    ) -> Result<Job, ProcessorError> {
        let mut job = Job::new(plan);
        let mut latest: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for e in entries {
            latest.insert(e.key, e.value);
        }
        for (key, value) in latest {
            let Some(value) = value else { continue };
            if key == META_KEY {
                let meta: Meta = serde_json::from_slice(&value)
                    .map_err(|e| ProcessorError::Changelog(format!("job progress: {e}")))?;
                job.closed_wm = meta.closed_wm;
                job.now = meta.now;
                job.clocks = meta.clocks.into_iter().collect();
                job.stats = meta.stats;
                if let Some(store) = &mut job.store {
                    store.set_last_closed_end(meta.last_closed_end);
                }
            } else if let Some(store) = &mut job.store {
                store.restore(&key, &value)?;
            }
        }
        Ok(job)
    }

    /// Keep only the keys of shard `index` of `count` (every instance reads all input): models
    /// the state split a repartition topic gives, so parallel instances can be tested alone.
    pub fn with_shard(mut self, index: u64, count: u64) -> Job {
        self.shard = (count > 1).then_some((index, count.max(1)));
        self
    }

    /// Declare the input partitions this instance owns: each holds the watermark back until it
    /// has data or goes idle.
    pub fn assign_partitions(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.clocks.entry(*p).or_insert(PartitionClock {
                max_event_time: None,
                last_seen: self.now,
            });
        }
        self.clocks.retain(|p, _| partitions.contains(p));
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn stats(&self) -> &JobStats {
        &self.stats
    }

    /// The watermark up to which windows are closed.
    pub fn watermark(&self) -> Option<i64> {
        self.closed_wm
    }

    /// Process one input record.
    pub fn process(&mut self, record: &Record) -> Result<Vec<Output>, ProcessorError> {
        let mut out = Vec::new();
        self.stats.records_in += 1;
        let event_time = match self.event_time(record) {
            Ok(t) => t,
            Err(e) => {
                self.on_error(record, e, &mut out)?;
                return Ok(out);
            }
        };
        let rows = match self.rows(record) {
            Ok(rows) => rows,
            Err(e) => {
                self.on_error(record, e, &mut out)?;
                self.observe(record.partition, event_time, &mut out);
                return Ok(out);
            }
        };
        let has_agg = rows.iter().any(|r| matches!(r, Row::Agg { .. }));
        let late = has_agg
            && self
                .store
                .as_ref()
                .is_some_and(|s| s.is_late(event_time, self.closed_wm));
        if late {
            self.late(record, &mut out);
        } else {
            for row in rows {
                self.apply(row, event_time, record.timestamp, &mut out);
            }
        }
        self.observe(record.partition, event_time, &mut out);
        Ok(out)
    }

    /// Move the wall clock: closes processing-time windows, and event-time windows held back by
    /// partitions that went idle.
    pub fn advance(&mut self, now_ms: i64) -> Vec<Output> {
        self.now = self.now.max(now_ms);
        let mut out = Vec::new();
        if let Some(wm) = self.current_watermark() {
            self.close_windows(wm, &mut out);
        }
        out
    }

    /// The commit point: results batched for `emit = 'changes'` and the changelog entries to
    /// write before the input offsets are committed.
    pub fn flush(&mut self) -> (Vec<OutputRecord>, Vec<ChangelogEntry>) {
        let changed = std::mem::take(&mut self.changed);
        for (start, end, key) in changed {
            let row = self.store.as_ref().and_then(|s| s.row(start, end, &key));
            if let Some(r) = row {
                self.render_change(&r);
            }
        }
        let outputs = std::mem::take(&mut self.pending);
        self.stats.records_out += outputs.len() as u64;
        let mut changelog = match &mut self.store {
            Some(s) => s.take_changelog(),
            None => Vec::new(),
        };
        let meta = Meta {
            closed_wm: self.closed_wm,
            last_closed_end: self.store.as_ref().and_then(Store::last_closed_end),
            now: self.now,
            clocks: self.clocks.iter().map(|(p, c)| (*p, *c)).collect(),
            stats: self.stats.clone(),
        };
        if let Ok(v) = serde_json::to_vec(&meta) {
            changelog.push(ChangelogEntry {
                key: META_KEY.to_vec(),
                value: Some(v),
            });
        }
        (outputs, changelog)
    }

    /// End of a bounded input: close every open window.
    pub fn finish(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.close_windows(i64::MAX - 1, &mut out);
        out
    }

    fn event_time(&self, record: &Record) -> Result<i64, RecordError> {
        if self.plan.options.time == TimeMode::Processing {
            return Ok(self.now);
        }
        match &self.plan.options.event_time {
            None => Ok(record.timestamp),
            Some(e) => {
                let v = e.eval_input(&InputRow::new(record, None))?;
                v.as_i64().ok_or_else(|| {
                    RecordError::new(format!(
                        "event_time is {} {}, expected epoch milliseconds",
                        v.type_name(),
                        v.to_json_string()
                    ))
                })
            }
        }
    }

    fn rows(&self, record: &Record) -> Result<Vec<Row>, RecordError> {
        let mut rows = Vec::new();
        self.expand(record, &self.plan.ops, None, &mut rows)?;
        Ok(rows)
    }

    fn expand(
        &self,
        record: &Record,
        ops: &[RowOp],
        item: Option<&Value>,
        rows: &mut Vec<Row>,
    ) -> Result<(), RecordError> {
        let Some((op, rest)) = ops.split_first() else {
            rows.push(self.finish_row(record, item)?);
            return Ok(());
        };
        let input = InputRow::new(record, item);
        match op {
            RowOp::Filter(p) => {
                if p.eval_input(&input)?.is_true() {
                    self.expand(record, rest, item, rows)?;
                }
            }
            RowOp::FlatMap(e) => match e.eval_input(&input)? {
                Value::Null => {}
                Value::Array(items) => {
                    for it in &items {
                        self.expand(record, rest, Some(it), rows)?;
                    }
                }
                Value::Json(serde_json::Value::Array(items)) => {
                    for it in items.iter().map(Value::from_json) {
                        self.expand(record, rest, Some(&it), rows)?;
                    }
                }
                v => self.expand(record, rest, Some(&v), rows)?,
            },
        }
        Ok(())
    }

    fn finish_row(&self, record: &Record, item: Option<&Value>) -> Result<Row, RecordError> {
        let input = InputRow::new(record, item);
        match &self.plan.stage {
            Stage::Stateless(Projection::Passthrough) => Ok(Row::Out(OutputRecord {
                key: record.key.clone(),
                value: record.value.clone(),
                timestamp: record.timestamp,
            })),
            Stage::Stateless(Projection::Columns(cols)) => {
                let mut fields = Vec::with_capacity(cols.len());
                for (name, e) in cols {
                    fields.push((name.as_str(), e.eval_input(&input)?));
                }
                Ok(Row::Out(OutputRecord {
                    key: record.key.clone(),
                    value: Some(encode_object(fields)),
                    timestamp: record.timestamp,
                }))
            }
            Stage::Aggregate(a) => {
                let mut group = Vec::with_capacity(a.keys.len());
                for (_, e) in &a.keys {
                    group.push(e.eval_input(&input)?);
                }
                let mut args = Vec::with_capacity(a.aggs.len());
                for spec in &a.aggs {
                    args.push(match &spec.arg {
                        None => Value::Bool(true),
                        Some(e) => e.eval_input(&input)?,
                    });
                }
                Ok(Row::Agg {
                    key: encode_key(&group),
                    group,
                    args,
                })
            }
        }
    }

    fn in_shard(&self, key: &[u8]) -> bool {
        self.shard.is_none_or(|(i, n)| stable_hash(key) % n == i)
    }

    fn apply(&mut self, row: Row, event_time: i64, timestamp: i64, out: &mut Vec<Output>) {
        match row {
            Row::Out(r) => {
                if self.in_shard(r.key.as_deref().unwrap_or_default()) {
                    self.stats.records_out += 1;
                    out.push(Output::Result(r));
                }
            }
            Row::Agg { key, group, args } => {
                if !self.in_shard(&key) {
                    return;
                }
                let track = self.plan.options.emit == EmitMode::Changes || self.is_unwindowed();
                let Some(store) = &mut self.store else { return };
                self.scratch.clear();
                let update = Update {
                    key,
                    group,
                    args: &args,
                    event_time,
                    timestamp,
                };
                let key = track.then(|| update.key.clone());
                store.apply(update, track.then_some(&mut self.scratch));
                if let Some(key) = key {
                    for (s, e) in self.scratch.drain(..) {
                        self.changed.insert((s, e, key.clone()));
                    }
                }
            }
        }
    }

    fn is_unwindowed(&self) -> bool {
        matches!(&self.plan.stage, Stage::Aggregate(a) if a.window.is_none())
    }

    fn late(&mut self, record: &Record, out: &mut Vec<Output>) {
        if self.plan.options.late_topic.is_some() {
            self.stats.late_routed += 1;
            out.push(Output::Late(OutputRecord {
                key: record.key.clone(),
                value: record.value.clone(),
                timestamp: record.timestamp,
            }));
        } else {
            self.stats.late_dropped += 1;
        }
    }

    fn on_error(
        &mut self,
        record: &Record,
        err: RecordError,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessorError> {
        self.stats.errors += 1;
        self.stats.last_error = Some(ErrorSample {
            partition: record.partition,
            offset: record.offset,
            reason: err.0.clone(),
        });
        match self.plan.options.on_error {
            OnError::Skip => Ok(()),
            OnError::DeadLetter => {
                out.push(Output::DeadLetter(DeadLetter {
                    record: record.clone(),
                    error: err.0,
                }));
                Ok(())
            }
            OnError::Stop => Err(ProcessorError::Stopped {
                partition: record.partition,
                offset: record.offset,
                reason: err.0,
            }),
        }
    }

    /// Record a partition's progress and close what the new watermark allows.
    fn observe(&mut self, partition: i32, event_time: i64, out: &mut Vec<Output>) {
        let now = self.now;
        let clock = self.clocks.entry(partition).or_insert(PartitionClock {
            max_event_time: None,
            last_seen: now,
        });
        clock.last_seen = now;
        let advanced = clock.max_event_time.is_none_or(|m| event_time > m);
        if advanced {
            clock.max_event_time = Some(event_time);
        }
        if self.store.is_none() || !advanced {
            return;
        }
        if let Some(wm) = self.current_watermark() {
            self.close_windows(wm, out);
        }
    }

    fn current_watermark(&self) -> Option<i64> {
        let grace = self.plan.options.grace_ms;
        if self.plan.options.time == TimeMode::Processing {
            return Some(self.now.saturating_sub(grace));
        }
        let idle = self.plan.options.idle_timeout_ms;
        let mut min: Option<i64> = None;
        let mut max: Option<i64> = None;
        let mut any_active = false;
        for c in self.clocks.values() {
            max = max.max(c.max_event_time);
            if self.now - c.last_seen >= idle {
                continue;
            }
            any_active = true;
            let m = c.max_event_time?;
            min = Some(min.map_or(m, |x| x.min(m)));
        }
        let base = if any_active { min } else { max };
        base.map(|b| b.saturating_sub(grace))
    }

    fn close_windows(&mut self, wm: i64, out: &mut Vec<Output>) {
        if self.closed_wm.is_some_and(|c| c >= wm) {
            return;
        }
        self.closed_wm = Some(wm);
        let Some(store) = &mut self.store else { return };
        let closed = store.close(wm);
        for (start, end, rows) in closed {
            match self.plan.options.emit {
                EmitMode::Final => self.emit_final(rows, out),
                EmitMode::Changes => {
                    for r in rows {
                        if self.changed.remove(&(start, end, r.key.clone())) {
                            self.render_change(&r);
                        }
                    }
                }
            }
        }
    }

    fn aggregate_plan(&self) -> Option<&AggregatePlan> {
        match &self.plan.stage {
            Stage::Aggregate(a) => Some(a),
            Stage::Stateless(_) => None,
        }
    }

    /// Render one group row; `Ok(None)` when HAVING rejects it.
    fn render(&self, r: &GroupResult) -> Result<Option<(OutputRecord, Vec<Value>)>, RecordError> {
        let Some(a) = self.aggregate_plan() else {
            return Ok(None);
        };
        let aggs = r.entry.results();
        let row = GroupRow {
            group: &r.entry.group,
            aggs: &aggs,
            window: r.window,
        };
        if let Some(h) = &a.having {
            if !h.eval_group(&row)?.is_true() {
                return Ok(None);
            }
        }
        let mut fields = Vec::with_capacity(a.select.len());
        for (name, e) in &a.select {
            fields.push((name.as_str(), e.eval_group(&row)?));
        }
        let mut order = Vec::with_capacity(a.order_by.len());
        for (e, _) in &a.order_by {
            order.push(e.eval_group(&row)?);
        }
        let rec = OutputRecord {
            key: (!a.keys.is_empty()).then(|| r.key.clone()),
            value: Some(encode_object(fields)),
            timestamp: r.window.map_or(r.entry.max_ts, |w| w.1),
        };
        Ok(Some((rec, order)))
    }

    fn emit_final(&mut self, mut rows: Vec<GroupResult>, out: &mut Vec<Output>) {
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        let mut rendered = Vec::with_capacity(rows.len());
        for r in &rows {
            match self.render(r) {
                Ok(Some(x)) => rendered.push(x),
                Ok(None) => {}
                Err(e) => self.row_error(e),
            }
        }
        let Some(a) = self.aggregate_plan() else {
            return;
        };
        if !a.order_by.is_empty() {
            let desc: Vec<bool> = a.order_by.iter().map(|o| o.1).collect();
            rendered.sort_by(|x, y| {
                for (i, d) in desc.iter().enumerate() {
                    let o = x.1[i].total_cmp(&y.1[i]);
                    let o = if *d { o.reverse() } else { o };
                    if o.is_ne() {
                        return o;
                    }
                }
                x.0.key.cmp(&y.0.key)
            });
        }
        if let Some(n) = a.limit {
            rendered.truncate(n);
        }
        self.stats.records_out += rendered.len() as u64;
        out.extend(rendered.into_iter().map(|(r, _)| Output::Result(r)));
    }

    /// `emit = 'changes'`: the current row, or a tombstone when HAVING no longer holds.
    fn render_change(&mut self, r: &GroupResult) {
        match self.render(r) {
            Ok(Some((rec, _))) => self.pending.push(rec),
            Ok(None) => self.pending.push(OutputRecord {
                key: Some(r.key.clone()),
                value: None,
                timestamp: r.window.map_or(r.entry.max_ts, |w| w.1),
            }),
            Err(e) => self.row_error(e),
        }
    }

    fn row_error(&mut self, e: RecordError) {
        self.stats.errors += 1;
        self.stats.last_error = Some(ErrorSample {
            partition: -1,
            offset: -1,
            reason: format!("result row: {e}"),
        });
    }
}
