//! Keyed window state: the stores for unwindowed, fixed-grid (panes) and session windows, window
//! closing, and their changelog representation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Acc, AggKind};
use crate::error::ProcessorError;
use crate::hash::FastMap;
use crate::record::ChangelogEntry;
use crate::sliding::{self, Running};
use crate::value::Value;
use crate::window::{Grid, Window};

/// Accumulators of one key in one pane, window or session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Group-by values (for the output row), shared by the copies of an entry that window
    /// closing and session merging make.
    #[serde(rename = "g", with = "shared_values")]
    pub group: Arc<[Value]>,
    #[serde(rename = "a")]
    pub accs: Vec<Acc>,
    /// Latest input timestamp seen (output timestamp of unwindowed rows).
    #[serde(rename = "t")]
    pub max_ts: i64,
    /// Session start (sessions only).
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Session end (sessions only).
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    #[serde(skip)]
    dirty: bool,
}

impl Entry {
    fn new(group: Vec<Value>, kinds: &[AggKind]) -> Entry {
        Entry {
            group: group.into(),
            accs: kinds.iter().map(|k| Acc::new(*k)).collect(),
            max_ts: i64::MIN,
            start: None,
            end: None,
            dirty: false,
        }
    }

    pub(crate) fn update(&mut self, args: &[Value], ts: i64) {
        for (acc, v) in self.accs.iter_mut().zip(args) {
            acc.update(v);
        }
        self.max_ts = self.max_ts.max(ts);
    }

    pub(crate) fn merge(&mut self, other: &Entry) {
        for (a, b) in self.accs.iter_mut().zip(&other.accs) {
            a.merge(b);
        }
        self.max_ts = self.max_ts.max(other.max_ts);
    }

    /// Take back out an entry merged in before (invertible aggregates only). `max_ts` stays:
    /// windowed rows are stamped with their window end, not with it.
    pub(crate) fn unmerge(&mut self, other: &Entry) {
        for (a, b) in self.accs.iter_mut().zip(&other.accs) {
            a.unmerge(b);
        }
    }

    pub fn results(&self) -> Vec<Value> {
        self.accs.iter().map(Acc::result).collect()
    }
}

/// Serde for `Arc<[Value]>` as a plain sequence (the changelog format of a `Vec<Value>`).
mod shared_values {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::value::Value;

    pub fn serialize<S: Serializer>(v: &Arc<[Value]>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[Value]>, D::Error> {
        Vec::<Value>::deserialize(d).map(Arc::from)
    }
}

/// One row of a window result, before HAVING/projection.
#[derive(Debug, Clone)]
pub struct GroupResult {
    pub key: Vec<u8>,
    pub window: Option<(i64, i64)>,
    pub entry: Entry,
}

/// One input row routed to the store.
pub struct Update<'a> {
    /// The encoded group key (borrowed: it is copied only when the key is new in its pane).
    pub key: &'a [u8],
    /// Builds the group-by values; called only when the key is new in its pane or window.
    pub group: &'a dyn Fn() -> Vec<Value>,
    pub args: &'a [Value],
    pub event_time: i64,
    pub timestamp: i64,
}

#[derive(Debug)]
enum Layout {
    Global(FastMap<Vec<u8>, Entry>),
    Grid {
        grid: Grid,
        panes: BTreeMap<i64, FastMap<Vec<u8>, Entry>>,
        last_closed_end: Option<i64>,
        /// Rows of the last window closed: the size to expect of the next.
        last_rows: usize,
        /// Hopping windows of invertible aggregates: the next window's rows, kept up to date.
        running: Option<Running>,
    },
    Session {
        gap_ms: i64,
        sessions: FastMap<Vec<u8>, Vec<Entry>>,
        /// (end, key, start) of every open session, to close them in order.
        by_end: BTreeSet<(i64, Vec<u8>, i64)>,
    },
}

/// All keyed state of one job instance.
#[derive(Debug)]
pub struct Store {
    kinds: Vec<AggKind>,
    layout: Layout,
    /// Changelog keys changed since the last `take_changelog`.
    dirty: DirtyKeys,
}

/// Changelog keys (`state_key` form) in one flat buffer: marking a key dirty costs no
/// allocation once the buffer has grown.
#[derive(Debug, Default)]
struct DirtyKeys {
    bytes: Vec<u8>,
    /// End offset of each key in `bytes`.
    ends: Vec<usize>,
}

