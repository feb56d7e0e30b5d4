//! Window specifications and assignment of event times to panes and windows.

/// A window in GROUP BY. Times are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Tumbling {
        size_ms: i64,
    },
    /// Windows of `size_ms` starting every `slide_ms`.
    Hopping {
        size_ms: i64,
        slide_ms: i64,
    },
    /// Per key, events closer than `gap_ms` fall into one window.
    Session {
        gap_ms: i64,
    },
}

impl Window {
    pub fn tumbling(size_ms: i64) -> Window {
        Window::Tumbling { size_ms }
    }

    pub fn hopping(size_ms: i64, slide_ms: i64) -> Window {
        Window::Hopping { size_ms, slide_ms }
    }

    pub fn session(gap_ms: i64) -> Window {
        Window::Session { gap_ms }
    }
}

/// Fixed-grid windows (tumbling, hopping) are kept as panes of `gcd(size, slide)`; a window is
/// the combination of its `size / pane` panes, so a record updates one pane whatever the overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub size_ms: i64,
    pub slide_ms: i64,
    pub pane_ms: i64,
}

impl Grid {
    pub fn new(size_ms: i64, slide_ms: i64) -> Grid {
        Grid {
            size_ms,
            slide_ms,
            pane_ms: gcd(size_ms, slide_ms),
        }
    }

    pub fn pane_of(&self, ts: i64) -> i64 {
        ts.div_euclid(self.pane_ms) * self.pane_ms
    }

    /// End of the last window that contains the pane starting at `pane`.
    pub fn last_end_for_pane(&self, pane: i64) -> i64 {
        pane.div_euclid(self.slide_ms) * self.slide_ms + self.size_ms
    }

    /// End of the first window that contains the pane starting at `pane`.
    pub fn first_end_for_pane(&self, pane: i64) -> i64 {
        ((pane - self.size_ms).div_euclid(self.slide_ms) + 1) * self.slide_ms + self.size_ms
    }

    /// Largest window end at or below `t`.
    pub fn end_floor(&self, t: i64) -> i64 {
        (t - self.size_ms).div_euclid(self.slide_ms) * self.slide_ms + self.size_ms
    }

    /// The windows `(start, end)` containing the pane starting at `pane`, oldest first.
    pub fn windows_of_pane(&self, pane: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        let first = self.first_end_for_pane(pane);
        let last = self.last_end_for_pane(pane);
        (0..)
            .map(move |i| first + i * self.slide_ms)
            .take_while(move |e| *e <= last)
            .map(move |e| (e - self.size_ms, e))
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopping_panes() {
        let g = Grid::new(60_000, 5_000);
        assert_eq!(g.pane_ms, 5_000);
        assert_eq!(g.pane_of(7_300), 5_000);
        let w: Vec<_> = g.windows_of_pane(5_000).collect();
        assert_eq!(w.len(), 12);
        assert_eq!(w[0], (-50_000, 10_000));
        assert_eq!(w[11], (5_000, 65_000));
        let g = Grid::new(10, 4);
        assert_eq!(g.pane_ms, 2);
        let w: Vec<_> = g.windows_of_pane(6).collect();
        assert_eq!(w, vec![(0, 10), (4, 14)]);
        assert_eq!(g.end_floor(13), 10);
    }
}
