//! Nothing but the dependency graph: see `Cargo.toml` and `tests/coexist.rs`.
