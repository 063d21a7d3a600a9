//! The core with user-written backends and no server: registration at start-up (ctor),
//! pools, health checks, setup, configuration in a real process, and error messages.

use std::panic;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use venomqa::checkpoint::{Name, Stack};
use venomqa::{
    registry, venom_test, BackendConfig, Error, Result, Session, SessionManager, StateManager,
    TestOutcome,
};

/// A small hand-written backend (the reference document's way): a list of strings whose
/// checkpoints remember its length, on a [`Stack`] that keeps the rules. It can be told
/// to fail its next health check or its next rollback.
struct Journal {
    stack: Stack<usize>,
    connected: bool,
    id: usize,
    entries: Vec<String>,
    fail_health: &'static AtomicBool,
    fail_discard: &'static AtomicBool,
}

static IDS: AtomicUsize = AtomicUsize::new(0);
static NEVER: AtomicBool = AtomicBool::new(false);

impl Journal {
    fn new(fail_health: &'static AtomicBool, fail_discard: &'static AtomicBool) -> Self {
        Journal {
            stack: Stack::new("journal"),
            connected: false,
            id: IDS.fetch_add(1, Ordering::SeqCst),
            entries: Vec::new(),
            fail_health,
            fail_discard,
        }
    }

    fn ensure_connected(&self) -> Result<()> {
        if self.connected {
            Ok(())
        } else {
            Err(Error::NotConnected {
                backend: "journal".into(),
            })
        }
    }
}

/// Tests take it as a typed session, `Session<Journal>`.
impl venomqa::HandWritten for Journal {}

