//! The server-side work of worker databases, per backend: naming, locking, the marker,
//! creating, listing and dropping, over an administrative connection of its own (the
//! server's `postgres` database, a MySQL connection with no default database, the file
//! system for SQLite).

use std::path::{Path, PathBuf};

use crate::config::BackendConfig;
use crate::error::{BoxError, Error, Result};
use crate::redact::SecretUrl;

/// An administrative connection to an entry's server.
pub(super) trait Admin {
    /// The name of worker `label`'s database on `machine`.
    fn worker_name(&self, machine: &str, label: &str) -> String;
    /// The URL of database `name`, from the entry's.
    fn url_for(&self, name: &str) -> Result<SecretUrl>;
    /// Takes the lock that preparing or dropping `name` holds, waiting for it.
    fn lock(&mut self, name: &str) -> Result<()>;
    /// Releases it.
    fn unlock(&mut self, name: &str) -> Result<()>;
    /// The marker of `name`, if the database exists and has one.
    fn marker(&mut self, name: &str) -> Result<Option<String>>;
    /// Drops `name` if it exists, and creates it empty.
    fn create(&mut self, name: &str) -> Result<()>;
    /// Records `marker` on `name`.
    fn mark(&mut self, name: &str, marker: &str) -> Result<()>;
    /// Every database with a worker marker, and the marker.
    fn list(&mut self) -> Result<Vec<(String, String)>>;
    /// Drops `name` if it exists.
    fn drop_database(&mut self, name: &str) -> Result<()>;
}

/// The administrative connection of `config`'s backend.
pub(super) fn open(config: &BackendConfig) -> Result<Box<dyn Admin>> {
    let failed = |source: BoxError| Error::Worker {
        entry: config.entry.clone(),
        worker: "-".to_owned(),
        source,
    };
    match config.backend.as_str() {
        "sqlite" => Ok(Box::new(Sqlite::new(config).map_err(failed)?)),
        #[cfg(feature = "postgres")]
        "postgres" => Ok(Box::new(postgres::Admin::open(config).map_err(failed)?)),
        #[cfg(feature = "mysql")]
        "mysql" => Ok(Box::new(mysql::Admin::open(config).map_err(failed)?)),
        #[cfg(not(feature = "postgres"))]
        "postgres" => Err(failed("this build has no postgres backend: turn on venomqa's `postgres` feature (venomqa-cli: --features postgres)".into())),
        #[cfg(not(feature = "mysql"))]
        "mysql" => Err(failed("this build has no mysql backend: turn on venomqa's `mysql` feature (venomqa-cli: --features mysql)".into())),
        other => Err(failed(
            format!("the {other} backend has no worker databases (PostgreSQL, MySQL/MariaDB and SQLite capture entries do; Redis and MongoDB sessions each work in a database of their own already)").into(),
        )),
    }
}

/// `e` as a worker error of `config`'s entry.
fn worker_error(entry: &str, e: impl Into<BoxError>) -> Error {
    Error::Worker {
        entry: entry.to_owned(),
        worker: "-".to_owned(),
        source: e.into(),
    }
}

/// SQLite: a file beside the entry's (`app_w0.db` for `app.db`), its marker in
/// `app_w0.db.venomqa-worker`, the lock on `app_w0.db.venomqa-worker-lock`.
struct Sqlite {
    entry: String,
    file: PathBuf,
    lock: Option<std::fs::File>,
}

impl Sqlite {
    fn new(config: &BackendConfig) -> std::result::Result<Self, BoxError> {
        let url = config.url.as_ref().map(SecretUrl::expose).unwrap_or("");
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("memory") {
            return Err("worker databases need a SQLite file, not an in-memory database".into());
        }
        Ok(Sqlite {
            entry: config.entry.clone(),
            file: PathBuf::from(path),
            lock: None,
        })
    }

    fn sidecar(name: &str, suffix: &str) -> PathBuf {
        PathBuf::from(format!("{name}.{suffix}"))
    }

    fn io(&self, what: &str, path: &Path, e: std::io::Error) -> Error {
        worker_error(&self.entry, format!("{what} {}: {e}", path.display()))
    }
}

impl Admin for Sqlite {
    fn worker_name(&self, _machine: &str, label: &str) -> String {
        // A file is on one machine: no machine in its name.
        let stem = self
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match self.file.extension() {
            Some(ext) => format!("{stem}_w{label}.{}", ext.to_string_lossy()),
            None => format!("{stem}_w{label}"),
        };
        self.file.with_file_name(name).display().to_string()
    }

    fn url_for(&self, name: &str) -> Result<SecretUrl> {
        Ok(SecretUrl::new(format!("sqlite://{name}")))
    }

