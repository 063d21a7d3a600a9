//! The exploration row: the shop world (`venomqa_examples::explore::shop_world_api_only`:
//! its invariants read through the API, which the copy-and-restore baseline can serve) explored
//! depth first to depth 6 against the shop server (its own process, a SQLite file, the
//! bug off: the whole space), in the same run:
//!
//! 1. venomqa: every backtrack a capture rollback (the SQLite file's pages copied back);
//! 2. what a copy-and-restore explorer does: a template copy of the database at each
//!    checkpoint, and each backtrack the server stopped, the template copied back and the
//!    server started again (the journey row's `RestartFromTemplate`).
//!
//! Both fingerprint states by the context alone (the template state manager has no
//! diff; the shop world's context tells its states apart), so both explore exactly the
//! same states with the same steps; a third run adds the capture diff to the fingerprint,
//! as the explorer does by default. The same client (no keep-alive) serves all three; a
//! fourth capture run keeps connections alive, as a test would (the restarted server of
//! the baseline breaks pooled connections).
//! The rows are the time per state (median over the runs), with states per second.
//!
//! (`venomqa::explore` is compiled in through `venomqa-examples`, which turns the
//! feature on.)

use std::path::Path;
use std::time::Duration;

use venomqa::explore::{ExplorationResult, Explorer, Strategy};
use venomqa::StateManager;
use venomqa_examples::explore::shop_world_api_only;
use venomqa_examples::{dump, ShopServer};

use crate::harness::stats;
use crate::journey::{capture_manager, client, fresh, shop_binary, RestartFromTemplate};
use crate::report::Report;

const DEPTH: usize = 6;

/// Records the exploration rows.
pub fn run(report: &mut Report, workspace: &Path, quick: bool) {
    let runs = if quick { 1 } else { 3 };
    eprintln!("explore: the shop world, depth first to depth {DEPTH}, {runs} runs each");
    let case = |what: &str| format!("explore, depth {DEPTH}: per state ({what})");
    let shop = match shop_binary(workspace) {
        Ok(p) => p,
        Err(e) => {
            report.skip("sqlite", "explore", case("capture"), e);
            return;
        }
    };
    let dir = workspace.join("target/venomqa-bench");
    let _ = std::fs::create_dir_all(&dir);
    let sample = |f: &dyn Fn() -> Result<ExplorationResult, String>| {
        (0..runs).map(|_| f()).collect::<Result<Vec<_>, String>>()
    };
    let capture = match sample(&|| capture_run(&shop, &dir, false, false)) {
        Ok(r) => r,
        Err(e) => {
            report.skip("sqlite", "explore", case("capture"), e);
            return;
        }
    };
    let first = &capture[0];
    let per_state = |r: &ExplorationResult| r.duration / r.states.max(1) as u32;
    let capture_stats = stats(capture.iter().map(per_state).collect());
    let rollback = |rs: &[ExplorationResult]| {
        stats(
            rs.iter()
                .map(|r| r.rollback_time / r.rollbacks.max(1) as u32)
                .collect(),
        )
        .median
    };
    let sps = |d: Duration| 1.0 / d.as_secs_f64().max(1e-12);
    report.add(
        "sqlite",
        "explore",
        case("capture"),
        capture_stats,
        format!(
            "{:.0} states/s: {} states, {} steps, {} rollbacks of {:.1} ms ({:.0}% of the run)",
            sps(capture_stats.median),
            first.states,
            first.steps,
            first.rollbacks,
            rollback(&capture).as_secs_f64() * 1e3,
            100.0 * first.rollback_time.as_secs_f64() / first.duration.as_secs_f64()
        ),
    );
    match sample(&|| capture_run(&shop, &dir, false, true)) {
        Ok(kept) => {
            let s = stats(kept.iter().map(per_state).collect());
            report.add(
                "sqlite",
                "explore",
                case("capture, keep-alive client"),
                s,
                format!(
                    "{:.0} states/s: connections kept open, as a test would (a restarted server cannot)",
                    sps(s.median)
                ),
            );
        }
        Err(e) => report.skip("sqlite", "explore", case("capture, keep-alive"), e),
    }
    match sample(&|| capture_run(&shop, &dir, true, false)) {
        Ok(with_diff) => {
            let s = stats(with_diff.iter().map(per_state).collect());
            let same = with_diff[0].states == first.states;
            report.add(
                "sqlite",
                "explore",
                case("capture, fingerprint with the diff"),
                s,
                format!(
                    "{:.0} states/s; reading the diff after every step{}",
                    sps(s.median),
                    if same {
                        String::new()
                    } else {
                        format!(
                            " ({} states: the diff told more apart)",
                            with_diff[0].states
                        )
                    }
                ),
            );
        }
        Err(e) => report.skip("sqlite", "explore", case("capture with the diff"), e),
    }
    match sample(&|| template_run(&shop, &dir)) {
        Ok(template) => {
            let t = &template[0];
            if (t.states, t.steps) != (first.states, first.steps) {
                report.skip(
                    "sqlite",
                    "explore",
                    case("template + restart"),
                    format!(
                        "not the same exploration: {} states / {} steps against capture's {} / {}",
                        t.states, t.steps, first.states, first.steps
                    ),
                );
                return;
            }
            let s = stats(template.iter().map(per_state).collect());
            report.add(
                "sqlite",
                "explore",
                case("template + restart"),
                s,
                format!(
                    "{:.0} states/s, {} restores of {:.1} ms ({:.0}% of the run); capture explores {:.1}x as many states per second",
                    sps(s.median),
                    t.rollbacks,
                    rollback(&template).as_secs_f64() * 1e3,
                    100.0 * t.rollback_time.as_secs_f64() / t.duration.as_secs_f64(),
                    s.median.as_secs_f64() / capture_stats.median.as_secs_f64()
                ),
            );
        }
        Err(e) => report.skip("sqlite", "explore", case("template + restart"), e),
    }
}

