//! The async bridge (feature `tokio`): the one Tokio runtime the connections of async
//! backends (the sqlx sessions, [`AsyncBackend`](crate::AsyncBackend)s) live on, and
//! [`block_on`], which runs a future on it from any thread, inside an `async fn` test too.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// The runtime async backends' connections are opened on: one per process, with a worker thread
/// whose I/O driver runs between tests, so a connection can be awaited from any runtime.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("venomqa-async")
            .enable_all()
            .build()
            .expect("venomqa could not start the Tokio runtime of its async connections (no thread could be spawned)")
    })
}

/// Wakes the thread blocked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on the calling thread, inside venomqa's async runtime.
///
/// Works anywhere: in a sync test, in a setup function, and inside an `async fn` test (in a
/// checkpoint block, say), where Tokio's own `block_on` would panic. It blocks the
/// calling thread, so inside an `async fn` test prefer `.await`.
///
/// ```
/// # #[cfg(feature = "sqlx-sqlite")] {
/// use venomqa::sqlx::{block_on, SqlxSqliteSession};
///
/// #[venomqa::venom_test]
/// fn a_sync_test(db: &mut SqlxSqliteSession) {
///     block_on(sqlx::query("CREATE TABLE t (v INTEGER)").execute(db.conn())).unwrap();
///     db.checkpoint("empty", |db| {
///         block_on(sqlx::query("DROP TABLE t").execute(db.conn())).unwrap();
///     }).unwrap();
///     let n: i64 = block_on(sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(db.conn())).unwrap();
///     assert_eq!(n, 0); // the table is back
/// }
/// a_sync_test();
/// # }
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let _context = runtime().handle().enter();
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}