    fn lock(&mut self, name: &str) -> Result<()> {
        let path = Self::sidecar(name, "venomqa-worker-lock");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io("creating", dir, e))?;
        }
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.io("opening", &path, e))?;
        file.lock().map_err(|e| self.io("locking", &path, e))?;
        self.lock = Some(file);
        Ok(())
    }

    fn unlock(&mut self, _name: &str) -> Result<()> {
        self.lock = None;
        Ok(())
    }

    fn marker(&mut self, name: &str) -> Result<Option<String>> {
        // A file a killed session left is not reused (SQLite capture cannot restore it):
        // it is made again.
        if !Path::new(name).exists()
            || crate::backends::sqlite::left_by_a_dead_session(Path::new(name))
        {
            return Ok(None);
        }
        Ok(std::fs::read_to_string(Self::sidecar(name, "venomqa-worker")).ok())
    }

    fn create(&mut self, name: &str) -> Result<()> {
        self.drop_database(name)?;
        std::fs::File::create(name).map_err(|e| self.io("creating", Path::new(name), e))?;
        Ok(())
    }

    fn mark(&mut self, name: &str, marker: &str) -> Result<()> {
        let path = Self::sidecar(name, "venomqa-worker");
        std::fs::write(&path, marker).map_err(|e| self.io("writing", &path, e))
    }

    fn list(&mut self) -> Result<Vec<(String, String)>> {
        let dir = match self.file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut found = Vec::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| self.io("reading", &dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(db) = path
                .to_str()
                .and_then(|p| p.strip_suffix(".venomqa-worker"))
            else {
                continue;
            };
            if let Ok(marker) = std::fs::read_to_string(&path) {
                found.push((db.to_owned(), marker));
            }
        }
        found.sort();
        Ok(found)
    }

    fn drop_database(&mut self, name: &str) -> Result<()> {
        for suffix in ["", "-wal", "-shm", ".venomqa-lock", ".venomqa-worker"] {
            let path = PathBuf::from(format!("{name}{suffix}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io("removing", &path, e)),
            }
        }
        Ok(())
    }
}

/// The database name of a `scheme://host/name?..` URL.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(super) fn database_of(url: &SecretUrl) -> std::result::Result<String, BoxError> {
    let raw = url.expose();
    let rest = raw
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or("worker databases need a URL of the form scheme://user@host/database")?;
    let path = rest.split('?').next().unwrap_or_default();
    match path.split_once('/') {
        Some((_, db)) if !db.is_empty() => Ok(db.to_owned()),
        _ => Err("worker databases need the entry's URL to name a database (scheme://user@host/database)".into()),
    }
}

/// The URL `url` with its database (the path after the host) replaced by `name`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(super) fn with_database(
    url: &SecretUrl,
    name: &str,
) -> std::result::Result<SecretUrl, BoxError> {
    let raw = url.expose();
    let start = raw
        .find("://")
        .map(|i| i + 3)
        .ok_or("worker databases need a URL of the form scheme://user@host/database")?;
    let rest = &raw[start..];
    let cut = start + rest.find(['/', '?']).unwrap_or(rest.len());
    let query = raw[cut..].find('?').map_or("", |q| &raw[cut + q..]);
    Ok(SecretUrl::new(format!("{}/{name}{query}", &raw[..cut])))
}

/// What the SQL servers' administrative connections share: the entry, its URL and its
/// database, the base of the workers' names.
#[cfg(any(feature = "postgres", feature = "mysql"))]
struct SqlServer {
    entry: String,
    url: SecretUrl,
    base: String,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl SqlServer {
    fn new(config: &BackendConfig, default_url: &str) -> std::result::Result<Self, BoxError> {
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::new(default_url));
        Ok(SqlServer {
            entry: config.entry.clone(),
            base: database_of(&url)?,
            url,
        })
    }

    fn worker_name(&self, machine: &str, label: &str) -> String {
        sql_worker_name(&self.base, machine, label)
    }

    fn url_for(&self, name: &str) -> Result<SecretUrl> {
        with_database(&self.url, name).map_err(|e| worker_error(&self.entry, e))
    }
}

/// `name` of a worker database from the entry's database: `<db>_<machine>_w<slot>`, cut to
/// the servers' 63 bytes (the base name shortened first).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(super) fn sql_worker_name(base: &str, machine: &str, label: &str) -> String {
    let tail = format!("_{machine}_w{label}");
    let keep = 63usize.saturating_sub(tail.len());
    let base: String = base.chars().take(keep).collect();
    format!("{base}{tail}")
}

#[cfg(feature = "postgres")]
mod postgres {
    use ::postgres::{Client, Config, NoTls};

    use super::{worker_error, SqlServer};
    use crate::config::BackendConfig;
    use crate::error::{BoxError, Result};
    use crate::redact::SecretUrl;
    use crate::sql::quote_double;

