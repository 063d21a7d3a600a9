//! A spec world explored end to end in process: a notes API on a SQLite file (capture
//! isolation), whose DELETE answers 204 without deleting. The explorer finds it from the
//! spec alone ("a deleted one is gone"), and not on the fixed API; the file is back at its
//! baseline, by an independent connection.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{OpenApiWorld, Spec, READS};
use crate::explore::Explorer;
use crate::journey::{Client, Method, Request, Response};
use crate::sqlite::SqliteStateManager;
use crate::{BackendConfig, StateManager};

const NOTES: &str = r##"
openapi: 3.1.0
info: {title: notes, version: "1"}
components:
  schemas:
    Note:
      type: object
      required: [id, text]
      properties: {id: {type: integer}, text: {type: string}}
paths:
  /notes:
    post:
      operationId: createNote
      requestBody:
        required: true
        content: {application/json: {schema: {type: object, required: [text], properties: {text: {type: string, example: hello}}}}}
      responses:
        "201": {description: made, content: {application/json: {schema: {$ref: "#/components/schemas/Note"}}}}
  /notes/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
    get:
      operationId: getNote
      responses:
        "200": {description: it, content: {application/json: {schema: {$ref: "#/components/schemas/Note"}}}}
        "404": {description: none}
    delete:
      operationId: deleteNote
      responses:
        "204": {description: deleted}
        "404": {description: none}
"##;

/// The notes API on `file`; with `bug`, DELETE answers 204 and deletes nothing.
fn notes_api(file: PathBuf, bug: bool) -> Client {
    Client::with_transport("http://notes.test", move |req: &Request| {
        let conn = rusqlite::Connection::open(&file).unwrap();
        let id = req
            .path()
            .strip_prefix("/notes/")
            .and_then(|i| i.parse::<i64>().ok());
        let note = |id: i64| -> Option<Value> {
            conn.query_row("SELECT id, text FROM notes WHERE id = ?1", [id], |r| {
                Ok(json!({"id": r.get::<_, i64>(0)?, "text": r.get::<_, String>(1)?}))
            })
            .ok()
        };
        Ok(match (req.method, id) {
            (Method::Post, None) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
                let text = body["text"].as_str().unwrap_or_default();
                conn.execute("INSERT INTO notes (text) VALUES (?1)", [text])
                    .unwrap();
                Response::new(201).with_json(&note(conn.last_insert_rowid()).unwrap())
            }
            (Method::Get, Some(id)) => match note(id) {
                Some(n) => Response::new(200).with_json(&n),
                None => Response::new(404),
            },
            (Method::Delete, Some(id)) if note(id).is_some() => {
                if !bug {
                    conn.execute("DELETE FROM notes WHERE id = ?1", [id])
                        .unwrap();
                }
                Response::new(204)
            }
            _ => Response::new(404),
        })
    })
}

fn dump(file: &Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, text FROM notes ORDER BY id")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

fn fresh(tag: &str) -> (PathBuf, SqliteStateManager) {
    let file = std::env::temp_dir().join(format!(
        "venomqa-openapi-{tag}-{}.sqlite",
        std::process::id()
    ));
    for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    let mut m = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(file.to_str().unwrap())
            .with_option("isolation", "capture"),
    )
    .unwrap();
    m.connect().unwrap();
    m.connection()
        .unwrap()
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL); INSERT INTO notes (text) VALUES ('kept')")
        .unwrap();
    (file, m)
}

#[test]
fn openapi_a_delete_that_deletes_nothing_is_found_from_the_spec_alone() {
    let (file, mut m) = fresh("buggy");
    let baseline = dump(&file);
    let world = OpenApiWorld::new(&Spec::parse(NOTES).unwrap())
        .build()
        .unwrap();
    let result = Explorer::new(&world, notes_api(file.clone(), true))
        .state_manager(&mut m)
        .max_depth(4)
        .run()
        .unwrap();
    let v = result
        .violation(READS)
        .unwrap_or_else(|| panic!("not found:\n{result}"));
    assert_eq!(
        v.sequence(),
        ["createNote", "deleteNote(notes 1)"],
        "{result}"
    );
    assert!(
        v.message.contains("answered 200 for a deleted resource"),
        "{}",
        v.message
    );
    assert_eq!(result.violations.len(), 1, "{result}");
    assert_eq!(
        dump(&file),
        baseline,
        "an independent connection sees the baseline"
    );
    drop(m);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn openapi_the_fixed_notes_api_passes_and_its_deleted_notes_are_gone() {
    let (file, mut m) = fresh("fixed");
    let baseline = dump(&file);
    let world = OpenApiWorld::new(&Spec::parse(NOTES).unwrap())
        .build()
        .unwrap();
    let result = Explorer::new(&world, notes_api(file.clone(), false))
        .state_manager(&mut m)
        .max_depth(4)
        .run()
        .unwrap();
    result.assert_passed();
    let statuses = result.coverage.outcomes();
    assert!(statuses.contains_key("204"), "{statuses:?}");
    assert!(
        result.states >= 6,
        "a second note after a deletion reuses its id, and is read as the live one: {result}"
    );
    assert_eq!(dump(&file), baseline);
    drop(m);
    let _ = std::fs::remove_file(&file);
}

mod model_based {
    use proptest::prelude::*;

    use super::*;
    use crate::journey::Context;
    use crate::openapi::call::{instances, Call, Credentials, Model, RESOURCES};
    use crate::openapi::model::plan;
    use crate::openapi::values::variants;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

        /// Random creates and deletes (of instance 1..3) through the spec's calls: the
        /// resources the context tracks agree with the table an independent connection
        /// reads: a live instance's row exists with its text, a deleted one's id is gone
        /// unless a later create got it again.
        #[test]
        fn the_tracked_resources_agree_with_the_database(ops in prop::collection::vec((any::<bool>(), 0usize..3), 1..12)) {
            let (file, m) = fresh("model");
            drop(m);
            let spec = Spec::parse(NOTES).unwrap();
            let (kinds, plans) = plan(&spec);
            let model = Model { spec: spec.clone(), kinds, plans, credentials: Credentials::default() };
            let client = notes_api(file.clone(), false);
            let delete = spec.operations().iter().position(|o| o.id == "deleteNote").unwrap();
            let create = Call { op: 0, slots: vec![], variant: variants(spec.operations()[0].body.as_ref().unwrap(), false, false, &[]).into_iter().next() };
            let mut ctx = Context::new();
            for (is_create, slot) in ops {
                let call = if is_create { create.clone() } else { Call { op: delete, slots: vec![slot], variant: None } };
                if model.enabled(&ctx, &call, 3) {
                    model.send(&client, &mut ctx, &call).unwrap();
                }
            }
            let rows = dump(&file);
            let tracked = instances(&ctx, &model.kinds[0]).to_vec();
            let live: Vec<i64> = tracked.iter().filter(|i| i.get("gone").is_none()).map(|i| i["id"].as_i64().unwrap()).collect();
            for id in &live {
                prop_assert!(rows.iter().any(|(r, _)| r == id), "live {id} missing from {rows:?}; ctx {:?}", ctx.get(RESOURCES));
            }
            for i in tracked.iter().filter(|i| i.get("gone").is_some()) {
                let id = i["id"].as_i64().unwrap();
                prop_assert!(live.contains(&id) || !rows.iter().any(|(r, _)| *r == id), "deleted {id} still in {rows:?}");
            }
            prop_assert_eq!(rows.len(), 1 + live.len(), "the seed row and the live ones: {:?}", rows);
            let _ = std::fs::remove_file(&file);
        }
    }
}
