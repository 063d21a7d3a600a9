//! Configuration: `venomqa.yaml`, environment overrides, and the resolved
//! [`BackendConfig`] a backend factory receives.
//!
//! ```yaml
//! # venomqa.yaml, found from the test crate's directory upward
//! db_backend: mysql                     # backend of a bare #[venom_test]
//! db_url: mysql://root@127.0.0.1/test   # URL of that default backend
//! backends:
//!   mysql:                              # an entry named after its backend
//!     pool_size: 8
//!     tables_to_reset: [users, orders]
//!     setup: schema/                    # *.sql files, run once per process
//!   analytics:                          # a named entry: #[venom_test(config = "analytics")]
//!     backend: postgres
//!     url: postgres://postgres@127.0.0.1/analytics
//!     schemas: [public, reporting]
//! ```
//!
//! Precedence, highest first: `VENOMQA_<ENTRY>_URL`, then `VENOMQA_DB_URL` (default
//! backend only), then `#[venom_test(url = "..")]`, then the entry's `url`, then `db_url`
//! (default backend only), then the backend's own default. The backend of a bare
//! `#[venom_test]` is `VENOMQA_DB_BACKEND`, else `db_backend`, else `sqlite`.
//! `VENOMQA_<ENTRY>_POOL_SIZE` overrides `pool_size`; `VENOMQA_CONFIG` names the file
//! explicitly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{env_key, Error, Result};

/// File names looked for, in each directory from the test crate's upward.
pub const CONFIG_FILE_NAMES: &[&str] = &["venomqa.yaml", "venomqa.yml"];

/// The backend used when nothing is configured.
pub const DEFAULT_BACKEND: &str = "sqlite";

/// One entry of the file's `backends:` map.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    backend: Option<String>,
    url: Option<String>,
    pool_size: Option<usize>,
    connect_timeout_ms: Option<u64>,
    lease_timeout_ms: Option<u64>,
    setup: Option<PathBuf>,
    #[serde(default)]
    tables_to_reset: Vec<String>,
    #[serde(default)]
    exclude_tables: Vec<String>,
    #[serde(default)]
    schemas: Vec<String>,
    key_prefix: Option<String>,
    database: Option<String>,
    #[serde(default)]
    collections_to_reset: Vec<String>,
    template_database: Option<String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db_backend: Option<String>,
    db_url: Option<String>,
    #[serde(default)]
    backends: BTreeMap<String, EntryFile>,
}

/// Everything a backend factory needs to build a manager: the resolved configuration of
/// one entry (file values with environment overrides applied).
///
/// Backends read the fields that concern them and ignore the rest.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BackendConfig {
    /// The entry's name: the backend's name, or a named entry of `backends:`.
    pub entry: String,
    /// The registered backend that builds the managers.
    pub backend: String,
    /// Connection URL; `None` lets the backend use its default.
    pub url: Option<String>,
    /// Connections in this entry's pool; `None` lets the backend choose.
    pub pool_size: Option<usize>,
    /// How long a connection attempt may take.
    pub connect_timeout: Option<Duration>,
    /// How long a test waits for a free pooled connection (default 300 s).
    pub lease_timeout: Option<Duration>,
    /// A directory of `.sql` files (run in name order) or one `.sql` file, run once per
    /// process before the first lease. Relative paths are resolved against the file's
    /// directory.
    pub setup: Option<PathBuf>,
    /// SQL: tables `reset()` empties (default: every base table).
    pub tables_to_reset: Vec<String>,
    /// SQL: tables `reset()` never touches.
    pub exclude_tables: Vec<String>,
    /// PostgreSQL: schemas whose tables `reset()` covers (default `public`).
    pub schemas: Vec<String>,
    /// Redis: the key prefix the backend owns.
    pub key_prefix: Option<String>,
    /// MongoDB: the database name.
    pub database: Option<String>,
    /// MongoDB: collections to snapshot and reset (default: all).
    pub collections_to_reset: Vec<String>,
    /// MongoDB: a database every test's database starts as a copy of.
    pub template_database: Option<String>,
    /// Backend-specific settings (`options:` in the file), strings by key.
    pub options: BTreeMap<String, String>,
    /// Where the values came from, for error messages: the file's path, or `defaults`.
    pub source: String,
}

