//! What several test modules share: the other processes they start, the capture
//! exactness property test, and the private servers of the resilience tests.

#[cfg_attr(
    not(any(
        feature = "mysql",
        feature = "postgres",
        feature = "redis",
        feature = "mongodb"
    )),
    allow(dead_code)
)]
pub mod capture_exact;
pub mod cli;
#[cfg(any(feature = "mysql", feature = "postgres", feature = "redis"))]
pub mod resilience;
pub mod writer;

/// Every feature of venomqa-tests, and whether this binary was built with it.
const FEATURES: [(&str, bool); 8] = [
    ("mysql", cfg!(feature = "mysql")),
    ("postgres", cfg!(feature = "postgres")),
    ("redis", cfg!(feature = "redis")),
    ("mongodb", cfg!(feature = "mongodb")),
    ("tokio", cfg!(feature = "tokio")),
    ("sqlx-postgres", cfg!(feature = "sqlx-postgres")),
    ("sqlx-mysql", cfg!(feature = "sqlx-mysql")),
    ("sqlx-sqlite", cfg!(feature = "sqlx-sqlite")),
];

/// The package selection and features a child `cargo test` or `cargo nextest run` of the
/// fixture (`logs.rs`, `cli_report.rs`) builds with, so that it finds this very build
/// fresh instead of building the test binary again: the whole workspace with every
/// feature or with none (the suite's two builds), else this package with its features.
pub fn cargo_selection() -> Vec<String> {
    let on: Vec<&str> = FEATURES
        .iter()
        .filter_map(|&(name, on)| on.then_some(name))
        .collect();
    if on.is_empty() {
        vec!["--workspace".into()]
    } else if on.len() == FEATURES.len() {
        vec!["--workspace".into(), "--all-features".into()]
    } else {
        vec![
            "-p".into(),
            "venomqa-tests".into(),
            "--features".into(),
            on.join(","),
        ]
    }
}

/// The path that runs this test binary again, as a child in a role or a single test.
///
/// On Linux it is `/proc/self/exe`, which names the running binary's own file even after
/// cargo replaced it on disk (a child `cargo test` of `logs.rs` or `cli_report.rs` may
/// relink the binary while this run is still going); elsewhere the binary's path.
pub fn this_binary() -> std::path::PathBuf {
    if cfg!(target_os = "linux") {
        "/proc/self/exe".into()
    } else {
        std::env::current_exe().expect("the test binary knows its own path")
    }
}