impl DirtyKeys {
    fn push(&mut self, tag: u8, start: i64, key: &[u8]) {
        self.bytes.push(tag);
        if tag != TAG_GLOBAL {
            self.bytes.extend_from_slice(&start.to_be_bytes());
        }
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    /// The distinct keys in byte order, and empty the set.
    fn take_sorted(&mut self) -> Vec<Vec<u8>> {
        let mut spans = Vec::with_capacity(self.ends.len());
        let mut start = 0;
        for &end in &self.ends {
            spans.push(start..end);
            start = end;
        }
        let bytes = &self.bytes;
        sort_by_bytes(&mut spans, |r| &bytes[r.clone()]);
        spans.dedup_by(|a, b| bytes[a.clone()] == bytes[b.clone()]);
        let keys = spans.into_iter().map(|r| bytes[r].to_vec()).collect();
        self.bytes.clear();
        self.ends.clear();
        keys
    }
}

const TAG_GLOBAL: u8 = b'G';
const TAG_PANE: u8 = b'P';
const TAG_SESSION: u8 = b'S';

fn mark(dirty: &mut DirtyKeys, entry: &mut Entry, tag: u8, start: i64, key: &[u8]) {
    if !entry.dirty {
        entry.dirty = true;
        dirty.push(tag, start, key);
    }
}

impl Store {
    pub fn new(window: Option<Window>, kinds: Vec<AggKind>) -> Store {
        let layout = match window {
            None => Layout::Global(FastMap::default()),
            Some(Window::Tumbling { size_ms }) => Layout::Grid {
                grid: Grid::new(size_ms, size_ms),
                panes: BTreeMap::new(),
                last_closed_end: None,
                last_rows: 0,
                running: None,
            },
            Some(Window::Hopping { size_ms, slide_ms }) => Layout::Grid {
                grid: Grid::new(size_ms, slide_ms),
                panes: BTreeMap::new(),
                last_closed_end: None,
                last_rows: 0,
                running: (size_ms > slide_ms && sliding::invertible(&kinds)).then(Running::default),
            },
            Some(Window::Session { gap_ms }) => Layout::Session {
                gap_ms,
                sessions: FastMap::default(),
                by_end: BTreeSet::new(),
            },
        };
        Store {
            kinds,
            layout,
            dirty: DirtyKeys::default(),
        }
    }

    /// Whether a record at `event_time` only touches windows already closed at `closed_wm`.
    pub fn is_late(&self, event_time: i64, closed_wm: Option<i64>) -> bool {
        let Some(wm) = closed_wm else { return false };
        match &self.layout {
            Layout::Global(_) => false,
            Layout::Grid { grid, .. } => grid.last_end_for_pane(grid.pane_of(event_time)) <= wm,
            Layout::Session { gap_ms, .. } => event_time.saturating_add(*gap_ms) <= wm,
        }
    }

    /// Apply one row; returns the windows `(start, end)` whose row for this key changed.
    pub fn apply(&mut self, u: Update<'_>, changed: Option<&mut Vec<(i64, i64)>>) {
        let kinds = &self.kinds;
        match &mut self.layout {
            Layout::Global(map) => {
                let (e, _) = entry_of(map, u.key, || Entry::new((u.group)(), kinds));
                e.update(u.args, u.timestamp);
                mark(&mut self.dirty, e, TAG_GLOBAL, 0, u.key);
                if let Some(c) = changed {
                    c.push((0, 0));
                }
            }
            Layout::Grid {
                grid,
                panes,
                last_closed_end,
                running,
                ..
            } => {
                let p = grid.pane_of(u.event_time);
                if !panes.contains_key(&p) {
                    // Size a new pane like the newest one: no rehashing while it fills.
                    let hint = panes.last_key_value().map_or(0, |(_, m)| m.len());
                    panes.insert(
                        p,
                        FastMap::with_capacity_and_hasher(hint, Default::default()),
                    );
                }
                let Some(pane) = panes.get_mut(&p) else {
                    return;
                };
                let (e, new) = entry_of(pane, u.key, || Entry::new((u.group)(), kinds));
                e.update(u.args, u.timestamp);
                mark(&mut self.dirty, e, TAG_PANE, p, u.key);
                if let Some(run) = running.as_mut().filter(|r| r.covers(p)) {
                    run.record(u.key, e, u.args, u.timestamp, new);
                }
                if let Some(c) = changed {
                    let closed = last_closed_end.unwrap_or(i64::MIN);
                    c.extend(grid.windows_of_pane(p).filter(|w| w.1 > closed));
                }
            }
            Layout::Session {
                gap_ms,
                sessions,
                by_end,
            } => {
                let key = u.key;
                let (start, end) = (u.event_time, u.event_time.saturating_add(*gap_ms));
                let list = match sessions.get_mut(key) {
                    Some(l) => l,
                    None => sessions.entry(key.to_vec()).or_default(),
                };
                let mut merged = Entry::new((u.group)(), kinds);
                merged.end = Some(end);
                let mut new_start = start;
                let mut keep = Vec::with_capacity(list.len());
                for s in list.drain(..) {
                    let (ss, se) = (session_start(&s), s.end.unwrap_or(i64::MIN));
                    if ss < end && start < se {
                        new_start = new_start.min(ss);
                        merged.end = Some(merged.end.unwrap_or(end).max(se));
                        merged.group = s.group.clone();
                        merged.merge(&s);
                        by_end.remove(&(se, key.to_vec(), ss));
                        self.dirty.push(TAG_SESSION, ss, key);
                    } else {
                        keep.push(s);
                    }
                }
                merged.update(u.args, u.timestamp);
                merged.start = Some(new_start);
                let new_end = merged.end.unwrap_or(end);
                by_end.insert((new_end, key.to_vec(), new_start));
                merged.dirty = true;
                self.dirty.push(TAG_SESSION, new_start, key);
                keep.push(merged);
                *list = keep;
                if let Some(c) = changed {
                    c.push((new_start, new_end));
                }
            }
        }
    }