impl StateManager for Journal {
    fn connect(&mut self) -> Result<()> {
        self.connected = true;
        Ok(())
    }
    fn disconnect(&mut self) -> Result<()> {
        self.connected = false;
        self.stack.clear();
        Ok(())
    }
    fn checkpoint(&mut self, name: &str) -> Result<()> {
        self.ensure_connected()?;
        let len = self.entries.len();
        self.stack.push(name, |_| Ok(len))
    }
    fn rollback(&mut self, name: &str) -> Result<()> {
        self.ensure_connected()?;
        let entries = &mut self.entries;
        self.stack
            .rollback(name, |_, &len| {
                entries.truncate(len);
                Ok(())
            })
            .map(drop)
    }
    fn release(&mut self, name: &str) -> Result<()> {
        self.ensure_connected()?;
        self.stack.release(name, |_, _| Ok(())).map(drop)
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
        self.ensure_connected()?;
        self.entries.clear();
        self.stack.clear();
        Ok(())
    }
    fn is_connected(&self) -> bool {
        self.connected
    }
    fn checkpoints(&self) -> &[Name] {
        self.stack.names()
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
    Err(Error::connect(
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

/// Runs `body` on `backend` as `#[venom_test(backend = ..)]` does.
fn test<M: ?Sized + SessionManager, R: TestOutcome>(
    backend: &str,
    body: impl FnOnce(&mut Session<M>) -> R,
) -> R {
    Session::<M>::builder()
        .backend(backend)
        .name("core")
        .run(body)
}

/// Runs a test body on `backend` and returns what it computed.
fn inside<R>(backend: &'static str, body: impl FnOnce(&mut Session<Journal>) -> R) -> R {
    let mut out = None;
    test(backend, |j: &mut Session<Journal>| out = Some(body(j)));
    out.expect("the body ran")
}

/// The counters of the pool the runner uses for `backend` (resolved the same way).
fn pool_stats(backend: &str) -> venomqa::pool::PoolStats {
    Session::<dyn StateManager>::builder()
        .backend(backend)
        .pool_stats()
        .unwrap()
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
    test("journal", |j: &mut Session<Journal>| {
        j.manager().entries.push("pass".into())
    });
    assert_eq!(inside("journal", leftover), 0);
    let r: std::result::Result<(), &str> = test("journal", |j: &mut Session<Journal>| {
        j.manager().entries.push("err".into());
        Err("failed")
    });
    assert_eq!(r, Err("failed"));
    assert_eq!(inside("journal", leftover), 0);
    let caught = panic::catch_unwind(|| {
        test::<_, ()>("journal", |j: &mut Session<Journal>| {
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
        test("journal_discard", |j: &mut Session<Journal>| {
            DISCARD_FAILS.store(true, Ordering::SeqCst);
            j.manager().entries.push("stuck".into());
        })
    });
    let message = *caught
        .expect_err("the test fails")
        .downcast::<String>()
        .unwrap();
    assert!(
        message
            .contains("failed: the rollback at its end failed (its body finished without error)"),
        "{message}"
    );
    assert!(
        message.contains("the journal's disk went away"),
        "{message}"
    );
    let caught = panic::catch_unwind(|| {
        test("journal_discard", |_: &mut Session<Journal>| {
            DISCARD_FAILS.store(true, Ordering::SeqCst);
            Err::<(), _>("the body's own error")
        })
    });
    let message = *caught
        .expect_err("the test fails")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("its body returned Err(\"the body's own error\")"),
        "{message}"
    );
    assert!(
        message.contains("the rollback at its end failed"),
        "{message}"
    );
    let next = inside("journal_discard", |j| {
        (j.manager().id, j.manager().entries.len())
    });
    assert_ne!(next.0, first, "a fresh manager replaced the broken one");
    assert_eq!(next.1, 0);
    assert_eq!(pool_stats("journal_discard").replaced, 2);
}

#[test]
fn a_panicking_factory_does_not_use_up_the_pool() {
    let open = || {
        Session::<Journal>::builder()
            .backend("journal_panicky")
            .open()
    };
    assert_eq!(pool_stats("journal_panicky").size, 1);
    assert!(
        panic::catch_unwind(open).is_err(),
        "the factory's panic goes on"
    );
    assert_eq!(
        pool_stats("journal_panicky").live,
        0,
        "the slot came back when the factory panicked"
    );
    let session = open().expect("a new manager in the freed slot");
    assert_eq!(pool_stats("journal_panicky").live, 1);
    drop(session);
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
                    test("journal_setup", |j: &mut Session<Journal>| {
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
    let caught = panic::catch_unwind(|| test("unreachable", |_: &mut Session| ()));
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
        "backends:\n  sqlite:\n    pool_sise: 4\n",
    )
    .unwrap();
    let err = Session::<dyn StateManager>::builder()
        .config_dir(dir.join("crate/src"))
        .backend("sqlite")
        .open()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&dir.join("venomqa.yaml").display().to_string()),
        "{text}"
    );
    assert!(text.contains("backends.sqlite.pool_sise"), "{text}");
    assert!(
        text.contains("pool_size"),
        "the valid keys are listed: {text}"
    );
    assert!(text.len() < 400, "{text}");
    std::fs::write(dir.join("venomqa.yaml"), "db_backnd: sqlite\n").unwrap();
    let err = Session::<dyn StateManager>::builder()
        .config_dir(dir.join("crate"))
        .open()
        .unwrap_err();
    assert!(err.to_string().contains("`db_backnd`"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The environment overrides the file, checked in a real process: this test binary runs
/// itself with variables set, and the child asserts what it resolved.
#[test]
fn environment_overrides_the_file() {
    if let Ok(expected) = std::env::var("VENOMQA_TEST_EXPECT") {
        let resolved = Session::<dyn StateManager>::builder()
            .entry("sqlite_file")
            .config()
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
        let mut cmd = std::process::Command::new(crate::support::this_binary());
        cmd.args([
            "--exact",
            "core::environment_overrides_the_file",
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

/// The hand-written route passes the checkpoint-semantics suite too.
#[test]
fn a_hand_written_backend_passes_the_conformance_suite() {
    struct Entries;
    impl venomqa::conformance::Probe for Entries {
        fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
            m.downcast_mut::<Journal>()
                .unwrap()
                .entries
                .push(value.to_string());
            Ok(())
        }
        fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
            let journal = m.downcast_mut::<Journal>().unwrap();
            Ok(journal
                .entries
                .iter()
                .filter_map(|e| e.parse().ok())
                .collect())
        }
    }
    venomqa::conformance::run("journal", Entries);
}

/// The in-memory backend passes the suite, and keeps the stack on failed hooks.
#[test]
fn the_memory_backend_passes_the_conformance_suite() {
    struct Keys;
    impl venomqa::conformance::Probe for Keys {
        fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
            let store = m.connection::<venomqa::memory::Memory>()?;
            store.set(format!("probe:{value}"), "");
            Ok(())
        }
        fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
            let store = m.connection::<venomqa::memory::Memory>()?;
            Ok(store
                .data()
                .keys()
                .filter_map(|k| k.strip_prefix("probe:")?.parse().ok())
                .collect())
        }
    }
    venomqa::conformance::run("memory", Keys);
    venomqa::conformance::faults(venomqa::memory::Memory);
}
