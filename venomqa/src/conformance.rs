//! The checkpoint-semantics suite: run it against any backend, yours included, to check
//! that it keeps the rules every venomqa backend keeps. [`capture`] is the suite for
//! capture backends: rollbacks of what other connections wrote, checked against an
//! independent dump.
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
//! use venomqa::memory::Memory;
//! use venomqa::{Result, StateManager};
//!
//! struct Keys;
//!
//! impl Probe for Keys {
//!     fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
//!         let store = m.connection::<Memory>()?;
//!         store.set(format!("probe:{value}"), "");
//!         Ok(())
//!     }
//!     fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
//!         let store = m.connection::<Memory>()?;
//!         Ok(store.data().keys().filter_map(|k| k.strip_prefix("probe:")?.parse().ok()).collect())
//!     }
//! }
//!
//! conformance::run("memory", Keys);
//! conformance::faults(venomqa::memory::Memory);
//! ```

pub mod capture;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::backend::Backend;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::session::{Session, ROOT_CHECKPOINT};
use crate::state::StateManager;

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

/// The names random programs use: few, so they collide (duplicates, unknown names).
const PROGRAM_NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// One step of a random checkpoint program, for property tests (see [`run_program`]).
/// Names are indexes into a small fixed set, so programs collide on names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Adds a fresh value through the probe.
    Insert,
    /// `create_checkpoint(name)`.
    Checkpoint(usize),
    /// `rollback(name)`.
    Rollback(usize),
    /// `release(name)`.
    Release(usize),
    /// `discard(name)`: rollback and release in one step.
    Discard(usize),
    /// A checkpoint operation with a hostile name: refused, nothing changes.
    Hostile(usize),
    /// A checkpoint block `name` running `body`, then panicking if `panics`.
    Block {
        /// The block's checkpoint name.
        name: usize,
        /// What runs inside it.
        body: Vec<Op>,
        /// Whether the block panics after its body.
        panics: bool,
    },
}

/// How a random program's test ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// The test returns.
    Return,
    /// The test returns `Err`.
    Err,
    /// The test panics.
    Panic,
}

/// What the model expects: the data and the stack of (name, data at the checkpoint).
#[derive(Debug, Clone, Default)]
struct Model {
    data: Vec<i64>,
    stack: Vec<(usize, Vec<i64>)>,
}

impl Model {
    fn find(&self, name: usize) -> Option<usize> {
        self.stack.iter().position(|(n, _)| *n == name)
    }
}

/// Runs `ops` as one test on `entry` and checks every step against a model of the
/// checkpoint rules: the session's checkpoints and the probe's values after each
/// operation, every operation's success or error kind, and that the test's end (return,
/// `Err` or panic) leaves the baseline. Returns a description of the first difference.
pub fn run_program(
    entry: &str,
    probe: &impl Probe,
    ops: &[Op],
    ending: Ending,
) -> std::result::Result<(), String> {
    let check = Check { entry, probe };
    let base = check.baseline();
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        check.test(
            "program",
            |s: &mut Session| -> std::result::Result<(), String> {
                let mut model = Model::default();
                for (i, op) in ops.iter().enumerate() {
                    if let Err(e) = check.apply(s, op, &mut model, &base) {
                        *failure.lock() = Some(format!("step {i} ({op:?}): {e}"));
                        return Ok(());
                    }
                }
                match ending {
                    Ending::Return => Ok(()),
                    Ending::Err => Err("the program ends with Err".to_owned()),
                    Ending::Panic => panic!("the program ends with a panic"),
                }
            },
        )
    }));
    if let Some(failure) = failure.lock().take() {
        return Err(failure);
    }
    match (ending, outcome) {
        (Ending::Return, Ok(Ok(()))) | (Ending::Err, Ok(Err(_))) | (Ending::Panic, Err(_)) => {}
        (_, Err(panic)) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(format!("the test failed unexpectedly: {text}"));
        }
        (ending, Ok(result)) => return Err(format!("ending {ending:?} gave {result:?}")),
    }
    let after = check.baseline();
    if after != base {
        return Err(format!(
            "after the test the data is {after:?}, not the baseline {base:?}"
        ));
    }
    Ok(())
}

