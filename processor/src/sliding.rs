//! Sliding (hopping) windows whose cost per slide does not grow with `size / slide`.
//!
//! Panes make a record cost one update whatever the overlap, but closing a window by merging
//! its `size / slide` panes costs every key of every pane, again for each window the pane is
//! in. For aggregates that can be taken back out exactly (counts), [`Running`] keeps the merge
//! of the panes of the next window to close: closing it adds the panes that entered since the
//! last close and, once emitted, subtracts the panes that leave. A slide then costs the keys of
//! the entering and leaving panes plus the rows it emits, not the whole window again.
//!
//! Sums and averages over floats are not exact under subtraction, and min/max/distinct cannot
//! be taken back out; those jobs keep merging panes at close (see `state::combine_panes`).
//!
//! The running rows are derived state: they are not in the changelog, and a restored job
//! rebuilds them from its panes at its first close.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::aggregate::AggKind;
use crate::hash::FastMap;
use crate::state::Entry;
use crate::value::Value;

/// Whether a job's aggregates can use [`Running`].
pub fn invertible(kinds: &[AggKind]) -> bool {
    kinds
        .iter()
        .all(|k| matches!(k, AggKind::CountStar | AggKind::Count))
}

/// One key's merge of the panes in the running range.
#[derive(Debug)]
struct Row {
    entry: Entry,
    /// Panes in the range holding the key (the row goes when none does).
    panes: u32,
    /// Panes disagree on the group values (keys equal as encoded, values not, e.g. `1` and
    /// `'1'`): the row's group values would depend on pane order, so it is recomputed from the
    /// panes when emitted.
    mixed: bool,
}

/// The merge, per key, of the panes starting in `[lo, hi)`.
#[derive(Debug)]
pub struct Running {
    lo: i64,
    hi: i64,
    rows: FastMap<Vec<u8>, Row>,
}

impl Default for Running {
    fn default() -> Running {
        Running {
            lo: i64::MIN,
            hi: i64::MIN,
            rows: FastMap::default(),
        }
    }
}

type Panes = BTreeMap<i64, FastMap<Vec<u8>, Entry>>;

fn same_group(a: &Arc<[Value]>, b: &Arc<[Value]>) -> bool {
    Arc::ptr_eq(a, b) || a[..] == b[..]
}

impl Running {
    /// Whether a record in the pane starting at `pane` must also update the running rows.
    pub fn covers(&self, pane: i64) -> bool {
        self.lo <= pane && pane < self.hi
    }

    /// A record updated `entry` (of `key`, in a covered pane); `new` when the entry was just
    /// created in its pane.
    pub fn record(&mut self, key: &[u8], entry: &Entry, args: &[Value], ts: i64, new: bool) {
        match self.rows.get_mut(key) {
            Some(row) => {
                row.entry.update(args, ts);
                if new {
                    row.panes += 1;
                    row.mixed |= !same_group(&row.entry.group, &entry.group);
                }
            }
            None => {
                self.rows.insert(
                    key.to_vec(),
                    Row {
                        entry: entry.clone(),
                        panes: 1,
                        mixed: false,
                    },
                );
            }
        }
    }

    /// Cover exactly the panes of window `[ws, e)`: add those that entered since the last
    /// window, or start over when this window does not follow it.
    pub fn advance(&mut self, panes: &Panes, ws: i64, e: i64) {
        if self.lo != ws || self.hi > e {
            self.rows.clear();
            self.lo = ws;
            self.hi = ws;
        }
        for (_, pane) in panes.range(self.hi..e) {
            for (k, entry) in pane {
                match self.rows.get_mut(k.as_slice()) {
                    Some(row) => {
                        row.entry.merge(entry);
                        row.panes += 1;
                        row.mixed |= !same_group(&row.entry.group, &entry.group);
                    }
                    None => {
                        self.rows.insert(
                            k.clone(),
                            Row {
                                entry: entry.clone(),
                                panes: 1,
                                mixed: false,
                            },
                        );
                    }
                }
            }
        }
        self.hi = e;
    }

    /// The rows of window `[ws, e)` (after [`Running::advance`]), unsorted.
    pub fn rows(&self, panes: &Panes, ws: i64, e: i64) -> Vec<(Vec<u8>, Entry)> {
        let mut out = Vec::with_capacity(self.rows.len());
        for (k, row) in &self.rows {
            let entry = if row.mixed {
                merge_from_panes(panes, k, ws, e)
            } else {
                Some(row.entry.clone())
            };
            if let Some(entry) = entry {
                out.push((k.clone(), entry));
            }
        }
        out
    }

    /// The pane starting at `start` left the store: take it back out.
    pub fn evict(&mut self, start: i64, pane: &FastMap<Vec<u8>, Entry>) {
        if !self.covers(start) {
            return;
        }
        for (k, entry) in pane {
            let Some(row) = self.rows.get_mut(k.as_slice()) else {
                continue;
            };
            row.panes -= 1;
            if row.panes == 0 {
                self.rows.remove(k.as_slice());
            } else {
                row.entry.unmerge(entry);
            }
        }
    }

    /// After closing a window: the running range starts at the next window's start (every
    /// pane before it has been evicted).
    pub fn start_at(&mut self, lo: i64) {
        if self.lo < lo {
            self.lo = lo.min(self.hi);
        }
    }
}

/// One key's entries in the panes of `[ws, e)`, merged oldest first (as `combine_panes` does).
fn merge_from_panes(panes: &Panes, key: &[u8], ws: i64, e: i64) -> Option<Entry> {
    let mut acc: Option<Entry> = None;
    for (_, pane) in panes.range(ws..e) {
        if let Some(x) = pane.get(key) {
            match &mut acc {
                Some(a) => a.merge(x),
                None => acc = Some(x.clone()),
            }
        }
    }
    acc
}