fn explorer_run(explorer: Explorer<'_>, label: &str) -> Result<ExplorationResult, String> {
    let mut explorer = explorer
        .strategy(Strategy::Dfs)
        .max_depth(DEPTH)
        .max_steps(None);
    let result = explorer.run().map_err(|e| e.to_string())?;
    if !result.passed() {
        return Err(format!("the {label} exploration did not pass:\n{result}"));
    }
    Ok(result)
}

fn capture_run(
    shop: &Path,
    dir: &Path,
    diff: bool,
    keep_alive: bool,
) -> Result<ExplorationResult, String> {
    let file = fresh(dir, "explore-capture.sqlite");
    let mut m = capture_manager(&file)?;
    let server = ShopServer::start(
        &shop.to_string_lossy(),
        m.url().map_err(|e| e.to_string())?.expose(),
    );
    let baseline = dump(&file);
    let result = explorer_run(
        Explorer::new(
            &shop_world_api_only(),
            if keep_alive {
                server.client()
            } else {
                client(server.url())
            },
        )
        .state_manager(&mut m)
        .fingerprint_diff(diff),
        "capture",
    )?;
    if dump(&file) != baseline {
        return Err("the database is not back at its baseline".into());
    }
    Ok(result)
}

fn template_run(shop: &Path, dir: &Path) -> Result<ExplorationResult, String> {
    let file = fresh(dir, "explore-template.sqlite");
    let db_url = format!("sqlite://{}", file.display());
    let server = ShopServer::start(&shop.to_string_lossy(), &db_url);
    let port: u16 = server
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("no port")?;
    let url = server.url().to_owned();
    let mut m = RestartFromTemplate::new(shop, &file, db_url, port, server);
    explorer_run(
        Explorer::new(&shop_world_api_only(), client(&url))
            .state_manager(&mut m)
            .fingerprint_diff(false),
        "template",
    )
}