    /// Close every window whose end is at or below `wm`, oldest first.
    pub fn close(&mut self, wm: i64) -> Vec<(i64, i64, Vec<GroupResult>)> {
        let mut out = Vec::new();
        match &mut self.layout {
            Layout::Global(_) => {}
            Layout::Grid {
                grid,
                panes,
                last_closed_end,
                last_rows,
                running,
            } => {
                while let Some((&p, _)) = panes.first_key_value() {
                    let mut e = grid.first_end_for_pane(p);
                    if let Some(l) = *last_closed_end {
                        e = e.max(l + grid.slide_ms);
                    }
                    if e > wm {
                        break;
                    }
                    let ws = e - grid.size_ms;
                    let rows = match running {
                        Some(run) => {
                            run.advance(panes, ws, e);
                            let rows = run.rows(panes, ws, e);
                            for (start, pane) in expire_panes(panes, grid, e, &mut self.dirty) {
                                run.evict(start, &pane);
                            }
                            run.start_at(ws + grid.slide_ms);
                            sorted_results(rows, ws, e)
                        }
                        None => {
                            // Panes whose last window is this one leave the store now, so
                            // their entries move into the result instead of being copied.
                            let expired = expire_panes(panes, grid, e, &mut self.dirty);
                            combine_panes(expired, panes, ws, e, *last_rows)
                        }
                    };
                    *last_rows = rows.len();
                    out.push((ws, e, rows));
                    *last_closed_end = Some(e);
                }
                let floor = grid.end_floor(wm);
                *last_closed_end = Some(last_closed_end.map_or(floor, |l| l.max(floor)));
            }
            Layout::Session {
                sessions, by_end, ..
            } => {
                while let Some((end, _, _)) = by_end.first() {
                    if *end > wm {
                        break;
                    }
                    let Some((end, key, start)) = by_end.pop_first() else {
                        break;
                    };
                    let Some(list) = sessions.get_mut(&key) else {
                        continue;
                    };
                    let Some(i) = list.iter().position(|s| session_start(s) == start) else {
                        continue;
                    };
                    let entry = list.swap_remove(i);
                    if list.is_empty() {
                        sessions.remove(&key);
                    }
                    self.dirty.push(TAG_SESSION, start, &key);
                    out.push((
                        start,
                        end,
                        vec![GroupResult {
                            key,
                            window: Some((start, end)),
                            entry,
                        }],
                    ));
                }
            }
        }
        out
    }

    /// The current row of `key` in window `(start, end)` (`(0, 0)` when unwindowed), if any.
    pub fn row(&self, start: i64, end: i64, key: &[u8]) -> Option<GroupResult> {
        match &self.layout {
            Layout::Global(map) => map.get(key).map(|e| GroupResult {
                key: key.to_vec(),
                window: None,
                entry: e.clone(),
            }),
            Layout::Grid { panes, .. } => {
                let mut acc: Option<Entry> = None;
                for (_, pane) in panes.range(start..end) {
                    if let Some(e) = pane.get(key) {
                        match &mut acc {
                            Some(a) => a.merge(e),
                            None => acc = Some(e.clone()),
                        }
                    }
                }
                acc.map(|entry| GroupResult {
                    key: key.to_vec(),
                    window: Some((start, end)),
                    entry,
                })
            }
            Layout::Session { sessions, .. } => sessions
                .get(key)?
                .iter()
                .find(|s| session_start(s) == start && s.end == Some(end))
                .map(|s| GroupResult {
                    key: key.to_vec(),
                    window: Some((start, end)),
                    entry: s.clone(),
                }),
        }
    }