    /// The advisory lock class of worker preparation (its second key is the name's hash).
    const LOCK_CLASS: i32 = 7_345_101;

    pub(super) struct Admin {
        entry: String,
        server: SqlServer,
        client: Client,
    }

    impl Admin {
        pub(super) fn open(config: &BackendConfig) -> std::result::Result<Self, BoxError> {
            let server = SqlServer::new(config, crate::postgres::DEFAULT_URL)?;
            let url = &server.url;
            let mut admin: Config = url.expose().parse().map_err(|e: ::postgres::Error| {
                format!(
                    "the entry's URL does not parse: {}",
                    crate::error::Scrubbed::new(url, e.into())
                )
            })?;
            admin.dbname("postgres");
            admin.connect_timeout(
                config
                    .connect_timeout
                    .unwrap_or(std::time::Duration::from_secs(10)),
            );
            let client = admin.connect(NoTls).map_err(|e| {
                format!(
                    "connecting to the server's postgres database at {url} failed: {}",
                    crate::error::Scrubbed::new(url, e.into())
                )
            })?;
            Ok(Admin {
                entry: config.entry.clone(),
                server,
                client,
            })
        }

        fn run(&mut self, what: &str, sql: &str) -> Result<()> {
            self.client
                .batch_execute(sql)
                .map_err(|e| worker_error(&self.entry, format!("{what}: {e}")))
        }

        fn key(name: &str) -> i32 {
            crate::util::fnv64(name.as_bytes()) as i32
        }
    }

    impl super::Admin for Admin {
        fn worker_name(&self, machine: &str, label: &str) -> String {
            self.server.worker_name(machine, label)
        }

        fn url_for(&self, name: &str) -> Result<SecretUrl> {
            self.server.url_for(name)
        }

        fn lock(&mut self, name: &str) -> Result<()> {
            let key = Self::key(name);
            self.client
                .execute("SELECT pg_advisory_lock($1, $2)", &[&LOCK_CLASS, &key])
                .map(drop)
                .map_err(|e| worker_error(&self.entry, format!("locking {name}: {e}")))
        }

        fn unlock(&mut self, name: &str) -> Result<()> {
            let key = Self::key(name);
            self.client
                .execute("SELECT pg_advisory_unlock($1, $2)", &[&LOCK_CLASS, &key])
                .map(drop)
                .map_err(|e| worker_error(&self.entry, format!("unlocking {name}: {e}")))
        }

        fn marker(&mut self, name: &str) -> Result<Option<String>> {
            let row = self
                .client
                .query_opt(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
                    &[&name],
                )
                .map_err(|e| worker_error(&self.entry, format!("reading the marker of {name}: {e}")))?;
            Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
        }

        fn create(&mut self, name: &str) -> Result<()> {
            self.drop_database(name)?;
            // CREATE DATABASE copies template1, which PostgreSQL refuses while another
            // session copies it too (55006): try again for a while.
            let sql = format!("CREATE DATABASE {}", quote_double("postgres", name)?);
            let mut tries = 0;
            loop {
                match self.client.batch_execute(&sql) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.code().map(|c| c.code()) == Some("55006") && tries < 100 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    Err(e) => {
                        return Err(worker_error(
                            &self.entry,
                            format!("creating {name}: {e}; the user needs the CREATEDB privilege"),
                        ))
                    }
                }
            }
        }

        fn mark(&mut self, name: &str, marker: &str) -> Result<()> {
            // A literal with its quotes doubled (standard_conforming_strings, the default
            // since PostgreSQL 9.1, keeps backslashes as they are).
            let sql = format!(
                "COMMENT ON DATABASE {} IS '{}'",
                quote_double("postgres", name)?,
                marker.replace('\'', "''")
            );
            self.run(&format!("marking {name}"), &sql)
        }

        fn list(&mut self) -> Result<Vec<(String, String)>> {
            let rows = self
                .client
                .query(
                    "SELECT datname::text, shobj_description(oid, 'pg_database') FROM pg_database \
                     WHERE shobj_description(oid, 'pg_database') LIKE 'venomqa worker %' ORDER BY datname",
                    &[],
                )
                .map_err(|e| worker_error(&self.entry, format!("listing worker databases: {e}")))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        }

        fn drop_database(&mut self, name: &str) -> Result<()> {
            let sql = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_double("postgres", name)?
            );
            self.run(&format!("dropping {name}"), &sql)
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use ::mysql::prelude::Queryable;
    use ::mysql::{Conn, Opts, OptsBuilder};

    use super::{worker_error, SqlServer};
    use crate::config::BackendConfig;
    use crate::error::{BoxError, Result};
    use crate::redact::SecretUrl;
    use crate::sql::quote_backtick;

