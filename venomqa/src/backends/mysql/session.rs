//! What a test reaches through a MySQL manager or session: its connection, `exec()` with
//! the refusal of implicit commits, and `commit()`.

use super::{driver, MySql, MySqlCapture, MySqlCaptureStateManager, MySqlStateManager};
use crate::connected::Connected;
use crate::error::Result;
use crate::manager::Manager;

impl Manager<MySql> {
    /// Runs `sql` (one statement or several separated by `;`), reading every result so an
    /// error in any statement is returned (the driver's `query_drop` drops errors after
    /// the first statement of a batch).
    ///
    /// While a checkpoint is active, a statement that would commit the transaction
    /// implicitly (DDL such as `CREATE TABLE`, `TRUNCATE`, `LOCK TABLES`, or `COMMIT`,
    /// `BEGIN`, `SET autocommit = 1`, ...) is refused **before it runs** with
    /// [`Error::Unsupported`](crate::Error::Unsupported), so the test's isolation survives. `CREATE TEMPORARY TABLE`
    /// is allowed. The text is read as the server reads it: the bodies of executable
    /// comments (`/*!40000 ... */`) count, `--` needs a space after it to start a comment,
    /// and when the meaning of the batch depends on `NO_BACKSLASH_ESCAPES` or
    /// `ANSI_QUOTES` the session's `sql_mode` is asked (one extra round trip, only then).
    /// `CALL`, `PREPARE`, `EXECUTE` and compound statements (`IF`, `BEGIN NOT ATOMIC`,
    /// labels, loops) are refused too, since their text does not show what they run; run
    /// them on the connection itself.
    ///
    /// A driver error is the [`source`](std::error::Error::source) of the error returned:
    ///
    /// ```
    /// use venomqa::mysql::{driver, MySqlStateManager};
    /// use venomqa::StateManager;
    ///
    /// let mut db = MySqlStateManager::from_url("mysql://root@127.0.0.1/test")?;
    /// db.connect()?;
    /// db.checkpoint("start")?;
    /// let refused = db.exec("CREATE TEMPORARY TABLE vq_mysql_scratch (v INT PRIMARY KEY); CREATE TABLE vq_mysql_never (v INT)");
    /// assert!(refused.unwrap_err().to_string().contains("CREATE TABLE"));
    /// db.exec("CREATE TEMPORARY TABLE vq_mysql_scratch (v INT PRIMARY KEY); INSERT INTO vq_mysql_scratch VALUES (1)")?;
    /// let duplicate = db.exec("INSERT INTO vq_mysql_scratch VALUES (1)").unwrap_err();
    /// assert!(matches!(duplicate.driver::<driver::Error>(), Some(driver::Error::MySqlError(e)) if e.code == 1062));
    /// db.discard("start")?;
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn exec(&mut self, sql: &str) -> Result<()> {
        self.connected()?.exec(sql)
    }

    /// Commits the current transaction and keeps the active checkpoints usable (see
    /// [`Connected::commit`]).
    pub fn commit(&mut self) -> Result<()> {
        self.connected()?.commit()
    }
}

impl Connected<MySql> {
    /// Runs `sql` on the connection, refusing statements that would commit the transaction
    /// implicitly while a checkpoint is active (see [`Manager::exec`]).
    pub fn exec(&mut self, sql: &str) -> Result<()> {
        self.with(|backend, conn, stack| backend.exec(conn, stack, sql))
    }

    /// Commits the current transaction, making every change so far permanent, and keeps
    /// the active checkpoints usable: the transaction and its savepoints are re-opened in
    /// the same round trip, so later changes are still rolled back. For the rare test that
    /// needs data committed (for example, to be seen by another connection).
    pub fn commit(&mut self) -> Result<()> {
        self.with(|backend, conn, stack| backend.commit(conn, stack))
    }
}

impl Connected<MySqlCapture> {
    /// Runs `sql` on the connection (see [`Manager::exec`]).
    pub fn exec(&mut self, sql: &str) -> Result<()> {
        self.with(|backend, conn, stack| backend.inner().exec(conn, stack, sql))
    }
}

/// What a session of either MySQL backend reaches.
macro_rules! session_api {
    ($manager:ty) => {
        impl crate::Session<$manager> {
            /// The test's `mysql::Conn`: run the code under test through it, with the
            /// `mysql` crate's API (import [`driver::prelude::Queryable`]).
            pub fn conn(&mut self) -> &mut driver::Conn {
                &mut self.connection().conn
            }

            /// Runs SQL on the test's connection, refusing statements that would commit
            /// the transaction implicitly before they run (see [`MySqlStateManager::exec`]).
            pub fn exec(&mut self, sql: &str) -> Result<()> {
                self.manager().exec(sql)
            }
        }
    };
}

session_api!(MySqlStateManager);
session_api!(MySqlCaptureStateManager);

impl crate::Session<MySqlStateManager> {
    /// Commits the test's changes so far, keeping its checkpoints (see
    /// [`MySqlStateManager::commit`]). Committed changes are NOT rolled back. (Capture
    /// sessions have none: every write is committed as it happens.)
    pub fn commit(&mut self) -> Result<()> {
        self.manager().commit()
    }
}