    /// Changelog entries for everything changed since the last call.
    pub fn take_changelog(&mut self) -> Vec<ChangelogEntry> {
        let keys = self.dirty.take_sorted();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let value = match self.lookup_mut(&k) {
                Some(e) => {
                    e.dirty = false;
                    serde_json::to_vec(&*e).ok()
                }
                None => None,
            };
            out.push(ChangelogEntry { key: k, value });
        }
        out
    }

    fn lookup_mut(&mut self, state_key: &[u8]) -> Option<&mut Entry> {
        let (&tag, rest) = state_key.split_first()?;
        match (&mut self.layout, tag) {
            (Layout::Global(map), TAG_GLOBAL) => map.get_mut(rest),
            (Layout::Grid { panes, .. }, TAG_PANE) => {
                let (start, key) = split_start(rest)?;
                panes.get_mut(&start)?.get_mut(key)
            }
            (Layout::Session { sessions, .. }, TAG_SESSION) => {
                let (start, key) = split_start(rest)?;
                sessions
                    .get_mut(key)?
                    .iter_mut()
                    .find(|s| session_start(s) == start)
            }
            _ => None,
        }
    }

    /// Load one state entry from the changelog (restore).
    pub fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), ProcessorError> {
        let bad = |m: &str| ProcessorError::Changelog(format!("{m} ({} key bytes)", key.len()));
        let entry: Entry = serde_json::from_slice(value).map_err(|e| bad(&e.to_string()))?;
        let (&tag, rest) = key.split_first().ok_or_else(|| bad("empty key"))?;
        match (&mut self.layout, tag) {
            (Layout::Global(map), TAG_GLOBAL) => {
                map.insert(rest.to_vec(), entry);
            }
            (Layout::Grid { panes, .. }, TAG_PANE) => {
                let (start, k) = split_start(rest).ok_or_else(|| bad("short key"))?;
                panes.entry(start).or_default().insert(k.to_vec(), entry);
            }
            (
                Layout::Session {
                    sessions, by_end, ..
                },
                TAG_SESSION,
            ) => {
                let (start, k) = split_start(rest).ok_or_else(|| bad("short key"))?;
                let end = entry.end.ok_or_else(|| bad("session without end"))?;
                by_end.insert((end, k.to_vec(), start));
                sessions.entry(k.to_vec()).or_default().push(entry);
            }
            _ => return Err(bad("entry does not match the job's window")),
        }
        Ok(())
    }

    pub fn set_last_closed_end(&mut self, v: Option<i64>) {
        if let Layout::Grid {
            last_closed_end, ..
        } = &mut self.layout
        {
            *last_closed_end = v;
        }
    }

    pub fn last_closed_end(&self) -> Option<i64> {
        match &self.layout {
            Layout::Grid {
                last_closed_end, ..
            } => *last_closed_end,
            _ => None,
        }
    }

    /// Close everything (end of a bounded input).
    pub fn close_all(&mut self) -> Vec<(i64, i64, Vec<GroupResult>)> {
        self.close(i64::MAX - 1)
    }
}

/// The entry of `key` in `map`, created by `new` when missing (the key is copied only then),
/// and whether it was.
fn entry_of<'m>(
    map: &'m mut FastMap<Vec<u8>, Entry>,
    key: &[u8],
    new: impl FnOnce() -> Entry,
) -> (&'m mut Entry, bool) {
    // Two lookups for an existing key, none of them allocating: the std map has no entry API
    // for borrowed keys.
    if map.contains_key(key) {
        return (map.get_mut(key).expect("key just found"), false);
    }
    (map.entry(key.to_vec()).or_insert_with(new), true)
}

/// Remove the panes whose last window ends at `e` (or before), oldest first, listing their
/// keys for the changelog (tombstones).
fn expire_panes(
    panes: &mut BTreeMap<i64, FastMap<Vec<u8>, Entry>>,
    grid: &Grid,
    e: i64,
    dirty: &mut DirtyKeys,
) -> Vec<(i64, FastMap<Vec<u8>, Entry>)> {
    let mut expired = Vec::new();
    while let Some(first) = panes.first_entry() {
        if grid.last_end_for_pane(*first.key()) > e {
            break;
        }
        let (start, pane) = first.remove_entry();
        // A dirty entry's key is already listed since the last flush.
        for (k, _) in pane.iter().filter(|(_, entry)| !entry.dirty) {
            dirty.push(TAG_PANE, start, k);
        }
        expired.push((start, pane));
    }
    expired
}

