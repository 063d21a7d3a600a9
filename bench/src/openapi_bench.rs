//! The spec-driven exploration against Schemathesis (issue 21), in one run: the same shop
//! server (release build), the same spec (`examples/shop/openapi.yaml`, served at
//! `/openapi.yaml`), the same seeded bugs, the same catalogue and customer to start
//! from, and the same time budget per bug.
//!
//! - venomqa: `OpenApiWorld` with no hand-written action or invariant, breadth first to
//!   depth 6, stopping at the first violation (its time includes the setup and the
//!   shrinking), on a SQLite capture entry; the database is compared with its baseline by
//!   an independent connection afterwards.
//! - Schemathesis 4.x: `schemathesis run --phases stateful --checks all --max-time
//!   <budget>` (installed by `scripts/schemathesis.sh` into `target/peers/venv`), driven
//!   by `bench/peers/schemathesis_run.py`, which reads the time of the first failure
//!   matching the bug from Schemathesis's own event stream.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use venomqa::explore::{Explorer, SERVER_ERRORS};
use venomqa::openapi::{Inputs, READS, RESPONSE_SCHEMA};
use venomqa::StateManager;
use venomqa_examples::openapi::{fetch_spec, spec_world, SPEC_BUGS};
use venomqa_examples::{dump, ShopServer};

use crate::journey::{capture_manager, client, fresh, one, shop_binary};
use crate::report::{Report, Verdict};

/// One tool's result on one bug.
#[derive(Debug, Default, Clone)]
struct Outcome {
    found: bool,
    seconds: Option<f64>,
    sequence: Option<u64>,
    clean: bool,
    note: String,
}

/// Records the rows, the peer table and the targets.
pub fn run(report: &mut Report, workspace: &Path, quick: bool) {
    let budget = if quick { 20 } else { 60 };
    eprintln!("openapi: the shop's seeded bugs from its spec, venomqa against Schemathesis, {budget} s per bug");
    let shop = match shop_binary(workspace) {
        Ok(p) => p,
        Err(e) => return report.skip("sqlite", "openapi", "spec-driven exploration", e),
    };
    let dir = workspace.join("target/venomqa-bench/openapi");
    let _ = std::fs::create_dir_all(&dir);
    let mut bugs: Vec<(&str, Inputs)> = SPEC_BUGS.to_vec();
    bugs.push(("none", Inputs::Boundary));
    let schemathesis = install(workspace);
    let mut table = Vec::new();
    for (bug, inputs) in &bugs {
        let ours = venomqa_run(&shop, &dir, bug, *inputs, budget).unwrap_or_else(|e| Outcome {
            note: e,
            ..Outcome::default()
        });
        if let Some(s) = ours.seconds {
            report.add(
                "sqlite",
                "openapi",
                format!("venomqa, {bug}"),
                one(Duration::from_secs_f64(s)),
                ours.note.clone(),
            );
        }
        let peer = match &schemathesis {
            Ok(exe) => peer_run(workspace, exe, &shop, &dir, bug, budget),
            Err(e) => Err(e.clone()),
        }
        .unwrap_or_else(|e| Outcome {
            note: e,
            ..Outcome::default()
        });
        if let Some(s) = peer.seconds {
            report.add(
                "sqlite",
                "openapi",
                format!("Schemathesis, {bug}"),
                one(Duration::from_secs_f64(s)),
                peer.note.clone(),
            );
        }
        table.push((bug.to_string(), ours, peer));
    }
    let cell = |o: &Outcome| {
        let found = if o.found { "found" } else { "not found" };
        let time = o.seconds.map_or("-".to_owned(), |s| format!("{s:.2} s"));
        let seq = o.sequence.map_or("-".to_owned(), |n| n.to_string());
        let clean = if o.clean { "clean" } else { "left dirty" };
        format!("{found} | {time} | {seq} | {clean}")
    };
    let mut markdown = format!(
        "{budget} s budget per bug; time to the first failure matching the bug (venomqa's \
         includes its setup and shrinking); the sequence as each tool reports it; the \
         database after the run, by an independent connection.\n\n\
         | bug | venomqa | time | sequence | database | Schemathesis | time | sequence | database |\n\
         |---|---|---:|---:|---|---|---:|---:|---|\n"
    );
    for (bug, ours, peer) in &table {
        markdown.push_str(&format!("| {bug} | {} | {} |\n", cell(ours), cell(peer)));
        for (tool, o) in [("venomqa", ours), ("Schemathesis", peer)] {
            if !o.note.is_empty() {
                report.note(format!("openapi, {bug}, {tool}: {}", o.note));
            }
        }
    }
    println!("\n{markdown}");
    let file = workspace.join("target/venomqa-bench/openapi-peers.md");
    match std::fs::write(&file, &markdown) {
        Ok(()) => report.note(format!("openapi: the peer table is in {}", file.display())),
        Err(e) => report.note(format!("openapi: could not write {}: {e}", file.display())),
    }
    judge(report, &table);
}

