//! `venomqa capture reset <entry>`: the way out after DDL inside a capture session, without
//! dropping the database. An app that runs its migrations inside a session leaves the
//! session's rollback unable to restore (the schema changed), and every later session is
//! refused; the command removes capture's installation, keeps the data as it is, and the
//! next session installs capture for the new schema and works. Needs PostgreSQL at
//! 127.0.0.1:5432 (trust).

use std::path::Path;

use venomqa::postgres::driver::{Client, NoTls};
use venomqa::postgres::PostgresCaptureSession;

const DATABASE: &str = "vq_capture_reset";

fn client(database: &str) -> Client {
    Client::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={database}"),
        NoTls,
    )
    .unwrap_or_else(|e| panic!("PostgreSQL at 127.0.0.1:5432 is needed: {e}"))
}

#[test]
fn capture_reset_is_the_way_out_after_ddl_inside_a_session() {
    // A database and a configuration of this test's own, new each run.
    let mut admin = client("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
        .unwrap();
    client(DATABASE)
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one')")
        .unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capture_reset");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("venomqa.yaml"),
        format!(
            "backends:\n  shop:\n    backend: postgres\n    url: postgres://postgres@127.0.0.1:5432/{DATABASE}\n    isolation: capture\n"
        ),
    )
    .unwrap();
    let config = dir.join("venomqa.yaml");
    let session = || {
        PostgresCaptureSession::builder()
            .config_dir(&dir)
            .entry("shop")
            .name("capture_reset")
    };

    // The app migrates inside the session: the session's end cannot restore, and says so.
    let s: PostgresCaptureSession = session().open().unwrap();
    client(DATABASE)
        .batch_execute(
            "INSERT INTO items VALUES (2, 'two'); ALTER TABLE items ADD COLUMN price int",
        )
        .unwrap();
    let end = s.finish().unwrap_err().to_string();
    assert!(end.contains("schema changed"), "{end}");
    assert!(end.contains("items"), "the message names the table: {end}");

    // Every later session is refused, naming the way out.
    let refused = session().open().map(drop).unwrap_err().to_string();
    assert!(refused.contains("venomqa capture reset"), "{refused}");

    // The way out: the command, run where the configuration is.
    let out = crate::support::cli::command()
        .args(["capture", "reset", "shop"])
        .current_dir(&dir)
        .env_remove("VENOMQA_CONFIG")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("shop (postgres)"), "{said}");

    // The data is as the app left it, and capture works again on the new schema.
    let rows = |c: &mut Client| -> Vec<String> {
        c.query("SELECT id::text || ' ' || name || ' ' || coalesce(price::text, '-') FROM items ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let kept = rows(&mut client(DATABASE));
    assert_eq!(kept, ["1 one -", "2 two -"]);
    session().run(|_: &mut PostgresCaptureSession| {
        client(DATABASE)
            .batch_execute("UPDATE items SET price = 5; INSERT INTO items VALUES (3, 'three', 1)")
            .unwrap();
    });
    assert_eq!(
        rows(&mut client(DATABASE)),
        kept,
        "rolled back on the new schema"
    );

    // An entry without capture has nothing to reset, and says so.
    std::fs::write(
        &config,
        "backends:\n  plain:\n    backend: postgres\n    url: postgres://postgres@127.0.0.1:5432/postgres\n",
    )
    .unwrap();
    let out = crate::support::cli::command()
        .args(["capture", "reset", "plain"])
        .current_dir(&dir)
        .env_remove("VENOMQA_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("isolation: capture"));
}
