//! Async exploration (feature `journey-async`): async actions, setup and invariants
//! against an axum `Router` in process, writing to a SQLite file on its own connections,
//! with capture rollbacks between states; an independent connection checks the baseline.

use serde_json::json;

use super::*;
use crate::journey::async_tests::{db, dump, router};
use crate::journey::{Client, JourneyRunner};
use crate::StateManager;

fn add(name: &'static str) -> Action {
    Action::new_async(format!("add_{name}"), async move |client, ctx| {
        let r = client.post("/items").json(&json!({ "name": name })).await?;
        if r.status() == 201 {
            ctx.set(name, true);
        }
        Ok(())
    })
    .precondition(move |ctx| !ctx.contains(name))
}

/// Two adds and a wipe; the invariant allows at most two rows (the seed and one more).
fn world() -> World {
    World::new("items")
        .setup_async(async |client, ctx| {
            client.get("/health").await?.expect_status(200)?;
            ctx.set("ready", true);
            Ok(())
        })
        .action(add("a"))
        .action(add("b"))
        .action(Action::new_async("wipe", async |client, _| {
            client.delete("/items").await?;
            Ok(())
        }))
        .observe_async("count", async |check| {
            Ok(check.client().get("/items").await?.value("/count")?)
        })
        .invariant(Invariant::new_async("at most two items", async |check| {
            let n = check.client().get("/items").await?.value("/count")?;
            match n.as_i64() {
                Some(n) if n > 2 => Err(StepError::msg(format!("{n} items"))),
                _ => Ok(()),
            }
        }))
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_world_is_explored_in_process_and_its_violation_shrunk_and_replayed() {
    let mut db = db("explore");
    let before = dump(&db.file);
    let world = world();
    let result = Explorer::new(&world, Client::service(router(&db.file)))
        .state_manager(&mut db.manager)
        .max_depth(3)
        .run_async()
        .await
        .unwrap();
    println!("{result}");
    assert_eq!(result.stop, StopReason::Exhausted, "{result}");
    let v = result.violation("at most two items").expect("found");
    assert_eq!(v.sequence(), ["add_a", "add_b"]);
    assert_eq!(v.message, "3 items");
    assert!(result.coverage.never_run().is_empty());
    assert_eq!(
        dump(&db.file),
        before,
        "an independent connection sees the baseline"
    );

    // The journey it emits runs the async actions again and fails the same way.
    let replay = JourneyRunner::new(Client::service(router(&db.file)))
        .state_manager(&mut db.manager)
        .invariants(world.invariants())
        .run_async(v.journey())
        .await
        .unwrap();
    assert!(!replay.passed(), "{replay}");
    assert!(replay.to_string().contains("3 items"), "{replay}");
    assert_eq!(dump(&db.file), before);
}

#[test]
fn a_blocking_run_refuses_an_async_world_naming_what_is_async() {
    let mut db = db("explore-refused");
    let client = Client::with_transport("http://x.test", |_: &crate::journey::Request| {
        Ok(crate::journey::Response::new(200))
    });
    let e = Explorer::new(&world(), client)
        .state_manager(&mut db.manager)
        .run()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "world \"items\" has an async setup, which a blocking run() cannot await; call .run_async().await inside a Tokio runtime (#[tokio::test] or an async #[venom_test])"
    );
    assert!(
        db.manager.checkpoints().is_empty(),
        "nothing was checkpointed"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_observation_is_awaited_and_its_failure_is_a_fault_naming_it() {
    let mut db = db("explore-observe");
    let before = dump(&db.file);
    let world = World::new("observed")
        .action(add("a"))
        .observe_async("needs_a", async |check| {
            if check.context().contains("a") {
                return Err(StepError::msg("no observation after add_a"));
            }
            Ok(serde_json::Value::Null)
        });
    let result = Explorer::new(&world, Client::service(router(&db.file)))
        .state_manager(&mut db.manager)
        .run_async()
        .await
        .unwrap();
    assert_eq!(result.stop, StopReason::Fault, "{result}");
    let fault = result.fault.as_ref().expect("a fault");
    assert_eq!(fault.kind, FaultKind::ObservationFailed);
    assert_eq!(
        fault.message,
        "observation \"needs_a\" failed: no observation after add_a"
    );
    assert_eq!(dump(&db.file), before);
    // A blocking run names the async observation when nothing else is async.
    let world = World::new("observed")
        .action(Action::new("noop", |_, _| Ok(())))
        .observe_async("needs_a", async |_| Ok(serde_json::Value::Null));
    let e = Explorer::new(&world, Client::service(router(&db.file)))
        .state_manager(&mut db.manager)
        .run()
        .unwrap_err();
    assert!(
        e.to_string().contains("the async observation \"needs_a\""),
        "{e}"
    );
}
