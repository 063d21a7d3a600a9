//! The core with user-written backends and no server: registration at start-up (ctor),
//! pools, health checks, setup, configuration in a real process, and error messages.

use std::panic;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use venomqa::__private::{run_test, TestSpec};
use venomqa::config::{Config, Selection};
use venomqa::{
    registry, venom_test, BackendConfig, BaseStateManager, Error, Result, Session, StateManager,
};

/// A small user backend: a list of strings whose checkpoints remember its length. It can
/// be told to fail its next health check or its next rollback.
struct Journal {
    base: BaseStateManager,
    id: usize,
    entries: Vec<String>,
    marks: Vec<usize>,
    fail_health: &'static AtomicBool,
    fail_discard: &'static AtomicBool,
}

static IDS: AtomicUsize = AtomicUsize::new(0);
static NEVER: AtomicBool = AtomicBool::new(false);

impl Journal {
    fn new(fail_health: &'static AtomicBool, fail_discard: &'static AtomicBool) -> Self {
        Journal {
            base: BaseStateManager::new("journal", "journal://"),
            id: IDS.fetch_add(1, Ordering::SeqCst),
            entries: Vec::new(),
            marks: Vec::new(),
            fail_health,
            fail_discard,
        }
    }
}

impl StateManager for Journal {
    fn connect(&mut self) -> Result<()> {
        self.base.set_connected(true);
        Ok(())
    }
    fn disconnect(&mut self) -> Result<()> {
        self.base.set_connected(false);
        Ok(())
    }
    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let (len, marks) = (self.entries.len(), &mut self.marks);
        self.base.checkpoint(name, |_, _| {
            marks.push(len);
            Ok(())
        })
    }
    fn rollback(&mut self, name: &str) -> Result<()> {
        let (entries, marks) = (&mut self.entries, &mut self.marks);
        self.base.rollback(name, |i, _| {
            entries.truncate(marks[i]);
            marks.truncate(i + 1);
            Ok(())
        })
    }
    fn release(&mut self, name: &str) -> Result<()> {
        let marks = &mut self.marks;
        self.base.release(name, |i, _| {
            marks.truncate(i);
            Ok(())
        })
    }
    fn discard(&mut self, name: &str) -> Result<()> {
        if self.fail_discard.swap(false, Ordering::SeqCst) {
            return Err(Error::backend(
                "journal",
                "discard",
                "the journal's disk went away",
            ));
        }
        self.rollback(name)?;
        self.release(name)
    }
    fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.marks.clear();
        self.base.clear_checkpoints();
        Ok(())
    }
    fn is_connected(&self) -> bool {
        self.base.is_connected()
    }
    fn checkpoints(&self) -> &[String] {
        self.base.checkpoints()
    }
    fn health_check(&mut self) -> bool {
        self.is_connected() && !self.fail_health.swap(false, Ordering::SeqCst)
    }
}

static HEALTH_FAILS: AtomicBool = AtomicBool::new(false);
static DISCARD_FAILS: AtomicBool = AtomicBool::new(false);
static SETUP_RUNS: AtomicUsize = AtomicUsize::new(0);

// Registered before main, as a user's crate would (the reference's entry points).
venomqa::register_backend!("journal", |_: &BackendConfig| Ok(Journal::new(
    &NEVER, &NEVER
)));
venomqa::register_backend!("journal_health", |_: &BackendConfig| Ok(Journal::new(
    &HEALTH_FAILS,
    &NEVER
)));
venomqa::register_backend!("journal_discard", |_: &BackendConfig| Ok(Journal::new(
    &NEVER,
    &DISCARD_FAILS
)));
venomqa::register_backend!(
    "journal_setup",
    |_: &BackendConfig| Ok(Journal::new(&NEVER, &NEVER)),
    3
);
venomqa::register_setup!("journal_setup", |m: &mut dyn StateManager| {
    SETUP_RUNS.fetch_add(1, Ordering::SeqCst);
    m.downcast_mut::<Journal>()
        .expect("a journal")
        .entries
        .push("seeded".into());
    Ok(())
});
venomqa::register_backend!("unreachable", |config: &BackendConfig| -> Result<Journal> {
    let url = config.url_or("journal://admin:hunter2@10.255.255.1:9/x");
    Err(Error::connection(
        "unreachable",
        url,
        format!("timed out talking to {url}"),
    ))
});

static FACTORY_PANICS: AtomicBool = AtomicBool::new(true);
venomqa::register_backend!("journal_panicky", |_: &BackendConfig| {
    if FACTORY_PANICS.swap(false, Ordering::SeqCst) {
        panic!("a bug in the user's factory");
    }
    Ok(Journal::new(&NEVER, &NEVER))
});

