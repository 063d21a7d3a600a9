//! The hooks the three dialects share: a transaction per test and a savepoint per
//! checkpoint, made through sqlx's own transaction manager so its depth stays right, and
//! what a failure of each means.

use std::borrow::Cow;

use ::sqlx::{Connection, Executor, TransactionManager};

use super::dialect::{Conn, Dialect, Tm};
use super::SqlxMark;
use crate::checkpoint::Point;
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// The savepoint that the first checkpoint opens with the transaction, and that the last
/// rollback goes back to first, proving the transaction is still the test's.
const ROOT_SAVEPOINT: &str = "venomqa_root";

/// Where a statement ran, which decides what its failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Opening the test's transaction: nothing of the test has run yet.
    Begin,
    /// Inside the test's transaction.
    Nested,
    /// The COMMIT of a release of the outermost checkpoint.
    Commit,
    /// Outside any checkpoint: the health check, a setup script.
    Other,
}

/// Maps an sqlx error of `operation` to the error venomqa reports.
fn fail<D: Dialect>(operation: String, error: ::sqlx::Error, stage: Stage) -> Error {
    let lost = match &error {
        ::sqlx::Error::Io(_)
        | ::sqlx::Error::Tls(_)
        | ::sqlx::Error::Protocol(_)
        | ::sqlx::Error::WorkerCrashed => true,
        ::sqlx::Error::Database(db) => D::lost(db.as_ref()),
        _ => false,
    };
    if lost {
        let outcome = match stage {
            Stage::Begin => "no transaction was open yet, so nothing was changed",
            Stage::Commit => "whether the COMMIT took effect is unknown: check the data",
            Stage::Nested | Stage::Other => {
                "the server rolled back what was not committed; the pool opens a new connection"
            }
        };
        return Error::connection_lost(D::NAME, operation, outcome, error);
    }
    if let ::sqlx::Error::Database(db) = &error {
        if stage != Stage::Other && D::gone(db.as_ref()) {
            return Error::state_lost(
                D::NAME,
                format!(
                    "{operation} found the test's transaction or savepoint gone ({}): code on the test's connection ran COMMIT or ROLLBACK (or DDL, which commits on MySQL), so what it wrote may be committed; use conn.begin() (a savepoint) instead",
                    db.message()
                ),
            );
        }
    }
    Error::backend(D::NAME, operation, error)
}

fn depth<D: Dialect>(conn: &Conn<D>) -> usize {
    <Tm<D> as TransactionManager>::get_transaction_depth(conn)
}

/// sqlx's transaction depth once what code under test queued (a dropped `Transaction`'s
/// rollback) has run.
fn settled<D: Dialect>(conn: &mut Conn<D>, operation: &dyn Fn() -> String) -> Result<usize> {
    D::settle(conn).map_err(|e| fail::<D>(operation(), e, Stage::Nested))?;
    Ok(depth::<D>(conn))
}

/// Rolls back sqlx's transaction stack to `target` (the depth of a checkpoint): the later
/// checkpoints and the savepoints code under test left open are undone, one at a time.
fn unwind<D: Dialect>(
    conn: &mut Conn<D>,
    target: usize,
    operation: &dyn Fn() -> String,
) -> Result<()> {
    let now = settled::<D>(conn, operation)?;
    if now < target {
        return Err(Error::state_lost(
            D::NAME,
            format!(
                "{} found sqlx's transaction depth {now} below the checkpoint's {target}: code under test committed or rolled back a transaction it did not begin (TransactionManager calls); leave venomqa's transaction alone",
                operation()
            ),
        ));
    }
    while depth::<D>(conn) > target {
        block_on(<Tm<D> as TransactionManager>::rollback(conn))
            .map_err(|e| fail::<D>(operation(), e, Stage::Nested))?;
    }
    Ok(())
}

fn execute<D: Dialect>(conn: &mut Conn<D>, sql: &str) -> std::result::Result<(), ::sqlx::Error>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    block_on(conn.execute(::sqlx::raw_sql(sql))).map(drop)
}

/// The savepoint of a checkpoint made at sqlx depth `depth - 1`.
fn savepoint(depth: usize) -> Cow<'static, str> {
    if depth <= 1 {
        Cow::Borrowed(ROOT_SAVEPOINT)
    } else {
        Cow::Owned(format!("_sqlx_savepoint_{}", depth - 1))
    }
}

