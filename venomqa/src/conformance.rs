//! The checkpoint-semantics suite: run it against any backend, yours included, to check
//! that it keeps the rules every venomqa backend keeps.
//!
//! [`run`] drives a configured backend through the same code path as `#[venom_test]`:
//! nested checkpoints, the rollback and release rules, rollback after a test returns,
//! returns `Err` and panics, hostile checkpoint names, the root checkpoint, and parallel
//! tests each isolated from the others. It sees the backend's data through a [`Probe`]
//! you supply: a place where it can add integers and read them back. [`faults`] checks
//! that a failed hook leaves the checkpoint stack unchanged and the manager usable.
//!
//! ```
//! use venomqa::conformance::{self, Probe};
//! use venomqa::memory::MemoryStateManager;
//! use venomqa::{Result, StateManager};
//!
//! struct Keys;
//!
//! impl Probe for Keys {
//!     fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
//!         let store = m.downcast_mut::<MemoryStateManager>().unwrap().connection()?;
//!         store.set(format!("probe:{value}"), "");
//!         Ok(())
//!     }
//!     fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
//!         let store = m.downcast_mut::<MemoryStateManager>().unwrap().connection()?;
//!         Ok(store.data().keys().filter_map(|k| k.strip_prefix("probe:")?.parse().ok()).collect())
//!     }
//! }
//!
//! conformance::run("memory", Keys);
//! conformance::faults(venomqa::memory::Memory);
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::backend::Backend;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::session::{Session, ROOT_CHECKPOINT};
use crate::state::{Manager, StateManager};

/// Names every backend must refuse with [`Error::InvalidCheckpoint`], changing nothing.
pub const HOSTILE_NAMES: &[&str] = &[
    "",
    "a-b",
    "a b",
    "a;b",
    "x\"; DROP TABLE users; --",
    "x`; DROP TABLE users; --",
    "x'; DROP TABLE users; --",
    "a\0b",
    "1abc",
    "sp\u{e9}cial",
    "new\nline",
    "$dollar",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// How the suite sees a backend's data: a collection of integers it can add to and read
/// back through a manager's connection (a table with one integer column, keys under a
/// prefix, documents in a collection). It must exist and start the same for every test
/// (create it in the entry's setup).
pub trait Probe: Send + Sync {
    /// Adds `value` through `manager`'s connection, inside whatever checkpoint is active.
    fn insert(&self, manager: &mut dyn StateManager, value: i64) -> Result<()>;

    /// The values present now, in any order.
    fn values(&self, manager: &mut dyn StateManager) -> Result<Vec<i64>>;
}

/// A number no other test of this process used, so parallel tests write distinct values.
fn unique() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1_000_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct Check<'a, P> {
    entry: &'a str,
    probe: &'a P,
}