fn spec(backend: &'static str) -> TestSpec {
    TestSpec {
        test: "core",
        backend: Some(backend),
        url: None,
        config: None,
        manifest_dir: env!("CARGO_MANIFEST_DIR"),
    }
}

/// Runs a test body on `backend` and returns what it computed.
fn inside<R>(backend: &'static str, body: impl FnOnce(&mut Session<Journal>) -> R) -> R {
    let mut out = None;
    run_test(&spec(backend), |j: &mut Session<Journal>| {
        out = Some(body(j))
    });
    out.expect("the body ran")
}

/// The counters of the pool the runner uses for `backend` (resolved the same way).
fn pool_stats(backend: &str) -> registry::PoolStats {
    let config = Config::discover(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .resolve(Selection {
            backend: Some(backend),
            ..Default::default()
        })
        .unwrap();
    registry::pool(&config).unwrap().stats()
}

#[test]
fn ctor_registration_ran_before_main() {
    let names = registry::backends();
    for name in ["journal", "journal_health", "memory", "sqlite"] {
        assert!(
            names.contains(&name.to_owned()),
            "{name} missing from {names:?}"
        );
    }
}

#[venom_test(backend = "journal")]
fn a_user_backend_through_the_attribute(journal: &mut Session<Journal>) {
    journal.manager().entries.push("written".into());
    journal
        .checkpoint("block", |j| {
            j.manager().entries.push("in block".into());
            assert_eq!(j.manager().entries.len(), 2);
        })
        .unwrap();
    assert_eq!(journal.manager().entries, ["written"]);
}

#[test]
fn a_user_backend_is_rolled_back_after_pass_err_and_panic() {
    // The journal pool has one manager (the default for user backends), so each test
    // below gets the same manager back, and what it holds is what the last test left.
    let leftover = |s: &mut Session<Journal>| s.manager().entries.len();
    run_test(&spec("journal"), |j: &mut Session<Journal>| {
        j.manager().entries.push("pass".into())
    });
    assert_eq!(inside("journal", leftover), 0);
    let r: std::result::Result<(), &str> =
        run_test(&spec("journal"), |j: &mut Session<Journal>| {
            j.manager().entries.push("err".into());
            Err("failed")
        });
    assert_eq!(r, Err("failed"));
    assert_eq!(inside("journal", leftover), 0);
    let caught = panic::catch_unwind(|| {
        run_test::<_, ()>(&spec("journal"), |j: &mut Session<Journal>| {
            j.manager().entries.push("panic".into());
            panic!("boom");
        })
    });
    assert!(caught.is_err());
    assert_eq!(inside("journal", leftover), 0);
}

#[test]
fn a_manager_failing_its_health_check_is_replaced() {
    let first = inside("journal_health", |j| j.manager().id);
    let again = inside("journal_health", |j| j.manager().id);
    assert_eq!(first, again, "a healthy manager is reused");
    HEALTH_FAILS.store(true, Ordering::SeqCst);
    let replaced = inside("journal_health", |j| j.manager().id);
    assert_ne!(first, replaced, "the unhealthy manager was not handed out");
    let stats = pool_stats("journal_health");
    assert_eq!(
        (stats.opened, stats.replaced, stats.live),
        (2, 1, 1),
        "{stats:?}"
    );
}

#[test]
fn a_manager_that_cannot_roll_back_fails_the_test_and_is_dropped() {
    let first = inside("journal_discard", |j| j.manager().id);
    let caught = panic::catch_unwind(|| {
        run_test(&spec("journal_discard"), |j: &mut Session<Journal>| {
            DISCARD_FAILS.store(true, Ordering::SeqCst);
            j.manager().entries.push("stuck".into());
        })
    });
    let message = *caught
        .expect_err("the test fails")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("passed, but its changes could not be rolled back"),
        "{message}"
    );
    assert!(
        message.contains("the journal's disk went away"),
        "{message}"
    );
    let caught = panic::catch_unwind(|| {
        run_test(&spec("journal_discard"), |_: &mut Session<Journal>| {
            DISCARD_FAILS.store(true, Ordering::SeqCst);
            Err::<(), _>("the body's own error")
        })
    });
    let message = *caught
        .expect_err("the test fails")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("returned Err(\"the body's own error\")"),
        "{message}"
    );
    assert!(message.contains("could not be rolled back"), "{message}");
    let next = inside("journal_discard", |j| {
        (j.manager().id, j.manager().entries.len())
    });
    assert_ne!(next.0, first, "a fresh manager replaced the broken one");
    assert_eq!(next.1, 0);
    assert_eq!(pool_stats("journal_discard").replaced, 2);
}

