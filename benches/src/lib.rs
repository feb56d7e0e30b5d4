//! Millrace benchmarks. Owns the criterion benchmarks under `benches/` (storage today: append,
//! sequential read, offset lookup, open of a 1,000-segment log) and, later, the
//! producer/consumer load tool. Depends only on the crates it measures; never depended on.
//!
//! Run: `cargo bench -p millrace-benches` (short runs: 10 samples, 3 s each).