impl<P: Probe> Check<'_, P> {
    /// Runs `body` as `#[venom_test]` runs a test.
    fn test<R: crate::TestOutcome>(&self, test: &str, body: impl FnOnce(&mut Session) -> R) -> R {
        Session::builder()
            .backend(self.entry)
            .name(format!("conformance::{}::{test}", self.entry))
            .run(body)
    }

    fn session(&self, test: &str) -> Session {
        Session::builder()
            .backend(self.entry)
            .name(test)
            .open()
            .unwrap_or_else(|e| panic!("conformance: cannot open a session on {}: {e}", self.entry))
    }

    fn values(&self, session: &mut Session) -> Vec<i64> {
        let mut v = self
            .probe
            .values(session.state_manager())
            .unwrap_or_else(|e| {
                panic!("conformance: the probe cannot read on {}: {e}", self.entry)
            });
        v.sort_unstable();
        v
    }

    fn insert(&self, session: &mut Session, value: i64) {
        self.probe
            .insert(session.state_manager(), value)
            .unwrap_or_else(|e| {
                panic!("conformance: the probe cannot write on {}: {e}", self.entry)
            });
    }

    fn with_baseline(&self, base: &[i64], more: &[i64]) -> Vec<i64> {
        let mut v: Vec<i64> = base.iter().chain(more).copied().collect();
        v.sort_unstable();
        v
    }

    /// The values a new session sees: what every test starts from.
    fn baseline(&self) -> Vec<i64> {
        let mut session = self.session("baseline");
        let base = self.values(&mut session);
        session
            .finish()
            .expect("finishing a session that changed nothing");
        base
    }

    fn nesting(&self, base: &[i64]) {
        let mut s = self.session("nesting");
        let [a, b, c, d] = [unique(), unique(), unique(), unique()];
        let m = |s: &mut Session| {
            s.checkpoints()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        };
        s.create_checkpoint("a").unwrap();
        self.insert(&mut s, a);
        s.create_checkpoint("b").unwrap();
        self.insert(&mut s, b);
        s.create_checkpoint("c").unwrap();
        self.insert(&mut s, c);
        assert_eq!(m(&mut s), [ROOT_CHECKPOINT, "a", "b", "c"]);
        assert_eq!(self.values(&mut s), self.with_baseline(base, &[a, b, c]));

        s.rollback("b").unwrap();
        assert_eq!(
            m(&mut s),
            [ROOT_CHECKPOINT, "a", "b"],
            "a rollback keeps its target and drops the later checkpoints"
        );
        assert_eq!(
            self.values(&mut s),
            self.with_baseline(base, &[a]),
            "rollback to b undoes what came after b"
        );
        s.rollback("b").unwrap();
        assert_eq!(
            self.values(&mut s),
            self.with_baseline(base, &[a]),
            "a second rollback to b is the same"
        );

        self.insert(&mut s, d);
        s.release("b").unwrap();
        assert_eq!(
            m(&mut s),
            [ROOT_CHECKPOINT, "a"],
            "a release drops its target"
        );
        assert_eq!(
            self.values(&mut s),
            self.with_baseline(base, &[a, d]),
            "a release keeps the changes"
        );
        assert!(matches!(
            s.rollback("b"),
            Err(Error::UnknownCheckpoint { .. })
        ));

        s.rollback("a").unwrap();
        assert_eq!(
            self.values(&mut s),
            self.with_baseline(base, &[]),
            "rollback to a undoes everything after a"
        );
        s.state_manager().discard("a").unwrap();
        assert_eq!(m(&mut s), [ROOT_CHECKPOINT]);
        s.finish().unwrap();
    }

    fn rules(&self, base: &[i64]) {
        let mut s = self.session("rules");
        let a = unique();
        s.create_checkpoint("a").unwrap();
        self.insert(&mut s, a);
        assert!(matches!(
            s.create_checkpoint("a"),
            Err(Error::DuplicateCheckpoint { .. })
        ));
        assert!(matches!(
            s.rollback("nope"),
            Err(Error::UnknownCheckpoint { .. })
        ));
        assert!(matches!(
            s.release("nope"),
            Err(Error::UnknownCheckpoint { .. })
        ));
        for name in HOSTILE_NAMES {
            for result in [s.create_checkpoint(name), s.rollback(name), s.release(name)] {
                assert!(
                    matches!(result, Err(Error::InvalidCheckpoint { .. })),
                    "{name:?} must be refused as invalid, got {result:?}"
                );
            }
        }
        assert_eq!(
            s.checkpoints(),
            [ROOT_CHECKPOINT, "a"],
            "refused operations change no checkpoint"
        );
        assert_eq!(
            self.values(&mut s),
            self.with_baseline(base, &[a]),
            "refused operations change no data"
        );
        assert!(
            s.release(ROOT_CHECKPOINT).is_err(),
            "the root checkpoint cannot be released"
        );
        s.rollback(ROOT_CHECKPOINT).unwrap();
        assert_eq!(s.checkpoints(), [ROOT_CHECKPOINT]);
        assert_eq!(
            self.values(&mut s),
            base,
            "rollback to the root undoes the whole test so far"
        );
        s.finish().unwrap();
    }

    fn blocks(&self, base: &[i64]) {
        let mut s = self.session("blocks");
        let [outer, inner, deeper] = [unique(), unique(), unique()];
        self.insert(&mut s, outer);
        let seen = s
            .checkpoint("block", |s| {
                self.insert(s, inner);
                s.checkpoint("deeper", |s| {
                    self.insert(s, deeper);
                    self.values(s)
                })
                .unwrap()
            })
            .unwrap();
        assert_eq!(seen, self.with_baseline(base, &[outer, inner, deeper]));
        assert_eq!(
            self.values(&mut s),
            self.with_baseline(base, &[outer]),
            "a block's changes are undone when it ends"
        );

        let panicked = catch_unwind(AssertUnwindSafe(|| {
            s.checkpoint("panics", |s| {
                self.insert(s, unique());
                panic!("the block panics");
            })
        }));
        assert!(panicked.is_err(), "a block's panic goes on");
        assert_eq!(
            s.checkpoints(),
            [ROOT_CHECKPOINT],
            "a panicking block's checkpoint is gone"
        );
        assert_eq!(
            self.values(&mut s),
            self.with_baseline(base, &[outer]),
            "a panicking block is undone"
        );

        s.checkpoint("releases_itself", |s| {
            self.insert(s, inner);
            s.release("releases_itself").unwrap();
        })
        .unwrap();
        assert_eq!(
            self.values(&mut s),
            self.with_baseline(base, &[outer, inner]),
            "a block that released its own checkpoint keeps its changes"
        );
        s.finish().unwrap();
    }

    fn end_of_test(&self, base: &[i64]) {
        let value = unique();
        self.test("returns", |s: &mut Session| {
            self.insert(s, value);
        });
        let r: std::result::Result<(), String> = self.test("errs", |s: &mut Session| {
            self.insert(s, value);
            Err("the test returns Err".to_owned())
        });
        assert!(r.is_err());
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            self.test("panics", |s: &mut Session| -> () {
                self.insert(s, value);
                s.create_checkpoint("left_open").unwrap();
                self.insert(s, unique());
                panic!("the test panics");
            })
        }));
        assert!(panicked.is_err());
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let mut s = self.session("dropped");
            self.insert(&mut s, value);
            panic!("dropped while unwinding");
        }));
        assert_eq!(
            self.baseline(),
            base,
            "a test's changes are rolled back when it returns, returns Err, panics or is dropped"
        );
    }

    fn parallel(&self, base: &[i64], threads: usize, rounds: usize) {
        let failures = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|scope| {
            for t in 0..threads {
                let failures = failures.clone();
                scope.spawn(move || {
                    for round in 0..rounds {
                        let mine = [unique(), unique()];
                        let outcome = catch_unwind(AssertUnwindSafe(|| {
                            self.test(&format!("parallel_{t}_{round}"), |s: &mut Session| {
                                assert_eq!(
                                    self.values(s),
                                    base,
                                    "a parallel test starts from the baseline"
                                );
                                self.insert(s, mine[0]);
                                s.checkpoint("inner", |s| self.insert(s, mine[1])).unwrap();
                                assert_eq!(
                                    self.values(s),
                                    self.with_baseline(base, &mine[..1]),
                                    "a parallel test sees only its own changes"
                                );
                            })
                        }));
                        if let Err(panic) = outcome {
                            let text = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            failures
                                .lock()
                                .push(format!("thread {t} round {round}: {text}"));
                        }
                    }
                });
            }
        });
        let failures = failures.lock();
        assert!(failures.is_empty(), "parallel tests: {failures:?}");
        assert_eq!(self.baseline(), base, "parallel tests leave the baseline");
    }
}

