//! Benchmark programs live beside this file; see benches/README.md.

fn main() {}
