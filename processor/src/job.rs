//! `Job`: one instance of a compiled plan. Sans-IO: records and time come in as arguments;
//! results, late records, dead letters and changelog entries go out as return values.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::encode::{encode_key_into, encode_select, stable_hash};
use crate::error::{ProcessorError, RecordError};
use crate::expr::{Column, Expr, GroupRow, InputRow};
use crate::plan::{AggregatePlan, EmitMode, OnError, Plan, Projection, RowOp, Stage, TimeMode};
use crate::record::{ChangelogEntry, DeadLetter, Output, OutputRecord, Record};
use crate::state::{Entry, GroupResult, Store, Update};
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

/// What one record turned into before it touches state, in buffers reused from record to
/// record (a warm job allocates nothing here for a record whose group key already exists).
#[derive(Default)]
struct Rows {
    /// Stateless results.
    outs: Vec<OutputRecord>,
    /// Aggregate rows: encoded group keys, concatenated.
    keys: Vec<u8>,
    /// Group-by values of every row, concatenated (empty when they come from `KeyColumn`).
    groups: Vec<Value>,
    /// Aggregate arguments of every row, concatenated.
    args: Vec<Value>,
    /// End offsets of each aggregate row in `keys`, `groups` and `args`.
    aggs: Vec<(usize, usize, usize)>,
}

impl Rows {
    /// The shard (of `count`) of each aggregate row's group key.
    fn shards(&self, count: u64) -> impl Iterator<Item = u64> + '_ {
        let mut k0 = 0;
        self.aggs.iter().map(move |&(k1, _, _)| {
            let key = &self.keys[k0..k1];
            k0 = k1;
            stable_hash(key) % count
        })
    }

    fn clear(&mut self) {
        self.outs.clear();
        self.keys.clear();
        self.groups.clear();
        self.args.clear();
        self.aggs.clear();
    }
}

/// A group-by of exactly one `key` or `value` column: its encoded key is the record field
/// itself, and the group value is built only for a new key.
#[derive(Debug, Clone, Copy)]
enum KeyColumn {
    Key,
    Value,
}

impl KeyColumn {
    fn of(plan: &Plan) -> Option<KeyColumn> {
        let Stage::Aggregate(a) = &plan.stage else {
            return None;
        };
        match a.keys.as_slice() {
            [(_, Expr::Col(Column::Key))] => Some(KeyColumn::Key),
            [(_, Expr::Col(Column::Value))] => Some(KeyColumn::Value),
            _ => None,
        }
    }

    fn field(self, record: &Record) -> Option<&[u8]> {
        match self {
            KeyColumn::Key => record.key.as_deref(),
            KeyColumn::Value => record.value.as_deref(),
        }
    }

    /// What `encode_key(&[Value::from_field(field)])` gives, without building the value.
    fn encode_into(self, record: &Record, out: &mut Vec<u8>) {
        out.extend_from_slice(self.field(record).unwrap_or(b"null"));
    }
}

/// A rendered result row: the output value and the row's ORDER BY values.
type Rendered = (Vec<u8>, Vec<Value>);