/// Runs the whole suite against `entry` (a registered backend, or a named entry of
/// `venomqa.yaml`), seeing its data through `probe`. Panics, naming the rule, at the first
/// broken one.
pub fn run(entry: &str, probe: impl Probe) {
    run_with(entry, probe, 4, 5);
}

/// [`run`], with `threads` parallel tests of `rounds` tests each in the parallel check.
pub fn run_with(entry: &str, probe: impl Probe, threads: usize, rounds: usize) {
    let check = Check {
        entry,
        probe: &probe,
    };
    let base = check.baseline();
    check.nesting(&base);
    check.rules(&base);
    check.blocks(&base);
    check.end_of_test(&base);
    check.parallel(&base, threads, rounds);
    assert_eq!(check.baseline(), base, "the suite leaves the baseline");
}

/// Which hook [`Faulty`] fails next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    Checkpoint,
    Rollback,
    Release,
    Discard,
}

/// `B` with failures injected before chosen hooks.
struct Faulty<B> {
    inner: B,
    fail: Mutex<Option<Hook>>,
}

impl<B: Backend> Faulty<B> {
    fn gate(&self, hook: Hook) -> Result<()> {
        let mut fail = self.fail.lock();
        if *fail == Some(hook) {
            *fail = None;
            return Err(Error::backend(
                B::NAME,
                format!("{hook:?} (injected)"),
                "an injected failure",
            ));
        }
        Ok(())
    }
}