/// Shows the URL with its password replaced by `***`.
impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConfig")
            .field("entry", &self.entry)
            .field("backend", &self.backend)
            .field("url", &self.url.as_deref().map(crate::redact_url))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("lease_timeout", &self.lease_timeout)
            .field("setup", &self.setup)
            .field("tables_to_reset", &self.tables_to_reset)
            .field("exclude_tables", &self.exclude_tables)
            .field("schemas", &self.schemas)
            .field("key_prefix", &self.key_prefix)
            .field("database", &self.database)
            .field("collections_to_reset", &self.collections_to_reset)
            .field("template_database", &self.template_database)
            .field("options", &self.options)
            .field("source", &self.source)
            .finish()
    }
}

impl BackendConfig {
    /// A configuration for `backend` with nothing else set.
    pub fn new(backend: &str) -> Self {
        BackendConfig {
            entry: backend.to_owned(),
            backend: backend.to_owned(),
            source: "defaults".to_owned(),
            ..Default::default()
        }
    }

    /// The same configuration with `url` set.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The URL, or `default` when none is configured.
    pub fn url_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.url.as_deref().unwrap_or(default)
    }

    /// A backend-specific option from the entry's `options:` map.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// A backend-specific option parsed as `T`; a value that does not parse is a
    /// [`Error::Config`] naming the file and the key.
    pub fn option_parsed<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.option(key)
            .map(|v| {
                v.parse::<T>().map_err(|e| {
                    Error::config(
                        &self.source,
                        format!("backends.{}.options.{key}", self.entry),
                        format!("{v:?} is not valid: {e}"),
                    )
                })
            })
            .transpose()
    }

    /// The environment variable that overrides this entry's URL.
    pub fn url_env_var(&self) -> String {
        format!("VENOMQA_{}_URL", env_key(&self.entry))
    }
}

/// What a test asks for: the arguments of `#[venom_test(..)]`.
#[derive(Clone, Copy, Default)]
pub struct Selection<'a> {
    /// `backend = ".."`.
    pub backend: Option<&'a str>,
    /// `config = ".."`: a named entry of the file's `backends:` map.
    pub entry: Option<&'a str>,
    /// `url = ".."`.
    pub url: Option<&'a str>,
}

/// Shows the URL with its password replaced by `***`.
impl std::fmt::Debug for Selection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selection")
            .field("backend", &self.backend)
            .field("entry", &self.entry)
            .field("url", &self.url.map(crate::redact_url))
            .finish()
    }
}

/// A parsed `venomqa.yaml` (or the empty configuration when there is none).
#[derive(Clone, Default)]
pub struct Config {
    file: FileConfig,
    path: Option<PathBuf>,
}