impl<P: Probe> Check<'_, P> {
    /// Applies one operation to the session and the model, then compares them.
    fn apply(
        &self,
        s: &mut Session,
        op: &Op,
        model: &mut Model,
        base: &[i64],
    ) -> std::result::Result<(), String> {
        let expect =
            |result: Result<()>, ok: bool, what: &str| -> std::result::Result<(), String> {
                match (result, ok) {
                    (Ok(()), true) => Ok(()),
                    (
                        Err(Error::UnknownCheckpoint { .. } | Error::DuplicateCheckpoint { .. }),
                        false,
                    ) => Ok(()),
                    (other, _) => Err(format!(
                        "{what}: expected {}, got {other:?}",
                        if ok {
                            "Ok"
                        } else {
                            "an unknown or duplicate checkpoint error"
                        }
                    )),
                }
            };
        match op {
            Op::Insert => {
                let v = unique();
                self.probe
                    .insert(s.state_manager(), v)
                    .map_err(|e| e.to_string())?;
                model.data.push(v);
            }
            Op::Checkpoint(n) => {
                let name = PROGRAM_NAMES[*n % PROGRAM_NAMES.len()];
                let ok = model.find(*n % PROGRAM_NAMES.len()).is_none();
                expect(s.create_checkpoint(name), ok, "checkpoint")?;
                if ok {
                    model
                        .stack
                        .push((*n % PROGRAM_NAMES.len(), model.data.clone()));
                }
            }
            Op::Rollback(n) | Op::Discard(n) => {
                let n = *n % PROGRAM_NAMES.len();
                let name = PROGRAM_NAMES[n];
                let found = model.find(n);
                let discard = matches!(op, Op::Discard(_));
                let result = if discard {
                    s.state_manager().discard(name)
                } else {
                    s.rollback(name)
                };
                expect(
                    result,
                    found.is_some(),
                    if discard { "discard" } else { "rollback" },
                )?;
                if let Some(i) = found {
                    model.data = model.stack[i].1.clone();
                    model.stack.truncate(if discard { i } else { i + 1 });
                }
            }
            Op::Release(n) => {
                let n = *n % PROGRAM_NAMES.len();
                let found = model.find(n);
                expect(s.release(PROGRAM_NAMES[n]), found.is_some(), "release")?;
                if let Some(i) = found {
                    model.stack.truncate(i);
                }
            }
            Op::Hostile(n) => {
                let name = HOSTILE_NAMES[*n % HOSTILE_NAMES.len()];
                for result in [s.create_checkpoint(name), s.rollback(name), s.release(name)] {
                    if !matches!(result, Err(Error::InvalidCheckpoint { .. })) {
                        return Err(format!(
                            "hostile name {name:?}: expected InvalidCheckpoint, got {result:?}"
                        ));
                    }
                }
            }
            Op::Block { name, body, panics } => {
                let n = *name % PROGRAM_NAMES.len();
                if model.find(n).is_some() {
                    let result = s.checkpoint(PROGRAM_NAMES[n], |_| ());
                    expect(result, false, "block on an active name")?;
                } else {
                    model.stack.push((n, model.data.clone()));
                    let inner: Mutex<std::result::Result<(), String>> = Mutex::new(Ok(()));
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        s.checkpoint(PROGRAM_NAMES[n], |s| {
                            for op in body {
                                if let Err(e) = self.apply(s, op, model, base) {
                                    *inner.lock() = Err(format!("in block: {op:?}: {e}"));
                                    return;
                                }
                            }
                            if *panics {
                                panic!("the block panics");
                            }
                        })
                    }));
                    inner.into_inner()?;
                    match (result, panics) {
                        (Ok(Ok(())), false) | (Err(_), true) => {}
                        (other, _) => {
                            return Err(format!(
                                "block: expected {}, got {:?}",
                                if *panics { "a panic" } else { "Ok" },
                                other.map(|r| r.map_err(|e| e.to_string()))
                            ))
                        }
                    }
                    // The block's checkpoint is undone unless its body released it or
                    // rolled back past it.
                    if let Some(i) = model.find(n) {
                        model.data = model.stack[i].1.clone();
                        model.stack.truncate(i);
                    }
                }
            }
        }
        let names: Vec<String> = s
            .checkpoints()
            .iter()
            .skip(1)
            .map(|n| n.to_string())
            .collect();
        let expected: Vec<String> = model
            .stack
            .iter()
            .map(|(n, _)| PROGRAM_NAMES[*n].to_owned())
            .collect();
        if names != expected {
            return Err(format!(
                "checkpoints are {names:?}, the model says {expected:?}"
            ));
        }
        let values = self.values(s);
        let mut expected = base.to_vec();
        expected.extend(&model.data);
        expected.sort_unstable();
        if values != expected {
            return Err(format!(
                "the data is {values:?}, the model says {expected:?}"
            ));
        }
        Ok(())
    }
}
