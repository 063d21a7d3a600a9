//! venomqa's integration tests, in one binary: a module per backend and concern. Modules
//! of a server-backed backend are compiled with that backend's cargo feature
//! (`--all-features` builds them all), and fail loudly when their server is absent.
//!
//! The binary also plays the other processes some tests need (the capture tests' writer,
//! the `venomqa` command, a worker database's session): started again with `VENOMQA_TEST_ROLE` set, it runs that role
//! before the test harness starts (see `support::writer` and `support::cli`).

mod support;

/// Runs the role `VENOMQA_TEST_ROLE` names, if any, and exits; otherwise the harness runs
/// the tests as usual.
#[ctor::ctor(unsafe)]
fn play_a_role() {
    match std::env::var(support::writer::ROLE).as_deref() {
        Ok("writer") => support::writer::main(),
        Ok("cli") => support::cli::main(),
        Ok("worker") => workers::main(),
        Ok(other) => {
            eprintln!(
                "{}={other:?} names no role (writer, cli, worker)",
                support::writer::ROLE
            );
            std::process::exit(2)
        }
        Err(_) => {}
    }
}

mod async_backend;
mod async_tests;
#[cfg(feature = "postgres")]
mod cli_capture_reset;
mod cli_report;
mod core;
mod fixture;
mod inference;
mod leases;
mod logs;
mod properties;
mod sqlite;
mod ui;
mod workers;

#[cfg(feature = "mongodb")]
mod mongodb;
#[cfg(feature = "mongodb")]
mod mongodb_capture;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "mysql")]
mod mysql_capture;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_capture;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_capture;
#[cfg(feature = "mysql")]
mod resilience_mysql;
#[cfg(feature = "postgres")]
mod resilience_postgres;
#[cfg(feature = "redis")]
mod resilience_redis;
/// The sqlx session tests' macro (`sqlx_tests!`), shared by the three modules below.
#[cfg(any(
    feature = "sqlx-mysql",
    feature = "sqlx-postgres",
    feature = "sqlx-sqlite"
))]
#[macro_use]
mod sqlx_common;
#[cfg(feature = "sqlx-mysql")]
mod sqlx_mysql;
#[cfg(feature = "sqlx-postgres")]
mod sqlx_postgres;
#[cfg(feature = "sqlx-sqlite")]
mod sqlx_sqlite;
