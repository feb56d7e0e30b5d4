//! Millrace benchmarks and load tools (placeholder: filled in below).