#[test]
fn a_panicking_factory_does_not_use_up_the_pool() {
    let mut config = BackendConfig::new("journal_panicky");
    config.lease_timeout = Some(std::time::Duration::from_secs(5));
    let pool = registry::pool(&config).unwrap();
    assert_eq!(pool.stats().size, 1);
    assert!(panic::catch_unwind(panic::AssertUnwindSafe(|| pool.lease())).is_err());
    assert_eq!(
        pool.stats().live,
        0,
        "the slot came back when the factory panicked"
    );
    let lease = pool.lease().expect("a new manager in the freed slot");
    assert_eq!(pool.stats().live, 1);
    drop(lease);
}

#[test]
fn setup_runs_once_per_process_before_the_first_lease() {
    // The very first lease gets the manager the setup ran on, before any test touched it.
    let first = inside("journal_setup", |j| j.manager().entries.clone());
    assert_eq!(first, ["seeded"]);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for _ in 0..5 {
                    run_test(&spec("journal_setup"), |j: &mut Session<Journal>| {
                        // Only the first manager was seeded; the others start empty.
                        assert!(j.manager().entries.len() <= 1);
                        j.manager().entries.push("x".into());
                    });
                }
            });
        }
    });
    assert_eq!(SETUP_RUNS.load(Ordering::SeqCst), 1);
    let stats = pool_stats("journal_setup");
    assert_eq!((stats.size, stats.leases), (3, 31));
    assert!(stats.opened <= 3, "{stats:?}");
}

#[test]
fn unknown_backend_lists_the_registered_ones() {
    let err = Session::<dyn StateManager>::start("nosuch").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::UnknownBackend { .. }));
    assert!(
        text.contains("\"nosuch\"") && text.contains("journal") && text.contains("sqlite"),
        "{text}"
    );
    assert!(text.contains("register_backend!"), "{text}");
}

#[test]
fn a_mistyped_session_parameter_is_a_clear_error() {
    let err = Session::<Journal>::start("sqlite").unwrap_err();
    assert!(matches!(err, Error::SessionType { .. }), "{err}");
    assert!(err.to_string().contains("core::Journal"), "{err}");
    assert!(err.to_string().contains("\"sqlite\""), "{err}");
}

#[test]
fn connection_errors_never_show_the_password() {
    let caught = panic::catch_unwind(|| run_test(&spec("unreachable"), |_: &mut Session| ()));
    let message = *caught
        .expect_err("cannot start")
        .downcast::<String>()
        .unwrap();
    assert!(
        message
            .contains("could not connect to unreachable at journal://admin:***@10.255.255.1:9/x"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("VENOMQA_UNREACHABLE_URL"), "{message}");
}

#[test]
fn a_bad_configuration_file_names_the_file_and_the_key() {
    let dir = std::env::temp_dir().join(format!("venomqa-config-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("crate/src")).unwrap();
    std::fs::write(
        dir.join("venomqa.yaml"),
        "backends:\n  mysql:\n    pool_sise: 4\n",
    )
    .unwrap();
    let err = Config::discover(&dir.join("crate/src")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&dir.join("venomqa.yaml").display().to_string()),
        "{text}"
    );
    assert!(text.contains("backends.mysql.pool_sise"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The environment overrides the file, checked in a real process: this test binary runs
/// itself with variables set, and the child asserts what it resolved.
#[test]
fn environment_overrides_the_file() {
    if let Ok(expected) = std::env::var("VENOMQA_TEST_EXPECT") {
        let config = Config::discover(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let resolved = config
            .resolve(Selection {
                entry: Some("sqlite_file"),
                ..Default::default()
            })
            .unwrap();
        let fields = format!(
            "{}|{:?}|{}",
            resolved.backend,
            resolved.url,
            resolved.pool_size.unwrap_or(0)
        );
        assert_eq!(fields, expected);
        return;
    }
    let run = |env: &[(&str, &str)], expected: &str| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "environment_overrides_the_file",
            "--test-threads=1",
        ])
        .env("VENOMQA_TEST_EXPECT", expected);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{env:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    };
    run(
        &[],
        "sqlite|Some(\"sqlite://target/venomqa-tests.sqlite\")|0",
    );
    run(
        &[
            ("VENOMQA_SQLITE_FILE_URL", "sqlite::memory:"),
            ("VENOMQA_SQLITE_FILE_POOL_SIZE", "5"),
        ],
        "sqlite|Some(\"sqlite::memory:\")|5",
    );
}
