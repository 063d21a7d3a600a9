//! Resilience on PostgreSQL (to be filled).
#[path = "resilience/support.rs"]
mod support;
