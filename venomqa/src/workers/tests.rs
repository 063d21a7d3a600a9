use std::path::Path;

use crate::config::{Config, Selection, Workers};

fn resolve(yaml: &str, env: &[(&str, &str)]) -> crate::Result<crate::BackendConfig> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_yaml(yaml, Path::new("/proj/venomqa.yaml"))?.resolve_with_env(
        Selection {
            backend: None,
            entry: Some("shop"),
            url: None,
        },
        |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
    )
}

const ENTRY: &str =
    "backends:\n  shop:\n    backend: sqlite\n    url: sqlite://app.db\n    isolation: capture\n";

#[test]
fn workers_parse_as_auto_or_a_count_and_the_environment_overrides_them() {
    assert_eq!(resolve(ENTRY, &[]).unwrap().workers, None);
    let auto = resolve(&format!("{ENTRY}    workers: auto\n"), &[]).unwrap();
    assert_eq!(auto.workers, Some(Workers::Auto));
    // Not a backend option: the backend's own options do not see it.
    assert!(!auto
        .options::<std::collections::BTreeMap<String, serde_yaml_ng::Value>>()
        .unwrap()
        .contains_key("workers"));
    let four = resolve(&format!("{ENTRY}    workers: 4\n"), &[]).unwrap();
    assert_eq!(four.workers, Some(Workers::Count(4)));
    let env = resolve(
        &format!("{ENTRY}    workers: 4\n"),
        &[("VENOMQA_SHOP_WORKERS", "2")],
    )
    .unwrap();
    assert_eq!(env.workers, Some(Workers::Count(2)));
    for bad in ["0", "many", "-1"] {
        let e = resolve(&format!("{ENTRY}    workers: {bad}\n"), &[]).unwrap_err();
        assert!(
            e.to_string().contains(
                "key `backends.shop.workers`: is neither auto nor a whole number of at least 1"
            ),
            "{e}"
        );
    }
    let e = resolve(ENTRY, &[("VENOMQA_SHOP_WORKERS", "x")]).unwrap_err();
    assert!(e.to_string().contains("VENOMQA_SHOP_WORKERS"), "{e}");
}

#[test]
fn a_worker_entry_without_capture_is_refused_before_anything_is_made() {
    let config = resolve(
        "backends:\n  shop:\n    backend: sqlite\n    url: sqlite:///nonexistent-dir/app.db\n    workers: 2\n",
        &[],
    )
    .unwrap();
    let e = super::prepare(&config, "0").unwrap_err();
    assert!(
        e.to_string()
            .contains("worker databases are for capture entries"),
        "{e}"
    );
    assert!(!Path::new("/nonexistent-dir").exists());
}

#[test]
fn worker_sqlite_files_sit_beside_the_entrys() {
    let config = resolve(ENTRY, &[]).unwrap();
    let admin = super::admin::open(&config).unwrap();
    assert_eq!(admin.worker_name("m1", "3"), "app_w3.db");
    assert_eq!(
        admin.url_for("app_w3.db").unwrap().expose(),
        "sqlite://app_w3.db"
    );
}

#[test]
fn worker_machine_names_are_letters_and_digits() {
    let m = super::machine();
    assert!(!m.is_empty() && m.len() <= 16, "{m}");
    assert!(
        m.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{m}"
    );
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[test]
fn worker_database_names_and_urls() {
    use crate::redact::SecretUrl;
    assert_eq!(
        super::admin::sql_worker_name("shop", "ci7", "2"),
        "shop_ci7_w2"
    );
    let long = "d".repeat(80);
    let name = super::admin::sql_worker_name(&long, "machine", "12");
    assert_eq!(name.len(), 63);
    assert!(name.ends_with("_machine_w12"), "{name}");
    let url = SecretUrl::new("postgres://u:secret@h:5432/shop?sslmode=disable");
    assert_eq!(
        super::admin::with_database(&url, "shop_m_w0")
            .unwrap()
            .expose(),
        "postgres://u:secret@h:5432/shop_m_w0?sslmode=disable"
    );
    let bare = SecretUrl::new("mysql://root@h");
    assert_eq!(
        super::admin::with_database(&bare, "x").unwrap().expose(),
        "mysql://root@h/x"
    );
    assert_eq!(super::admin::database_of(&url).unwrap(), "shop");
    assert!(super::admin::database_of(&bare).is_err());
}

#[test]
fn worker_slots_are_the_lowest_free_one_below_the_count() {
    let mut config = resolve(&format!("{ENTRY}    workers: 4\n"), &[]).unwrap();
    config.url = Some(crate::SecretUrl::new(format!(
        "sqlite://slots-{}.db",
        std::process::id()
    )));
    let take = |n| super::slots::in_process(&config, n);
    let (a, b) = (take(4).unwrap(), take(4).unwrap());
    assert_eq!((a.index(), b.index()), (0, 1));
    drop(a);
    let c = take(4).unwrap();
    assert_eq!(c.index(), 0, "the lowest free one");
    // Counted as one worker, the same database has slot 0 only, which c holds.
    config.lease_timeout = Some(std::time::Duration::from_millis(30));
    let take = |n| super::slots::in_process(&config, n);
    let e = take(1).unwrap_err();
    assert!(
        e.to_string()
            .contains("every one of the 1 worker slots stayed taken"),
        "{e}"
    );
    drop(c);
    assert_eq!(take(1).unwrap().index(), 0);
    drop(b);
}