/// The rows of window `[ws, e)`, sorted by key: each key's entries of the window's panes merged
/// oldest pane first. `expired` are the panes (oldest first, all older than those left in
/// `panes`) that just left the store; those inside the window give up their entries.
fn combine_panes(
    expired: Vec<(i64, FastMap<Vec<u8>, Entry>)>,
    panes: &BTreeMap<i64, FastMap<Vec<u8>, Entry>>,
    ws: i64,
    e: i64,
    rows_hint: usize,
) -> Vec<GroupResult> {
    let mut rows: Option<FastMap<Vec<u8>, Entry>> = None;
    for (start, pane) in expired {
        if start < ws || start >= e {
            continue;
        }
        match &mut rows {
            None => rows = Some(pane),
            Some(rows) => {
                for (k, entry) in pane {
                    match rows.get_mut(&k) {
                        Some(r) => r.merge(&entry),
                        None => {
                            rows.insert(k, entry);
                        }
                    }
                }
            }
        }
    }
    let mut rows = rows.unwrap_or_default();
    rows.reserve(rows_hint.saturating_sub(rows.len()));
    for (_, pane) in panes.range(ws..e) {
        for (k, entry) in pane {
            match rows.get_mut(k.as_slice()) {
                Some(r) => r.merge(entry),
                None => {
                    rows.insert(k.clone(), entry.clone());
                }
            }
        }
    }
    sorted_results(rows.into_iter().collect(), ws, e)
}

/// Rows as the results of window `[ws, e)`, sorted by key.
fn sorted_results(rows: Vec<(Vec<u8>, Entry)>, ws: i64, e: i64) -> Vec<GroupResult> {
    // Sort positions, not the (large) rows themselves.
    let mut rows: Vec<Option<(Vec<u8>, Entry)>> = rows.into_iter().map(Some).collect();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    sort_by_bytes(&mut order, |&i| {
        rows[i].as_ref().map_or(&[], |r| r.0.as_slice())
    });
    let mut sorted = Vec::with_capacity(rows.len());
    for i in order {
        let Some((key, entry)) = rows[i].take() else {
            continue;
        };
        sorted.push(GroupResult {
            key,
            window: Some((ws, e)),
            entry,
        });
    }
    sorted
}

/// Sort `items` by the byte string `bytes` gives for each. The first 24 bytes of each string
/// are read once into integers that decide most comparisons; ties fall back to comparing the
/// whole strings.
fn sort_by_bytes<'a, T: Clone + 'a>(items: &mut [T], bytes: impl Fn(&T) -> &'a [u8]) {
    let prefix = |b: &[u8]| {
        let mut p = [0u8; 24];
        let n = b.len().min(24);
        p[..n].copy_from_slice(&b[..n]);
        let (hi, lo) = p.split_at(16);
        let hi = u128::from_be_bytes(hi.try_into().unwrap_or_default());
        let lo = u64::from_be_bytes(lo.try_into().unwrap_or_default());
        (hi, lo)
    };
    let mut keyed: Vec<((u128, u64), T)> = items
        .iter()
        .map(|t| (prefix(bytes(t)), t.clone()))
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| bytes(&a.1).cmp(bytes(&b.1))));
    for (slot, (_, t)) in items.iter_mut().zip(keyed) {
        *slot = t;
    }
}

fn split_start(rest: &[u8]) -> Option<(i64, &[u8])> {
    let (s, key) = rest.split_at_checked(8)?;
    Some((i64::from_be_bytes(s.try_into().ok()?), key))
}

fn session_start(e: &Entry) -> i64 {
    e.start.unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_by_bytes_orders_like_slices() {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for i in 0..500u32 {
            let n = i.wrapping_mul(2_654_435_761) % 97;
            keys.push(format!("user-{n}").into_bytes());
            keys.push(format!("a-shared-prefix-longer-than-24-bytes-{n}").into_bytes());
            keys.push(vec![0; (n % 30) as usize]);
        }
        keys.push(b"a".to_vec());
        keys.push(b"a\0".to_vec());
        let mut expected = keys.clone();
        expected.sort();
        let mut order: Vec<usize> = (0..keys.len()).collect();
        sort_by_bytes(&mut order, |&i| keys[i].as_slice());
        let got: Vec<Vec<u8>> = order.into_iter().map(|i| keys[i].clone()).collect();
        assert_eq!(got, expected);
    }
}