/// Shows where the file is and the names of its entries, never their URLs.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("db_backend", &self.file.db_backend)
            .field("entries", &self.file.backends.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Config {
    /// Parses YAML text; `source` names it in error messages.
    pub fn from_yaml(text: &str, source: &Path) -> Result<Self> {
        let file: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| yaml_error(source, &e))?
        };
        let source_name = source.display().to_string();
        for (name, entry) in &file.backends {
            if entry.pool_size == Some(0) {
                return Err(Error::config(
                    &source_name,
                    format!("backends.{name}.pool_size"),
                    "must be at least 1",
                ));
            }
            if name.is_empty() || entry.backend.as_deref() == Some("") {
                return Err(Error::config(
                    &source_name,
                    format!("backends.{name}"),
                    "entry and backend names must not be empty",
                ));
            }
        }
        Ok(Config {
            file,
            path: Some(source.to_owned()),
        })
    }

    /// Reads a configuration file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                path.display().to_string(),
                "(file)",
                format!("cannot read it: {e}"),
            )
        })?;
        Self::from_yaml(&text, path)
    }

    /// Finds the configuration for a crate in `start`: the file named by
    /// `VENOMQA_CONFIG`, else the first `venomqa.yaml` / `venomqa.yml` in `start` or a
    /// parent directory, else the empty configuration.
    pub fn discover(start: &Path) -> Result<Self> {
        if let Some(explicit) = std::env::var_os("VENOMQA_CONFIG") {
            let path = PathBuf::from(explicit);
            let path = if path.is_relative() {
                start.join(path)
            } else {
                path
            };
            return Self::from_file(&path);
        }
        for dir in start.ancestors() {
            for name in CONFIG_FILE_NAMES {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return Self::from_file(&candidate);
                }
            }
        }
        Ok(Config::default())
    }

    /// [`discover`](Self::discover), cached per directory for the life of the process.
    pub fn discover_cached(start: &Path) -> Result<Arc<Self>> {
        static CACHE: LazyLock<Mutex<HashMap<PathBuf, Arc<Config>>>> =
            LazyLock::new(Default::default);
        if let Some(hit) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).get(start) {
            return Ok(hit.clone());
        }
        let config = Arc::new(Self::discover(start)?);
        CACHE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(start.to_owned(), config.clone());
        Ok(config)
    }

    /// The file this configuration came from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Resolves a selection against the file and the process environment.
    pub fn resolve(&self, selection: Selection<'_>) -> Result<BackendConfig> {
        self.resolve_with_env(selection, |k| std::env::var(k).ok())
    }

    /// Resolves a selection with `env` standing in for the process environment.
    pub fn resolve_with_env(
        &self,
        selection: Selection<'_>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<BackendConfig> {
        let source = self.source();
        let env = |key: &str| env(key).filter(|v| !v.is_empty());
        let default_name = env("VENOMQA_DB_BACKEND")
            .or_else(|| self.file.db_backend.clone())
            .unwrap_or_else(|| DEFAULT_BACKEND.to_owned());

        let entry_name = match (selection.entry, selection.backend) {
            (Some(entry), _) => {
                if !self.file.backends.contains_key(entry) {
                    let known: Vec<&str> = self.file.backends.keys().map(String::as_str).collect();
                    return Err(Error::config(
                        &source,
                        format!("backends.{entry}"),
                        format!(
                            "#[venom_test(config = {entry:?})] names an entry that does not exist; entries: {}",
                            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                        ),
                    ));
                }
                entry.to_owned()
            }
            (None, Some(backend)) => backend.to_owned(),
            (None, None) => default_name.clone(),
        };
        // `db_url` belongs to the file's own `db_backend`, not to one the environment chose.
        let file_default = self.file.db_backend.as_deref().unwrap_or(DEFAULT_BACKEND);
        let file_entry = self
            .file
            .backends
            .get(&entry_name)
            .cloned()
            .unwrap_or_default();
        let is_default = entry_name == default_name;
        let backend = file_entry
            .backend
            .clone()
            .unwrap_or_else(|| entry_name.clone());
        if let (Some(entry), Some(asked)) = (selection.entry, selection.backend) {
            if asked != backend {
                return Err(Error::config(
                    &source,
                    format!("backends.{entry}.backend"),
                    format!(
                        "#[venom_test(config = {entry:?}, backend = {asked:?})] asks for backend {asked:?}, \
                         but the entry is for {backend:?}; drop one of the two arguments"
                    ),
                ));
            }
        }

        let url = env(&format!("VENOMQA_{}_URL", env_key(&entry_name)))
            .or_else(|| is_default.then(|| env("VENOMQA_DB_URL")).flatten())
            .or_else(|| selection.url.map(str::to_owned))
            .or_else(|| file_entry.url.clone())
            .or_else(|| {
                (entry_name == file_default)
                    .then(|| self.file.db_url.clone())
                    .flatten()
            });

        let pool_var = format!("VENOMQA_{}_POOL_SIZE", env_key(&entry_name));
        let pool_size = match env(&pool_var) {
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(Error::config(
                        "environment",
                        pool_var,
                        format!("{v:?} is not a whole number of at least 1"),
                    ))
                }
            },
            None => file_entry.pool_size,
        };

        let base_dir = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned);
        let setup = file_entry.setup.map(|p| match &base_dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        });

        Ok(BackendConfig {
            entry: entry_name,
            backend,
            url,
            pool_size,
            connect_timeout: file_entry.connect_timeout_ms.map(Duration::from_millis),
            lease_timeout: file_entry.lease_timeout_ms.map(Duration::from_millis),
            setup,
            tables_to_reset: file_entry.tables_to_reset,
            exclude_tables: file_entry.exclude_tables,
            schemas: file_entry.schemas,
            key_prefix: file_entry.key_prefix,
            database: file_entry.database,
            collections_to_reset: file_entry.collections_to_reset,
            template_database: file_entry.template_database,
            options: file_entry.options,
            source,
        })
    }

    fn source(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".to_owned())
    }
}