fn judge(report: &mut Report, table: &[(String, Outcome, Outcome)]) {
    let seeded: Vec<_> = table.iter().filter(|(b, _, _)| b != "none").collect();
    let every = seeded.iter().all(|(_, ours, _)| ours.found);
    let faster =
        seeded.iter().all(
            |(_, ours, peer)| match (ours.seconds, peer.found, peer.seconds) {
                (Some(a), true, Some(b)) => ours.found && a < b,
                _ => ours.found,
            },
        );
    let shorter = seeded
        .iter()
        .all(|(_, ours, peer)| match (ours.sequence, peer.sequence) {
            (Some(a), Some(b)) if peer.found => a <= b,
            _ => ours.found,
        });
    let clean = table.iter().all(|(_, ours, _)| ours.clean);
    let none_clean = table
        .iter()
        .find(|(b, _, _)| b == "none")
        .is_some_and(|(_, o, _)| !o.found);
    let verdict = |ok| if ok { Verdict::Met } else { Verdict::Missed };
    report.target(
        "openapi: venomqa finds every seeded bug from the spec alone",
        verdict(every),
        "within the budget",
    );
    report.target(
        "openapi: each faster than Schemathesis, or where it does not find it",
        verdict(faster),
        "time to the first failure matching the bug",
    );
    report.target(
        "openapi: sequences no longer than Schemathesis's",
        verdict(shorter),
        "Schemathesis's printed reproduction can be shorter because it reuses ids from earlier sequences; it does not replay on a fresh database",
    );
    report.target(
        "openapi: the database is left at its baseline",
        verdict(clean),
        "an independent connection's dump",
    );
    report.target(
        "openapi: nothing found with the bugs off",
        verdict(none_clean),
        "venomqa, boundary inputs",
    );
}

fn venomqa_run(
    shop: &Path,
    dir: &Path,
    bug: &str,
    inputs: Inputs,
    budget: u64,
) -> Result<Outcome, String> {
    let file = fresh(dir, &format!("{bug}.sqlite"));
    let mut m = capture_manager(&file)?;
    let url = m.url().map_err(|e| e.to_string())?;
    let server = match bug {
        "none" => ShopServer::start(&shop.to_string_lossy(), url.expose()),
        _ => ShopServer::start_buggy(&shop.to_string_lossy(), url.expose(), bug),
    };
    let baseline = dump(&file);
    let spec = fetch_spec(&client(server.url())).map_err(|e| e.to_string())?;
    let world = spec_world(&spec, inputs).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let result = Explorer::new(&world, client(server.url()))
        .state_manager(&mut m)
        .max_depth(6)
        .stop_on_violation(true)
        .time_limit(Duration::from_secs(budget))
        .run()
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let clean = dump(&file) == baseline;
    let matching = result.violations.iter().find(|v| match bug {
        "voucher_oversell" => v.invariant == READS && v.message.contains("/stock"),
        "cancel_drops_total" => {
            (v.invariant == RESPONSE_SCHEMA || v.invariant == READS)
                && v.message.contains("total_cents")
        }
        "long_name" => v.invariant == SERVER_ERRORS,
        _ => true,
    });
    Ok(Outcome {
        found: matching.is_some(),
        seconds: Some(seconds),
        sequence: matching.map(|v| v.sequence.len() as u64),
        clean,
        note: format!(
            "{} states, {} steps, {:?}{}",
            result.states,
            result.steps,
            inputs,
            matching.map_or(String::new(), |v| format!("; {}", v.invariant))
        ),
    })
}

/// The Schemathesis executable, installed if missing.
fn install(workspace: &Path) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(workspace.join("scripts/schemathesis.sh"))
        .output()
        .map_err(|e| format!("could not run scripts/schemathesis.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/schemathesis.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .last()
        .map(str::to_owned)
        .ok_or_else(|| "scripts/schemathesis.sh printed no path".to_owned())
}

fn peer_run(
    workspace: &Path,
    exe: &str,
    shop: &Path,
    dir: &Path,
    bug: &str,
    budget: u64,
) -> Result<Outcome, String> {
    let work = dir.join(format!("schemathesis-{bug}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let out = Command::new("python3")
        .arg(workspace.join("bench/peers/schemathesis_run.py"))
        .args([
            "--schemathesis",
            exe,
            "--bug",
            bug,
            "--budget",
            &budget.to_string(),
        ])
        .arg("--shop")
        .arg(shop)
        .arg("--workdir")
        .arg(&work)
        .output()
        .map_err(|e| format!("could not run bench/peers/schemathesis_run.py: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    let Some(line) = line else {
        return Err(format!(
            "schemathesis_run.py printed no result ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ));
    };
    let v: Value = serde_json::from_str(line).map_err(|e| format!("schemathesis_run.py: {e}"))?;
    let failures = v["failures"].as_array().map_or(0, Vec::len);
    Ok(Outcome {
        found: v["found"] == true,
        seconds: v["time_to_first_s"].as_f64(),
        sequence: v["sequence_len"].as_u64(),
        clean: v["db_clean"] == true,
        note: format!(
            "Schemathesis {}, {failures} kinds of failure reported in {:.0} s",
            v["version"].as_str().unwrap_or("?"),
            v["wall_s"].as_f64().unwrap_or_default()
        ),
    })
}