impl<B: Backend> Backend for Faulty<B> {
    const NAME: &'static str = B::NAME;
    type Options = B::Options;
    type Conn = B::Conn;
    type Mark = B::Mark;

    fn new(config: &BackendConfig, options: Self::Options) -> Result<Self> {
        Ok(Faulty {
            inner: B::new(config, options)?,
            fail: Mutex::new(None),
        })
    }
    fn connect(&self) -> Result<B::Conn> {
        self.inner.connect()
    }
    fn checkpoint(&self, conn: &mut B::Conn, at: Point<'_>) -> Result<B::Mark> {
        self.gate(Hook::Checkpoint)?;
        self.inner.checkpoint(conn, at)
    }
    fn rollback(&self, conn: &mut B::Conn, at: Point<'_>, mark: &B::Mark) -> Result<()> {
        self.gate(Hook::Rollback)?;
        self.inner.rollback(conn, at, mark)
    }
    fn release(&self, conn: &mut B::Conn, at: Point<'_>, mark: &B::Mark) -> Result<()> {
        self.gate(Hook::Release)?;
        self.inner.release(conn, at, mark)
    }
    fn discard(&self, conn: &mut B::Conn, at: Point<'_>, mark: &B::Mark) -> Result<()> {
        self.gate(Hook::Discard)?;
        self.inner.discard(conn, at, mark)
    }
    fn forget(&self, conn: &mut B::Conn, mark: B::Mark) -> Result<()> {
        self.inner.forget(conn, mark)
    }
    fn close(&self, conn: B::Conn) -> Result<()> {
        self.inner.close(conn)
    }
}

/// Checks that a failed hook leaves the checkpoint stack unchanged and the manager usable:
/// a failure is injected before each of `backend`'s hooks in turn, and the same operation
/// then succeeds. Connects a manager of `backend` for the purpose.
pub fn faults<B: Backend>(backend: B) {
    let faulty = Faulty {
        inner: backend,
        fail: Mutex::new(None),
    };
    let mut m = Manager::open(faulty)
        .unwrap_or_else(|e| panic!("conformance: cannot connect {}: {e}", B::NAME));
    let names = |m: &Manager<Faulty<B>>| {
        m.checkpoints()
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
    };
    let inject = |m: &Manager<Faulty<B>>, hook| *m.backend().fail.lock() = Some(hook);

    m.checkpoint("a").unwrap();
    inject(&m, Hook::Checkpoint);
    assert!(
        m.checkpoint("b").is_err(),
        "the injected checkpoint failure is reported"
    );
    assert_eq!(names(&m), ["a"], "a failed checkpoint adds nothing");
    m.checkpoint("b").unwrap();
    m.checkpoint("c").unwrap();

    inject(&m, Hook::Rollback);
    assert!(m.rollback("b").is_err());
    assert_eq!(
        names(&m),
        ["a", "b", "c"],
        "a failed rollback drops nothing"
    );
    m.rollback("b").unwrap();
    assert_eq!(names(&m), ["a", "b"]);

    inject(&m, Hook::Release);
    assert!(m.release("b").is_err());
    assert_eq!(names(&m), ["a", "b"], "a failed release drops nothing");
    m.release("b").unwrap();
    assert_eq!(names(&m), ["a"]);

    inject(&m, Hook::Discard);
    assert!(m.discard("a").is_err());
    assert_eq!(names(&m), ["a"], "a failed discard drops nothing");
    m.discard("a").unwrap();
    assert!(m.checkpoints().is_empty());
    assert!(
        m.is_connected(),
        "an injected failure does not break the connection"
    );
    m.disconnect().unwrap();
}
