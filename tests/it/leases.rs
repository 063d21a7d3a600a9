//! Typed leases: a pool of `Connected<B>` values, what a session may do with the pooled
//! connection (disconnect, reconnect, downcast), and that the pool closes every
//! connection it opens. The oracle is the backend's own count of connections opened and
//! closed, kept outside venomqa, against a model of the pool.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use venomqa::checkpoint::Point;
use venomqa::memory::{Memory, MemoryStateManager};
use venomqa::{Backend, BackendConfig, Connected, Error, Manager, Result, Session, StateManager};

/// Connections opened and closed, per configuration entry.
static COUNTS: LazyLock<Mutex<BTreeMap<String, (usize, usize)>>> = LazyLock::new(Default::default);

fn counts(entry: &str) -> (usize, usize) {
    COUNTS
        .lock()
        .unwrap()
        .get(entry)
        .copied()
        .unwrap_or_default()
}

/// A counter backend that records every connection it opens and closes.
struct Tally {
    entry: String,
}

impl Backend for Tally {
    const NAME: &'static str = "vq_tally";
    type Options = BTreeMap<String, String>;
    type Conn = i64;
    type Mark = i64;

    fn new(config: &BackendConfig, _: Self::Options) -> Result<Self> {
        Ok(Tally {
            entry: config.entry.clone(),
        })
    }
    fn connect(&self) -> Result<i64> {
        COUNTS
            .lock()
            .unwrap()
            .entry(self.entry.clone())
            .or_default()
            .0 += 1;
        Ok(0)
    }
    fn close(&self, _: i64) -> Result<()> {
        COUNTS
            .lock()
            .unwrap()
            .entry(self.entry.clone())
            .or_default()
            .1 += 1;
        Ok(())
    }
    fn pool_size(&self) -> usize {
        2
    }
    fn checkpoint(&self, value: &mut i64, _: Point<'_>) -> Result<i64> {
        Ok(*value)
    }
    fn rollback(&self, value: &mut i64, _: Point<'_>, saved: &i64) -> Result<()> {
        *value = *saved;
        Ok(())
    }
    fn release(&self, _: &mut i64, _: Point<'_>, _: &i64) -> Result<()> {
        Ok(())
    }
}

venomqa::register_backend!(Tally);

type TallySession = Session<Manager<Tally>>;

static ENTRIES: AtomicUsize = AtomicUsize::new(0);

/// A configuration of its own: its pool and its counts are this test's alone.
fn fresh_entry() -> BackendConfig {
    let mut config = BackendConfig::new("vq_tally");
    config.entry = format!("vq_tally_{}", ENTRIES.fetch_add(1, Ordering::Relaxed));
    config
}

fn open(config: &BackendConfig) -> TallySession {
    TallySession::builder()
        .with_config(config.clone())
        .open()
        .unwrap()
}

#[test]
fn a_typed_session_holds_the_connection_itself() {
    let config = fresh_entry();
    let mut db = open(&config);
    *db.connection() = 7;
    db.checkpoint("inner", |db| *db.connection() = 9).unwrap();
    assert_eq!(*db.connection_ref(), 7);
    // `manager()` is the pooled `Connected<Tally>`: the same connection, and its stack.
    let pooled: &mut Connected<Tally> = db.manager();
    assert_eq!(*pooled.connection(), 7);
    assert_eq!(pooled.checkpoints(), [venomqa::ROOT_CHECKPOINT]);
    db.finish().unwrap();
    assert_eq!(counts(&config.entry), (1, 0), "returned to the pool, open");
}

#[test]
fn a_pooled_connection_downcast_to_its_manager_panics_with_advice() {
    let mut db = <Session>::builder().backend("memory").open().unwrap();
    let m = db.state_manager();
    assert!(m.downcast_mut::<Connected<Memory>>().is_some());
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m.downcast_mut::<MemoryStateManager>().is_none()
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("downcast to Connected<B> instead, or call connection::<B>()"),
        "{message}"
    );
    // Another type is a plain `None`, as `Any` gives.
    assert!(m.downcast_mut::<Manager<Tally>>().is_none());
}

#[test]
fn connection_of_a_backend_reaches_pooled_and_standalone_managers_only() {
    let mut db = <Session>::builder().backend("memory").open().unwrap();
    db.state_manager()
        .connection::<Memory>()
        .unwrap()
        .set("k", "pooled");
    let err = db.state_manager().connection::<Tally>().unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");

    let mut standalone: Box<dyn StateManager> = Box::new(Manager::new(Memory));
    let err = standalone.connection::<Memory>().unwrap_err();
    assert!(matches!(err, Error::NotConnected { .. }), "{err}");
    standalone.connect().unwrap();
    standalone
        .connection::<Memory>()
        .unwrap()
        .set("k", "standalone");
    assert_eq!(
        standalone
            .connected::<Memory>()
            .unwrap()
            .connection()
            .get("k"),
        Some("standalone")
    );
}

