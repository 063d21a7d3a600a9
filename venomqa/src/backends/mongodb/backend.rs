//! The [`Backend`] implementation of [`MongoDb`]: each hook takes the lock where the
//! isolation needs it, and picks the in-memory snapshot or capture's snapshot database.

use ::mongodb::bson::{doc, Document};

use super::blocking::blocking;
use super::driver_error::driver_error;
use super::mark::{Saved, Snapshot};
use super::options::{Isolation, MongoDbOptions};
use super::snapshot::list_collections;
use super::{DbState, MongoDb, MongoDbConn, NAME};
use crate::backend::Backend;
use crate::capture::diff::Diff;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::util::test_threads;

impl Backend for MongoDb {
    const NAME: &'static str = NAME;
    type Options = MongoDbOptions;
    type Conn = MongoDbConn;
    type Mark = Snapshot;

    fn new(config: &BackendConfig, options: MongoDbOptions) -> Result<Self> {
        Self::build(config, options)
    }

    /// Connects (one client per process and URL), sweeps leftovers once per process, and
    /// leases a database of its own (per-lease isolation).
    fn connect(&self) -> Result<MongoDbConn> {
        blocking(|| self.open())
    }

    /// A `ping` round trip.
    fn recycle(&self, conn: &mut MongoDbConn) -> Result<()> {
        blocking(|| {
            conn.io
                .run_command(doc! { "ping": 1 })
                .run()
                .map(drop)
                .map_err(|e| driver_error("the health check", e))
        })
    }

    fn checkpoint(&self, conn: &mut MongoDbConn, at: Point<'_>) -> Result<Snapshot> {
        blocking(|| {
            let locking = at.is_outermost()
                && self.options.isolation != Isolation::DatabasePerLease
                && conn.lock_held.is_none();
            if locking {
                conn.acquire_shared_lock(self.lock_timeout())?;
            }
            let result = if self.capture() {
                self.capture_checkpoint(conn, at)
                    .map(|mark| Snapshot(Saved::Capture(mark)))
            } else {
                self.snapshot(conn, at)
            };
            if result.is_err() && locking {
                conn.release_lock_logged();
            }
            result
        })
    }

    fn rollback(&self, conn: &mut MongoDbConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        blocking(|| match &mark.0 {
            Saved::Capture(mark) => self.capture_restore(
                conn,
                mark,
                &format!("rollback to checkpoint {:?}", at.name()),
            ),
            _ => self.restore(conn, mark, true),
        })
    }

    /// Keeps the changes; the outermost checkpoint's end releases a shared database's lock
    /// (with capture, after its record and snapshot databases are gone).
    fn release(&self, conn: &mut MongoDbConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        if at.is_outermost() && conn.lock_held.is_some() {
            return blocking(|| {
                let ended = match &mark.0 {
                    Saved::Capture(_) => self.capture_end(conn),
                    _ => Ok(()),
                };
                conn.release_lock_logged();
                ended
            });
        }
        Ok(())
    }

    fn discard(&self, conn: &mut MongoDbConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        blocking(|| {
            match &mark.0 {
                Saved::Capture(capture) => {
                    let what = format!("rollback of checkpoint {:?}", at.name());
                    self.capture_restore(conn, capture, &what)?;
                    if at.is_outermost() {
                        self.capture_end(conn)?;
                    }
                }
                _ => self.restore(conn, mark, false)?,
            }
            if at.is_outermost() {
                conn.release_lock_logged();
            }
            Ok(())
        })
    }

    /// With capture, drops the checkpoint's snapshot database.
    fn forget(&self, conn: &mut MongoDbConn, mark: Snapshot) -> Result<()> {
        match &mark.0 {
            Saved::Capture(capture) => blocking(|| self.capture_forget(conn, capture)),
            _ => Ok(()),
        }
    }

    /// Empties the collections (`collections_to_reset`, else every collection; views are
    /// left alone) with `deleteMany`, keeping their indexes.
    fn reset(&self, conn: &mut MongoDbConn) -> Result<()> {
        conn.state = DbState::Unknown;
        blocking(|| {
            conn.release_lock_logged();
            for info in list_collections(&conn.io, self.scope())? {
                if info.get_str("type").unwrap_or("collection") == "view" {
                    continue;
                }
                let name = info.get_str("name").unwrap_or_default();
                conn.io
                    .collection::<Document>(name)
                    .delete_many(doc! {})
                    .run()
                    .map_err(|e| driver_error(format!("reset: emptying collection {name:?}"), e))?;
            }
            Ok(())
        })
    }

    /// Shared isolation: 1 (tests take turns on the database); else the test threads.
    fn pool_size(&self) -> usize {
        match self.options.isolation {
            Isolation::Shared | Isolation::Capture => 1,
            Isolation::DatabasePerLease => test_threads(),
        }
    }

    fn captures(&self, _: &MongoDbConn) -> bool {
        self.capture()
    }

    /// With capture, the configured URL; the app's database is
    /// [`database_name`](crate::Session::database_name).
    fn url(&self, _: &MongoDbConn) -> Result<SecretUrl> {
        if self.capture() {
            Ok(self.url.clone())
        } else {
            Err(Error::unsupported(
                NAME,
                "a URL for other connections",
                "the test's documents are rolled back only in its own database; use `isolation: capture` with the app's database",
            ))
        }
    }

    fn diff(&self, conn: &mut MongoDbConn, at: Point<'_>, mark: &Snapshot) -> Result<Diff> {
        match &mark.0 {
            Saved::Capture(capture) => blocking(|| self.capture_diff(conn, capture)),
            _ => Err(Error::unsupported(
                NAME,
                format!("diff() since checkpoint {:?}", at.name()),
                "only capture isolation keeps a copy on the server to compare with; use `isolation: capture`",
            )),
        }
    }

    /// Releases a shared database's lock, or drops the leased database and its record.
    fn close(&self, mut conn: MongoDbConn) -> Result<()> {
        blocking(|| conn.give_back())
    }
}