pub(crate) fn checkpoint<D: Dialect>(
    backend: &D,
    conn: &mut Conn<D>,
    at: Point<'_>,
) -> Result<SqlxMark> {
    let operation = || format!("checkpoint {:?}", at.name().as_str());
    let before = settled::<D>(conn, &operation)?;
    if at.is_outermost() {
        if before != 0 {
            return Err(Error::state_lost(
                D::NAME,
                format!(
                    "{} found the connection already in a transaction (sqlx depth {before})",
                    operation()
                ),
            ));
        }
        block_on(<Tm<D> as TransactionManager>::begin(
            conn,
            Some(Cow::Borrowed(backend.begin_sql())),
        ))
        .map_err(|e| fail::<D>(operation(), e, Stage::Begin))?;
    } else {
        if before == 0 {
            return Err(Error::state_lost(
                D::NAME,
                format!("{} found the test's transaction gone: code under test ended it; use conn.begin() (a savepoint) instead", operation()),
            ));
        }
        block_on(<Tm<D> as TransactionManager>::begin(conn, None))
            .map_err(|e| fail::<D>(operation(), e, Stage::Nested))?;
    }
    // Read back rather than computed: what sqlx did is what later hooks undo.
    Ok(SqlxMark {
        depth: depth::<D>(conn),
    })
}

pub(crate) fn rollback<D: Dialect>(conn: &mut Conn<D>, at: Point<'_>, mark: &SqlxMark) -> Result<()>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    let operation = || format!("rollback to checkpoint {:?}", at.name().as_str());
    unwind::<D>(conn, mark.depth, &operation)?;
    let sql = format!("ROLLBACK TO SAVEPOINT {}", savepoint(mark.depth));
    execute::<D>(conn, &sql).map_err(|e| fail::<D>(operation(), e, Stage::Nested))
}

pub(crate) fn release<D: Dialect>(
    conn: &mut Conn<D>,
    at: Point<'_>,
    mark: &SqlxMark,
) -> Result<()> {
    let operation = || format!("release of checkpoint {:?}", at.name().as_str());
    let now = settled::<D>(conn, &operation)?;
    if now < mark.depth {
        return Err(Error::state_lost(
            D::NAME,
            format!("{} found sqlx's transaction depth {now} below the checkpoint's {}: code under test ended a transaction it did not begin", operation(), mark.depth),
        ));
    }
    while depth::<D>(conn) >= mark.depth {
        let stage = if depth::<D>(conn) == 1 {
            Stage::Commit
        } else {
            Stage::Nested
        };
        block_on(<Tm<D> as TransactionManager>::commit(conn))
            .map_err(|e| fail::<D>(operation(), e, stage))?;
    }
    Ok(())
}

pub(crate) fn discard<D: Dialect>(
    backend: &D,
    conn: &mut Conn<D>,
    at: Point<'_>,
    mark: &SqlxMark,
) -> Result<()>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    let operation = || format!("rollback of checkpoint {:?}", at.name().as_str());
    unwind::<D>(conn, mark.depth, &operation)?;
    if mark.depth == 1 {
        if let Some(probe) = backend.end_sql() {
            execute::<D>(conn, probe).map_err(|e| fail::<D>(operation(), e, Stage::Nested))?;
            if backend.end_sql_rolls_back() {
                // The transaction has ended; sqlx's depth goes back to 0 with a ROLLBACK
                // queued (a silent no-op) that goes out with the next statement.
                <Tm<D> as TransactionManager>::start_rollback(conn);
                return Ok(());
            }
        }
    }
    block_on(<Tm<D> as TransactionManager>::rollback(conn))
        .map_err(|e| fail::<D>(operation(), e, Stage::Nested))
}

/// A connection is handed out only outside a transaction, after a ping.
pub(crate) fn recycle<D: Dialect>(conn: &mut Conn<D>) -> Result<()> {
    let now = depth::<D>(conn);
    if now != 0 {
        return Err(Error::state_lost(
            D::NAME,
            format!("the pooled connection is still in a transaction (sqlx depth {now})"),
        ));
    }
    block_on(conn.ping()).map_err(|e| fail::<D>("the health check".to_owned(), e, Stage::Other))
}

pub(crate) fn execute_script<D: Dialect>(conn: &mut Conn<D>, script: &str) -> Result<()>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    execute::<D>(conn, script)
        .map_err(|e| fail::<D>("running a script".to_owned(), e, Stage::Other))
}

pub(crate) fn close<D: Dialect>(conn: Conn<D>) -> Result<()> {
    block_on(conn.close()).map_err(|e| Error::backend(D::NAME, "closing the connection", e))
}

pub(crate) fn no_url(backend: &str) -> Error {
    Error::unsupported(
        backend,
        "a URL for other connections",
        "an sqlx session's changes live in its connection's transaction, which other connections do not see; an app that needs its own pool can use the postgres or mysql backend with `isolation: capture`",
    )
}
