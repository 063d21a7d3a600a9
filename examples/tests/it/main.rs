//! The examples' tests, in one binary: the shop's journeys and exploration (each test
//! starts the shop server on a free port), the same on MySQL/MariaDB (feature `mysql`), a
//! `#[sqlx::test]` suite ported to venomqa (feature `sqlx-sqlite`), the HTML reports in
//! headless Chromium (feature `browser`), and the custom-backend example's own tests.

#[cfg(feature = "axum")]
mod axum_shop;
mod explore;
#[cfg(feature = "mysql")]
mod explore_mysql;
mod journeys;
#[cfg(feature = "openapi")]
mod openapi;
#[cfg(feature = "browser")]
mod report_html;
#[cfg(feature = "mysql")]
mod shop_mysql;
#[cfg(feature = "sqlx-sqlite")]
mod sqlx_port;
mod workers;

/// `examples/filestore_backend.rs`, with its tests; its `main` is run by
/// `cargo run --example filestore_backend`.
#[allow(dead_code)]
#[path = "../../filestore_backend.rs"]
mod filestore_backend;