/// Turns a YAML error into [`Error::Config`] naming the offending key.
fn yaml_error(source: &Path, e: &serde_yaml_ng::Error) -> Error {
    let text = e.to_string();
    // serde_yaml_ng prefixes nested errors with their path: "backends.mysql: unknown field ..".
    let (path, message) = match text.split_once(": ") {
        Some((p, m)) if !p.contains(' ') => (p.to_owned(), m.to_owned()),
        _ => (String::new(), text.clone()),
    };
    let field = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"));
    let key = match (path.is_empty(), field) {
        (true, Some(f)) => f.to_owned(),
        (false, Some(f)) if message.starts_with("unknown field") => format!("{path}.{f}"),
        (false, _) => path,
        (true, None) => "(document)".to_owned(),
    };
    Error::config(source.display().to_string(), key, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Config {
        Config::from_yaml(yaml, Path::new("/proj/venomqa.yaml")).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_to_sqlite() {
        let c = Config::default()
            .resolve_with_env(Selection::default(), no_env)
            .unwrap();
        assert_eq!(c.backend, "sqlite");
        assert_eq!(c.url, None);
    }

    #[test]
    fn file_then_env_precedence() {
        let c = cfg(
            "db_backend: mysql\ndb_url: mysql://file/db\nbackends:\n  mysql:\n    pool_size: 3\n",
        );
        let r = c.resolve_with_env(Selection::default(), no_env).unwrap();
        assert_eq!(
            (r.backend.as_str(), r.url.as_deref(), r.pool_size),
            ("mysql", Some("mysql://file/db"), Some(3))
        );

        let env = |k: &str| match k {
            "VENOMQA_DB_URL" => Some("mysql://db-url/x".to_owned()),
            _ => None,
        };
        assert_eq!(
            c.resolve_with_env(Selection::default(), env)
                .unwrap()
                .url
                .as_deref(),
            Some("mysql://db-url/x")
        );

        let env = |k: &str| match k {
            "VENOMQA_DB_URL" => Some("mysql://db-url/x".to_owned()),
            "VENOMQA_MYSQL_URL" => Some("mysql://specific/x".to_owned()),
            "VENOMQA_MYSQL_POOL_SIZE" => Some("7".to_owned()),
            _ => None,
        };
        let r = c.resolve_with_env(Selection::default(), env).unwrap();
        assert_eq!(
            (r.url.as_deref(), r.pool_size),
            (Some("mysql://specific/x"), Some(7))
        );

        let env = |k: &str| (k == "VENOMQA_DB_BACKEND").then(|| "redis".to_owned());
        let r = c.resolve_with_env(Selection::default(), env).unwrap();
        assert_eq!((r.backend.as_str(), r.url.as_deref()), ("redis", None));
    }

    #[test]
    fn macro_url_sits_between_env_and_file() {
        let c = cfg("backends:\n  postgres:\n    url: postgres://file/x\n");
        let sel = Selection {
            backend: Some("postgres"),
            url: Some("postgres://macro/x"),
            ..Default::default()
        };
        assert_eq!(
            c.resolve_with_env(sel, no_env).unwrap().url.as_deref(),
            Some("postgres://macro/x")
        );
        let env = |k: &str| (k == "VENOMQA_POSTGRES_URL").then(|| "postgres://env/x".to_owned());
        assert_eq!(
            c.resolve_with_env(sel, env).unwrap().url.as_deref(),
            Some("postgres://env/x")
        );
    }

    #[test]
    fn named_entries() {
        let c = cfg("backends:\n  analytics:\n    backend: postgres\n    url: postgres://a/b\n    schemas: [public, reporting]\n    setup: schema/\n");
        let r = c
            .resolve_with_env(
                Selection {
                    entry: Some("analytics"),
                    ..Default::default()
                },
                no_env,
            )
            .unwrap();
        assert_eq!(r.backend, "postgres");
        assert_eq!(r.schemas, ["public", "reporting"]);
        assert_eq!(r.setup.as_deref(), Some(Path::new("/proj/schema/")));
        let env = |k: &str| (k == "VENOMQA_ANALYTICS_URL").then(|| "postgres://env/b".to_owned());
        let r = c
            .resolve_with_env(
                Selection {
                    entry: Some("analytics"),
                    ..Default::default()
                },
                env,
            )
            .unwrap();
        assert_eq!(r.url.as_deref(), Some("postgres://env/b"));
        let e = c
            .resolve_with_env(
                Selection {
                    entry: Some("nope"),
                    ..Default::default()
                },
                no_env,
            )
            .unwrap_err();
        assert!(e.to_string().contains("backends.nope"), "{e}");
        assert!(e.to_string().contains("analytics"), "{e}");
    }

    #[test]
    fn an_entry_and_a_different_backend_conflict() {
        let c = cfg("backends:\n  analytics:\n    backend: postgres\n");
        let both = |backend| Selection {
            entry: Some("analytics"),
            backend: Some(backend),
            url: None,
        };
        assert_eq!(
            c.resolve_with_env(both("postgres"), no_env)
                .unwrap()
                .backend,
            "postgres"
        );
        let e = c.resolve_with_env(both("mysql"), no_env).unwrap_err();
        assert!(e.to_string().contains("backends.analytics.backend"), "{e}");
    }

    #[test]
    fn unknown_keys_name_the_file_and_key() {
        let e = Config::from_yaml(
            "backends:\n  mysql:\n    tabels_to_reset: [a]\n",
            Path::new("/p/venomqa.yaml"),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/p/venomqa.yaml"), "{text}");
        assert!(text.contains("backends.mysql.tabels_to_reset"), "{text}");

        let e = Config::from_yaml("db_backnd: mysql\n", Path::new("/p/venomqa.yaml")).unwrap_err();
        assert!(e.to_string().contains("`db_backnd`"), "{e}");

        let e = Config::from_yaml(
            "backends:\n  mysql:\n    pool_size: many\n",
            Path::new("/p/v.yaml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("backends.mysql.pool_size"), "{e}");

        let e = Config::from_yaml(
            "backends:\n  mysql:\n    pool_size: 0\n",
            Path::new("/p/v.yaml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("backends.mysql.pool_size"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = BackendConfig::new("postgres").with_url("postgres://u:hunter2@h/db");
        let text = format!("{c:?}");
        assert!(
            !text.contains("hunter2") && text.contains("u:***@h"),
            "{text}"
        );
    }

    #[test]
    fn bad_env_pool_size() {
        let env = |k: &str| (k == "VENOMQA_SQLITE_POOL_SIZE").then(|| "0".to_owned());
        let e = Config::default()
            .resolve_with_env(Selection::default(), env)
            .unwrap_err();
        assert!(e.to_string().contains("VENOMQA_SQLITE_POOL_SIZE"), "{e}");
    }
}
