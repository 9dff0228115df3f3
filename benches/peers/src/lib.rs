//! Benchmarks only: see `benches/overhead.rs` and README.md.