    pub(super) struct Admin {
        entry: String,
        server: SqlServer,
        conn: Conn,
    }

    impl Admin {
        pub(super) fn open(config: &BackendConfig) -> std::result::Result<Self, BoxError> {
            let server = SqlServer::new(config, crate::mysql::DEFAULT_URL)?;
            let url = &server.url;
            let opts = Opts::from_url(url.expose()).map_err(|e| {
                format!(
                    "the entry's URL does not parse: {}",
                    crate::error::Scrubbed::new(url, e.into())
                )
            })?;
            let conn =
                Conn::new(OptsBuilder::from_opts(opts).db_name(None::<String>)).map_err(|e| {
                    format!(
                        "connecting to the server at {url} failed: {}",
                        crate::error::Scrubbed::new(url, e.into())
                    )
                })?;
            Ok(Admin {
                entry: config.entry.clone(),
                server,
                conn,
            })
        }

        fn run(&mut self, what: &str, sql: &str) -> Result<()> {
            self.conn
                .query_drop(sql)
                .map_err(|e| worker_error(&self.entry, format!("{what}: {e}")))
        }
    }

    impl super::Admin for Admin {
        fn worker_name(&self, machine: &str, label: &str) -> String {
            self.server.worker_name(machine, label)
        }

        fn url_for(&self, name: &str) -> Result<SecretUrl> {
            self.server.url_for(name)
        }

        fn lock(&mut self, name: &str) -> Result<()> {
            let got: Option<i64> = self
                .conn
                .exec_first(
                    "SELECT GET_LOCK(?, 600)",
                    (format!("venomqa_worker_{name}"),),
                )
                .map_err(|e| worker_error(&self.entry, format!("locking {name}: {e}")))?
                .flatten();
            if got == Some(1) {
                Ok(())
            } else {
                Err(worker_error(
                    &self.entry,
                    format!("locking {name}: not granted within 600 s"),
                ))
            }
        }

        fn unlock(&mut self, name: &str) -> Result<()> {
            self.conn
                .exec_drop(
                    "SELECT RELEASE_LOCK(?)",
                    (format!("venomqa_worker_{name}"),),
                )
                .map_err(|e| worker_error(&self.entry, format!("unlocking {name}: {e}")))
        }

        fn marker(&mut self, name: &str) -> Result<Option<String>> {
            let exists: Option<String> = self
                .conn
                .exec_first(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = '_vq_worker'",
                    (name,),
                )
                .map_err(|e| worker_error(&self.entry, format!("reading the marker of {name}: {e}")))?;
            if exists.is_none() {
                return Ok(None);
            }
            let sql = format!(
                "SELECT marker FROM {}.`_vq_worker` LIMIT 1",
                quote_backtick("mysql", name)?
            );
            self.conn.query_first(sql).map_err(|e| {
                worker_error(&self.entry, format!("reading the marker of {name}: {e}"))
            })
        }

        fn create(&mut self, name: &str) -> Result<()> {
            self.drop_database(name)?;
            let sql = format!("CREATE DATABASE {}", quote_backtick("mysql", name)?);
            self.run(
                &format!("creating {name} (the user needs the CREATE privilege)"),
                &sql,
            )
        }

        fn mark(&mut self, name: &str, marker: &str) -> Result<()> {
            let db = quote_backtick("mysql", name)?;
            self.run(
                &format!("marking {name}"),
                &format!(
                    "CREATE TABLE IF NOT EXISTS {db}.`_vq_worker` (marker VARCHAR(255) NOT NULL); \
                     DELETE FROM {db}.`_vq_worker`"
                ),
            )?;
            self.conn
                .exec_drop(
                    format!("INSERT INTO {db}.`_vq_worker` VALUES (?)"),
                    (marker,),
                )
                .map_err(|e| worker_error(&self.entry, format!("marking {name}: {e}")))
        }

        fn list(&mut self) -> Result<Vec<(String, String)>> {
            let dbs: Vec<String> = self
                .conn
                .query("SELECT TABLE_SCHEMA FROM information_schema.TABLES WHERE TABLE_NAME = '_vq_worker' ORDER BY TABLE_SCHEMA")
                .map_err(|e| worker_error(&self.entry, format!("listing worker databases: {e}")))?;
            let mut found = Vec::new();
            for db in dbs {
                if let Some(marker) = self.marker(&db)? {
                    found.push((db, marker));
                }
            }
            Ok(found)
        }

        fn drop_database(&mut self, name: &str) -> Result<()> {
            let sql = format!("DROP DATABASE IF EXISTS {}", quote_backtick("mysql", name)?);
            self.run(&format!("dropping {name}"), &sql)
        }
    }
}