/// Where one input record goes when the aggregation runs as `count` shards (the partitions
/// of a repartition topic), from [`Job::route`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The shards its rows' group keys fall in, ascending, never empty: a record whose rows
    /// were all filtered out, or that fails, goes to shard 0 alone, so exactly one shard
    /// counts it and applies `on_error`. The first is the primary copy.
    pub shards: Vec<u32>,
    /// Its event time, which moves its partition's clock in every shard (`None` when it
    /// cannot be computed).
    pub event_time: Option<i64>,
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
    rows: Rows,
    key_column: Option<KeyColumn>,
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
            store,
            clocks: BTreeMap::new(),
            now: 0,
            closed_wm: None,
            stats: JobStats::default(),
            changed: BTreeSet::new(),
            pending: Vec::new(),
            shard: None,
            scratch: Vec::new(),
            rows: Rows::default(),
            key_column: KeyColumn::of(&plan),
            plan,
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

    /// Keep only the keys of shard `index` of `count`: one partition of a repartitioned
    /// aggregation, fed the records [`Job::route`] sends it (or, in tests, every record).
    pub fn with_shard(mut self, index: u64, count: u64) -> Job {
        self.shard = (count > 1).then_some((index, count.max(1)));
        self
    }

    /// Declare the input partitions this instance owns: each holds the watermark back until it
    /// has data or goes idle. Each starts a new idle period at the current wall clock (this
    /// instance could not see their data before), so call [`Job::advance`] first.
    pub fn assign_partitions(&mut self, partitions: &[i32]) {
        for p in partitions {
            let clock = self.clocks.entry(*p).or_insert(PartitionClock {
                max_event_time: None,
                last_seen: self.now,
            });
            clock.last_seen = clock.last_seen.max(self.now);
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
        self.process_routed(record, true)
    }

    /// Process one copy of a record [`Job::route`] sent to several shards: only the
    /// `primary` copy counts in `records_in`.
    pub fn process_routed(
        &mut self,
        record: &Record,
        primary: bool,
    ) -> Result<Vec<Output>, ProcessorError> {
        let mut out = Vec::new();
        if primary {
            self.stats.records_in += 1;
        }
        let event_time = match self.event_time(record) {
            Ok(t) => t,
            Err(e) => {
                self.on_error(record, e, &mut out)?;
                return Ok(out);
            }
        };
        let mut rows = std::mem::take(&mut self.rows);
        rows.clear();
        if let Err(e) = self.expand(record, &self.plan.ops, None, &mut rows) {
            self.rows = rows;
            self.on_error(record, e, &mut out)?;
            self.observe(record.partition, event_time, &mut out);
            return Ok(out);
        }
        let late = !rows.aggs.is_empty()
            && self
                .store
                .as_ref()
                .is_some_and(|s| s.is_late(event_time, self.closed_wm));
        if late {
            // A late record reaches every shard its rows fall in; one of them reports it.
            if self.first_shard_of(&rows) {
                self.late(record, &mut out);
            }
        } else {
            for r in rows.outs.drain(..) {
                if self.in_shard(r.key.as_deref().unwrap_or_default()) {
                    self.stats.records_out += 1;
                    out.push(Output::Result(r));
                }
            }
            self.apply_aggs(record, &rows, event_time);
        }
        self.rows = rows;
        self.observe(record.partition, event_time, &mut out);
        Ok(out)
    }

    /// The routing step of a repartitioned aggregation: which of `count` shards need this
    /// record (each then runs it through its own `with_shard` instance). Touches no state and
    /// no counters.
    pub fn route(&mut self, record: &Record, count: u32) -> Route {
        let count = count.max(1);
        let Ok(event_time) = self.event_time(record) else {
            return Route {
                shards: vec![0],
                event_time: None,
            };
        };
        let mut rows = std::mem::take(&mut self.rows);
        rows.clear();
        let expanded = self.expand(record, &self.plan.ops, None, &mut rows);
        let mut shards = Vec::new();
        if expanded.is_ok() {
            for shard in rows.shards(u64::from(count)) {
                let shard = shard as u32;
                if let Err(at) = shards.binary_search(&shard) {
                    shards.insert(at, shard);
                }
            }
        }
        self.rows = rows;
        if shards.is_empty() {
            shards.push(0);
        }
        Route {
            shards,
            event_time: Some(event_time),
        }
    }

    /// A partition's clock moved to `event_time` without a record for this instance (a
    /// watermark marker from the routing step): closes what the new watermark allows.
    pub fn observe_time(&mut self, partition: i32, event_time: i64) -> Vec<Output> {
        let mut out = Vec::new();
        self.observe(partition, event_time, &mut out);
        out
    }

    /// Move the wall clock: closes processing-time windows, and event-time windows held back by
    /// partitions that went idle.
    pub fn advance(&mut self, now_ms: i64) -> Vec<Output> {
        if self.now == 0 {
            // The first wall-clock reading: partitions assigned before it start their idle
            // period now, not at the epoch.
            for c in self.clocks.values_mut() {
                c.last_seen = c.last_seen.max(now_ms);
            }
        }
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
                self.render_change(r);
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

    fn expand(
        &self,
        record: &Record,
        ops: &[RowOp],
        item: Option<&Value>,
        rows: &mut Rows,
    ) -> Result<(), RecordError> {
        let Some((op, rest)) = ops.split_first() else {
            return self.finish_row(record, item, rows);
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

    fn finish_row(
        &self,
        record: &Record,
        item: Option<&Value>,
        rows: &mut Rows,
    ) -> Result<(), RecordError> {
        let input = InputRow::new(record, item);
        match &self.plan.stage {
            Stage::Stateless(Projection::Passthrough) => rows.outs.push(OutputRecord {
                key: record.key.clone(),
                value: record.value.clone(),
                timestamp: record.timestamp,
            }),
            Stage::Stateless(Projection::Columns(cols)) => {
                let mut fields = Vec::with_capacity(cols.len());
                for (name, e) in cols {
                    fields.push((name.as_str(), e.eval_input(&input)?));
                }
                rows.outs.push(OutputRecord {
                    key: record.key.clone(),
                    value: Some(crate::encode::encode_object(fields)),
                    timestamp: record.timestamp,
                });
            }
            Stage::Aggregate(a) => {
                // An error drops the whole record, so a partly written row is never applied.
                if let Some(col) = self.key_column {
                    col.encode_into(record, &mut rows.keys);
                } else {
                    let groups_len = rows.groups.len();
                    for (_, e) in &a.keys {
                        rows.groups.push(e.eval_input(&input)?);
                    }
                    encode_key_into(&rows.groups[groups_len..], &mut rows.keys);
                }
                for spec in &a.aggs {
                    rows.args.push(match &spec.arg {
                        None => Value::Bool(true),
                        Some(e) => e.eval_input(&input)?,
                    });
                }
                rows.aggs
                    .push((rows.keys.len(), rows.groups.len(), rows.args.len()));
            }
        }
        Ok(())
    }

    /// Whether this instance is the lowest shard any of `rows` falls in.
    fn first_shard_of(&self, rows: &Rows) -> bool {
        let Some((i, n)) = self.shard else {
            return true;
        };
        rows.shards(n).min() == Some(i)
    }

    fn in_shard(&self, key: &[u8]) -> bool {
        self.shard.is_none_or(|(i, n)| stable_hash(key) % n == i)
    }

    fn apply_aggs(&mut self, record: &Record, rows: &Rows, event_time: i64) {
        let track = self.plan.options.emit == EmitMode::Changes || self.is_unwindowed();
        let (mut k0, mut g0, mut a0) = (0, 0, 0);
        for &(k1, g1, a1) in &rows.aggs {
            let key = &rows.keys[k0..k1];
            let group = &rows.groups[g0..g1];
            let args = &rows.args[a0..a1];
            (k0, g0, a0) = (k1, g1, a1);
            if !self.in_shard(key) {
                continue;
            }
            let key_column = self.key_column;
            let make_group = || match key_column {
                Some(c) => vec![Value::from_field(c.field(record))],
                None => group.to_vec(),
            };
            let Some(store) = &mut self.store else { return };
            self.scratch.clear();
            let update = Update {
                key,
                group: &make_group,
                args,
                event_time,
                timestamp: record.timestamp,
            };
            store.apply(update, track.then_some(&mut self.scratch));
            for (s, e) in self.scratch.drain(..) {
                self.changed.insert((s, e, key.to_vec()));
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
                            self.render_change(r);
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
    fn render(&self, r: &GroupResult) -> Result<Option<Rendered>, RecordError> {
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
        let value = encode_select(&a.select, &row)?;
        let mut order = Vec::with_capacity(a.order_by.len());
        for (e, _) in &a.order_by {
            order.push(e.eval_group(&row)?);
        }
        Ok(Some((value, order)))
    }

    /// The output record of a rendered row (the key moves in).
    fn result_record(
        &self,
        key: Vec<u8>,
        entry: &Entry,
        window: Option<(i64, i64)>,
        value: Vec<u8>,
    ) -> OutputRecord {
        let keyed = self.aggregate_plan().is_some_and(|a| !a.keys.is_empty());
        OutputRecord {
            key: keyed.then_some(key),
            value: Some(value),
            timestamp: window.map_or(entry.max_ts, |w| w.1),
        }
    }

    /// `rows` come sorted by key from the store.
    fn emit_final(&mut self, rows: Vec<GroupResult>, out: &mut Vec<Output>) {
        let mut rendered = Vec::with_capacity(rows.len());
        for r in rows {
            match self.render(&r) {
                Ok(Some((value, order))) => {
                    rendered.push((self.result_record(r.key, &r.entry, r.window, value), order))
                }
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
    fn render_change(&mut self, r: GroupResult) {
        match self.render(&r) {
            Ok(Some((value, _))) => {
                let rec = self.result_record(r.key, &r.entry, r.window, value);
                self.pending.push(rec);
            }
            Ok(None) => self.pending.push(OutputRecord {
                timestamp: r.window.map_or(r.entry.max_ts, |w| w.1),
                key: Some(r.key),
                value: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: &str = "CREATE JOB wc AS INSERT INTO out
SELECT word, count(*) AS n
FROM lines, unnest(split(value, ' ')) AS word
WHERE value <> 'skip me'
GROUP BY word, tumble(interval '10 seconds');";

    #[test]
    fn route_names_each_shard_once_and_sends_the_rest_to_shard_zero() {
        let mut router = Job::from_sql(WORDS).expect("compile");
        let many = router.route(&Record::text(0, 0, 5, "a b c d e f g h a b"), 3);
        assert_eq!(many.event_time, Some(5));
        assert!(many.shards.windows(2).all(|w| w[0] < w[1]), "{many:?}");
        assert!(
            many.shards.len() > 1,
            "ten words over three shards: {many:?}"
        );
        let filtered = router.route(&Record::text(0, 1, 6, "skip me"), 3);
        assert_eq!(filtered.shards, vec![0]);
        assert_eq!(filtered.event_time, Some(6));
        let one = router.route(&Record::text(0, 2, 7, "x x x"), 1);
        assert_eq!(one.shards, vec![0]);
        assert_eq!(router.stats().records_in, 0, "routing counts nothing");
    }

    #[test]
    fn assigned_partitions_without_data_hold_windows_back_from_the_first_advance() {
        let mut job = Job::from_sql(WORDS).expect("compile");
        job.assign_partitions(&[0, 1]);
        let wall = 1_800_000_000_000;
        assert!(job.advance(wall).is_empty());
        let mut out = job
            .process(&Record::text(0, 0, 1_000, "a"))
            .expect("process");
        out.extend(
            job.process(&Record::text(0, 1, 50_000, "b"))
                .expect("process"),
        );
        out.extend(job.advance(wall + 1_000));
        assert!(out.is_empty(), "partition 1 has no data yet: {out:?}");
        assert_eq!(job.watermark(), None);
        // Idle for the whole timeout: it stops holding the window back.
        let out = job.advance(wall + 31_000);
        assert_eq!(out.len(), 1, "{out:?}");
    }

    #[test]
    fn a_record_that_fails_goes_to_shard_zero_only() {
        let sql = "CREATE JOB j AS INSERT INTO o
SELECT json_value(value, '$.a') AS a, count(*) AS n FROM t
GROUP BY json_value(value, '$.a'), tumble(interval '1 second');";
        let mut router = Job::from_sql(sql).expect("compile");
        let bad = Record {
            value: Some(vec![0xff, 0xfe]),
            ..Record::text(0, 0, 1, "")
        };
        let r = router.route(&bad, 4);
        assert_eq!(r.shards, vec![0]);
    }
}