#[test]
fn disconnect_inside_a_session_refuses_work_and_the_pool_closes_the_connection() {
    let config = fresh_entry();
    let mut db = open(&config);
    db.state_manager().disconnect().unwrap();
    let err = db.create_checkpoint("after").unwrap_err();
    assert!(matches!(err, Error::NotConnected { .. }), "{err}");
    assert!(!db.state_manager().is_connected());
    // Reconnecting opens a new connection and closes the old one.
    db.state_manager().connect().unwrap();
    assert_eq!(counts(&config.entry), (2, 1));
    db.create_checkpoint("after").unwrap();
    // The root checkpoint went with the disconnect: the end says so, and the pool drops
    // the connection (closing it) instead of reusing it.
    let err = db.finish().unwrap_err();
    assert!(err.to_string().contains("root checkpoint"), "{err}");
    assert_eq!(counts(&config.entry), (2, 2));
    let stats = TallySession::builder()
        .with_config(config)
        .pool_stats()
        .unwrap();
    assert_eq!((stats.live, stats.idle, stats.replaced), (0, 0, 1));
}

/// What a program does to one of two session slots.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Open a session in the slot (if empty).
    Open,
    /// Write, checkpoint, write, roll back.
    Work,
    /// Disconnect the pooled connection.
    Disconnect,
    /// Connect again (a new connection if disconnected).
    Connect,
    /// End the session.
    Finish,
}

fn act() -> impl Strategy<Value = (usize, Act)> {
    let act = prop_oneof![
        3 => Just(Act::Open),
        3 => Just(Act::Work),
        1 => Just(Act::Disconnect),
        1 => Just(Act::Connect),
        3 => Just(Act::Finish),
    ];
    (0..2usize, act)
}

/// A slot's session and what the model knows of it.
struct Slot {
    db: TallySession,
    /// Disconnected since it last connected.
    closed: bool,
    /// Its root checkpoint is gone (a disconnect forgot it), so its end fails.
    lost_root: bool,
}

/// Runs one program against a model of the pool: connections the pool holds
/// (`live`), idle ones, and that every connection it dropped was closed.
fn run(acts: &[(usize, Act)]) -> std::result::Result<(), String> {
    let config = fresh_entry();
    let mut slots: [Option<Slot>; 2] = [None, None];
    let (mut live, mut idle) = (0usize, 0usize);
    for (i, &(slot, act)) in acts.iter().enumerate() {
        let at = |what: String| format!("step {i} ({slot}, {act:?}): {what}");
        match (act, &mut slots[slot]) {
            (Act::Open, s @ None) => {
                if idle > 0 {
                    idle -= 1;
                } else {
                    live += 1;
                }
                *s = Some(Slot {
                    db: open(&config),
                    closed: false,
                    lost_root: false,
                });
            }
            (Act::Work, Some(s)) => {
                let db = &mut s.db;
                let done = (|| {
                    *db.connection() += 1;
                    db.create_checkpoint("w")?;
                    *db.connection() += 10;
                    db.rollback("w")?;
                    db.release("w")
                })();
                match (done, s.closed) {
                    (Ok(()), false) => {}
                    (Err(Error::NotConnected { .. }), true) => {}
                    (other, closed) => {
                        return Err(at(format!("work gave {other:?} (closed: {closed})")))
                    }
                }
            }
            (Act::Disconnect, Some(s)) => {
                s.db.state_manager()
                    .disconnect()
                    .map_err(|e| at(e.to_string()))?;
                s.closed = true;
                s.lost_root = true;
            }
            (Act::Connect, Some(s)) => {
                s.db.state_manager()
                    .connect()
                    .map_err(|e| at(e.to_string()))?;
                s.closed = false;
            }
            (Act::Finish, s @ Some(_)) => {
                let Slot { db, lost_root, .. } = s.take().expect("matched Some");
                match (db.finish(), lost_root) {
                    (Ok(()), false) => idle += 1,
                    (Err(_), true) => live -= 1,
                    (other, lost) => {
                        return Err(at(format!("finish gave {other:?} (root lost: {lost})")))
                    }
                }
            }
            _ => continue, // opening a full slot, or acting on an empty one
        }
        let stats = TallySession::builder()
            .with_config(config.clone())
            .pool_stats()
            .map_err(|e| at(e.to_string()))?;
        let (opened, closed) = counts(&config.entry);
        if (stats.live, stats.idle) != (live, idle) {
            return Err(at(format!(
                "the pool holds {} ({} idle); the model {live} ({idle} idle)",
                stats.live, stats.idle
            )));
        }
        if opened - closed != live {
            return Err(at(format!(
                "{opened} connections opened and {closed} closed, but the pool holds {live}"
            )));
        }
    }
    Ok(())
}

#[test]
fn the_pool_closes_every_connection_it_drops() {
    let seed = std::env::var("VENOMQA_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_207);
    let config = Config {
        cases: 128,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&prop::collection::vec(act(), 0..40), |acts| {
        run(&acts).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!(
            "the pool model broke (seed {seed}, VENOMQA_PROPTEST_SEED={seed} reproduces it): {e}"
        );
    }
}
