//! Exploring an API from its OpenAPI spec alone: the shop server (its own process, a
//! SQLite file with capture isolation) serves `GET /openapi.yaml`; venomqa builds the
//! actions, their dependencies and the invariants from it, explores breadth first, and
//! prints what it found, with the `#[venom_test]` that reproduces it. No action or
//! invariant is written by hand.
//!
//! ```text
//! cargo run -p venomqa-examples --features openapi --example openapi_explore [-- BUG]
//! ```
//!
//! `BUG` is a seeded bug of the shop (`voucher_oversell`, the default;
//! `cancel_drops_total`; `long_name`, found with boundary inputs) or `none`. The program
//! exits with 1 when the exploration finds a violation, as a test would fail; its own test
//! (`cargo test -p venomqa-examples --features openapi --example openapi_explore`) checks
//! that it finds the default one.

use std::path::{Path, PathBuf};
use std::process::Command;

use venomqa::explore::{ExplorationResult, Explorer};
use venomqa::openapi::Inputs;
use venomqa::sqlite::SqliteStateManager;
use venomqa::{BackendConfig, StateManager};
use venomqa_examples::openapi::{fetch_spec, spec_world, SPEC_BUGS};
use venomqa_examples::{dump, ShopServer};

/// The shop binary beside this program's directory (`target/<profile>/shop`), built with
/// cargo first if it is not there (`cargo run --example` does not build the package's
/// binaries).
fn shop_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where is this program? {e}"))?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("this program is not in target/<profile>/examples")?;
    let shop = profile.join("shop");
    if !shop.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", "venomqa-examples", "--bin", "shop"]);
        if profile.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .map_err(|e| format!("could not run cargo: {e}"))?;
        if !status.success() || !shop.exists() {
            return Err(format!(
                "building the shop server failed ({status}); try cargo build -p venomqa-examples --bin shop"
            ));
        }
    }
    Ok(shop)
}

/// Explores the shop with `bug` on (or none), from its spec, on a fresh SQLite file;
/// checks that an independent connection finds the file at its baseline afterwards.
fn explore(bug: &str) -> Result<ExplorationResult, String> {
    let inputs = SPEC_BUGS
        .iter()
        .find(|(b, _)| *b == bug)
        .map_or(Inputs::Boundary, |(_, inputs)| *inputs);
    let file = std::env::temp_dir().join(format!(
        "venomqa-openapi-example-{bug}-{}.sqlite",
        std::process::id()
    ));
    for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    let mut db = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(format!("sqlite://{}", file.display()))
            .with_option("isolation", "capture"),
    )
    .and_then(|mut m| m.connect().map(|()| m))
    .map_err(|e| e.to_string())?;
    let url = db.url().map_err(|e| e.to_string())?;
    let shop = shop_binary()?;
    let server = match bug {
        "none" => ShopServer::start(&shop.to_string_lossy(), url.expose()),
        _ => ShopServer::start_buggy(&shop.to_string_lossy(), url.expose(), bug),
    };
    let baseline = dump(&file);
    let spec = fetch_spec(&server.client()).map_err(|e| e.to_string())?;
    let world = spec_world(&spec, inputs).map_err(|e| e.to_string())?;
    let result = Explorer::new(&world, server.client())
        .state_manager(&mut db)
        // Every seeded bug is within 6 actions; with the bugs off, 4 keeps it short.
        .max_depth(if bug == "none" { 4 } else { 6 })
        .stop_on_violation(bug != "none")
        .run()
        .map_err(|e| e.to_string())?;
    if dump(&file) != baseline {
        return Err("the database was not put back at its baseline".into());
    }
    drop(db);
    for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    Ok(result)
}

fn main() {
    let bug = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "voucher_oversell".into());
    match explore(&bug) {
        Ok(result) => {
            println!("{result}");
            if let Some(v) = result.violations.first() {
                println!(
                    "{}",
                    v.to_rust(&venomqa::explore::RustTemplate::new("my_spec_world()"))
                );
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("openapi_explore: {e}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::explore;

    /// What `cargo run --example openapi_explore` does by default; the other bugs and the
    /// fixed shop are in `tests/it/openapi.rs`.
    #[test]
    fn openapi_example_finds_the_voucher_oversell_from_the_spec_alone() {
        let result = explore("voucher_oversell").unwrap();
        let v = result.violations.first().expect("found");
        assert_eq!(v.invariant, venomqa::openapi::READS);
        assert_eq!(v.sequence.len(), 6, "{result}");
    }
}
