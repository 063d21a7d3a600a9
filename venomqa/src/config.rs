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
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::error::{env_key, Error, Result};
use crate::redact::SecretUrl;

/// File names looked for, in each directory from the test crate's upward.
pub(crate) const CONFIG_FILE_NAMES: &[&str] = &["venomqa.yaml", "venomqa.yml"];

/// The backend used when nothing is configured.
pub(crate) const DEFAULT_BACKEND: &str = "sqlite";

/// The keys every entry has; the others belong to its backend's options.
const COMMON_KEYS: &str = "backend, url, pool_size, setup, workers, ...";

/// One entry of the file's `backends:` map: the common keys, and the backend's own.
#[derive(Clone, Default, Deserialize)]
struct EntryFile {
    backend: Option<String>,
    url: Option<String>,
    pool_size: Option<usize>,
    connect_timeout_ms: Option<u64>,
    io_timeout_ms: Option<u64>,
    lease_timeout_ms: Option<u64>,
    setup: Option<PathBuf>,
    workers: Option<WorkersValue>,
    /// Everything else: the backend's options, checked against its `Options` type when
    /// its pool is built.
    #[serde(flatten)]
    settings: Mapping,
}

/// `workers: auto` or `workers: 4`, as written.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
enum WorkersValue {
    Count(i64),
    Word(String),
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db_backend: Option<String>,
    db_url: Option<String>,
    #[serde(default)]
    backends: BTreeMap<String, EntryFile>,
}

/// The resolved configuration of one entry (file values with environment overrides
/// applied): what a backend is built from.
///
/// The common keys are fields; the backend's own keys are read, typed, with
/// [`options`](Self::options).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BackendConfig {
    /// The entry's name: the backend's name, or a named entry of `backends:`.
    pub entry: String,
    /// The registered backend that builds the managers.
    pub backend: String,
    /// Connection URL; `None` lets the backend use its default.
    pub url: Option<SecretUrl>,
    /// Connections in this entry's pool; `None` lets the backend choose.
    pub pool_size: Option<usize>,
    /// How long a connection attempt may take.
    pub connect_timeout: Option<Duration>,
    /// How long the server may stay silent while it owes an answer (a read or a write
    /// that stalls) before the operation fails and the connection is dropped; `None` lets
    /// the backend choose (the SQL backends: 60 s). `io_timeout_ms: 0` turns it off.
    pub io_timeout: Option<Duration>,
    /// How long a test waits for a free pooled connection (default 300 s).
    pub lease_timeout: Option<Duration>,
    /// A directory of `.sql` files (run in name order) or one `.sql` file, run once per
    /// process before the first lease. Relative paths are resolved against the file's
    /// directory.
    pub setup: Option<PathBuf>,
    /// A capture entry's worker databases (`workers: auto` or a number): each concurrent
    /// test gets a database of its own, made from the entry's setup (see
    /// [`workers`](crate::workers)).
    pub workers: Option<Workers>,
    /// Where the values came from, for error messages: the file's path, or `defaults`.
    pub source: String,
    settings: Mapping,
    /// The worker this configuration is the database of (set by the worker assignment,
    /// never by the file).
    pub(crate) worker: Option<String>,
}

/// How many worker databases a capture entry has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workers {
    /// As many as tests run at once: nextest's slots (`NEXTEST_TEST_GLOBAL_SLOT`), or
    /// `cargo test`'s test threads.
    Auto,
    /// At most this many (slots beyond it share a database, taking turns).
    Count(usize),
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
        self.url = Some(SecretUrl::new(url));
        self
    }

    /// The same configuration with the backend option `key` set to `value` (as if written
    /// in the entry).
    ///
    /// ```
    /// use venomqa::BackendConfig;
    ///
    /// let config = BackendConfig::new("sqlite").with_option("busy_timeout_ms", 500);
    /// #[derive(serde::Deserialize, Default)]
    /// struct Options { busy_timeout_ms: u64 }
    /// assert_eq!(config.options::<Options>()?.busy_timeout_ms, 500);
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn with_option(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.settings.insert(Value::from(key), value.into());
        self
    }

    /// The URL, or `default` when none is configured. It may hold a password: never print it.
    pub fn url_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.url.as_ref().map_or(default, SecretUrl::expose)
    }

    /// The entry's backend options as `T`: the entry's keys other than the common ones
    /// (and those under a legacy `options:` map). A key `T` does not know, or a value of
    /// the wrong type, is an [`Error::Config`] naming the file and the key.
    pub fn options<T: DeserializeOwned>(&self) -> Result<T> {
        let mut merged = Mapping::new();
        let mut legacy = Vec::new();
        for (key, value) in &self.settings {
            if key.as_str() == Some("options") {
                if let Value::Mapping(options) = value {
                    for (k, v) in options {
                        legacy.push(k.as_str().unwrap_or_default().to_owned());
                        if merged.insert(k.clone(), coerce(v)).is_some() {
                            return Err(self.key_error(
                                &format!("options.{}", k.as_str().unwrap_or("?")),
                                "is also set outside `options:`; keep one",
                            ));
                        }
                    }
                    continue;
                }
            }
            if merged.insert(key.clone(), value.clone()).is_some() {
                return Err(self.key_error(
                    key.as_str().unwrap_or("?"),
                    "is also set under `options:`; keep one",
                ));
            }
        }
        serde_path_to_error::deserialize(Value::Mapping(merged)).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            let field = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next());
            let key = match field {
                Some(field) if path == "." => field.to_owned(),
                Some(field) if path == field || path.ends_with(&format!(".{field}")) => path,
                Some(field) => format!("{path}.{field}"),
                None => path,
            };
            let key = match key.split('.').next() {
                Some(first) if legacy.iter().any(|l| l == first) => format!("options.{key}"),
                _ => key,
            };
            let message = match (field, message.split_once(", expected one of ")) {
                // The known keys without serde's backticks: the line stays short as
                // backends gain keys.
                (Some(_), Some((head, known))) => format!(
                    "{head}, expected one of {}, or a common key ({COMMON_KEYS})",
                    known.replace('`', "")
                ),
                (Some(_), None) => format!("{message}, or a common key ({COMMON_KEYS})"),
                (None, _) => message,
            };
            self.key_error(&key, &message)
        })
    }

    fn key_error(&self, key: &str, message: &str) -> Error {
        Error::config(
            &self.source,
            format!("backends.{}.{key}", self.entry),
            message,
        )
    }

    /// The environment variable that overrides this entry's URL.
    pub fn url_env_var(&self) -> String {
        format!("VENOMQA_{}_URL", env_key(&self.entry))
    }
}

/// A value of the legacy `options:` map, where every value was written as a string:
/// `"60000"` is read as the number it spells, `"true"` as a boolean.
fn coerce(value: &Value) -> Value {
    let Some(text) = value.as_str() else {
        return value.clone();
    };
    if let Ok(n) = text.parse::<u64>() {
        Value::from(n)
    } else if let Ok(n) = text.parse::<i64>() {
        Value::from(n)
    } else if let Ok(b) = text.parse::<bool>() {
        Value::from(b)
    } else {
        value.clone()
    }
}

/// What a test asks for: the arguments of `#[venom_test(..)]`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Selection<'a> {
    /// `backend = ".."`.
    pub backend: Option<&'a str>,
    /// `config = ".."`: a named entry of the file's `backends:` map.
    pub entry: Option<&'a str>,
    /// `url = ".."`.
    pub url: Option<&'a str>,
}

/// A parsed `venomqa.yaml` (or the empty configuration when there is none).
#[derive(Clone, Default)]
pub(crate) struct Config {
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
        let source_name = source.display().to_string();
        let file: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            let deserializer = serde_yaml_ng::Deserializer::from_str(text);
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().to_string();
                // serde_yaml_ng appends " at line L column C"; keep it, it helps.
                let field = message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split('`').next());
                let key = match (path.as_str(), field) {
                    (".", Some(f)) => f.to_owned(),
                    (".", None) => "(document)".to_owned(),
                    (p, Some(f)) => format!("{p}.{f}"),
                    (p, None) => p.to_owned(),
                };
                Error::config(&source_name, key, message)
            })?
        };
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
        if let Some(hit) = CACHE.lock().get(start) {
            return Ok(hit.clone());
        }
        let config = Arc::new(Self::discover(start)?);
        CACHE.lock().insert(start.to_owned(), config.clone());
        Ok(config)
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
                            "no such entry (entries: {}); add it, or fix #[venom_test(config = {entry:?})]",
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
                    format!("the test asks for backend {asked:?}, but the entry is for {backend:?}; drop one of the two"),
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

        let workers = workers(&entry_name, file_entry.workers, &source, &env)?;
        Ok(BackendConfig {
            entry: entry_name,
            backend,
            url: url.map(SecretUrl::new),
            pool_size,
            connect_timeout: file_entry.connect_timeout_ms.map(Duration::from_millis),
            io_timeout: file_entry.io_timeout_ms.map(Duration::from_millis),
            lease_timeout: file_entry.lease_timeout_ms.map(Duration::from_millis),
            setup,
            workers,
            source,
            settings: file_entry.settings,
            worker: None,
        })
    }

    fn source(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".to_owned())
    }
}

/// The entry's `workers`, from `VENOMQA_<ENTRY>_WORKERS` or the file.
fn workers(
    entry: &str,
    file: Option<WorkersValue>,
    source: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Workers>> {
    let var = format!("VENOMQA_{}_WORKERS", env_key(entry));
    let (value, source, key) = match env(&var) {
        Some(v) => (
            match v.parse::<i64>() {
                Ok(n) => WorkersValue::Count(n),
                Err(_) => WorkersValue::Word(v),
            },
            "environment".to_owned(),
            var,
        ),
        None => match file {
            Some(v) => (v, source.to_owned(), format!("backends.{entry}.workers")),
            None => return Ok(None),
        },
    };
    match value {
        WorkersValue::Count(n) if n >= 1 => Ok(Some(Workers::Count(
            usize::try_from(n).unwrap_or(usize::MAX),
        ))),
        WorkersValue::Word(w) if w == "auto" => Ok(Some(Workers::Auto)),
        WorkersValue::Count(_) | WorkersValue::Word(_) => Err(Error::config(
            &source,
            key,
            "is neither auto nor a whole number of at least 1",
        )),
    }
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
            (
                r.backend.as_str(),
                r.url.as_ref().map(SecretUrl::expose),
                r.pool_size
            ),
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
                .as_ref()
                .map(SecretUrl::expose),
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
            (r.url.as_ref().map(SecretUrl::expose), r.pool_size),
            (Some("mysql://specific/x"), Some(7))
        );

        let env = |k: &str| (k == "VENOMQA_DB_BACKEND").then(|| "redis".to_owned());
        let r = c.resolve_with_env(Selection::default(), env).unwrap();
        assert_eq!(
            (r.backend.as_str(), r.url.as_ref().map(SecretUrl::expose)),
            ("redis", None)
        );
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
            c.resolve_with_env(sel, no_env)
                .unwrap()
                .url
                .as_ref()
                .map(SecretUrl::expose),
            Some("postgres://macro/x")
        );
        let env = |k: &str| (k == "VENOMQA_POSTGRES_URL").then(|| "postgres://env/x".to_owned());
        assert_eq!(
            c.resolve_with_env(sel, env)
                .unwrap()
                .url
                .as_ref()
                .map(SecretUrl::expose),
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
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct Pg {
            schemas: Vec<String>,
        }
        assert_eq!(r.options::<Pg>().unwrap().schemas, ["public", "reporting"]);
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
        assert_eq!(
            r.url.as_ref().map(SecretUrl::expose),
            Some("postgres://env/b")
        );
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

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Sql {
        tables_to_reset: Vec<String>,
        busy_timeout_ms: u64,
        strict: bool,
    }

    #[test]
    fn backend_keys_are_typed_by_the_backend() {
        let c = cfg("backends:\n  mysql:\n    tabels_to_reset: [a]\n");
        let r = c
            .resolve_with_env(
                Selection {
                    backend: Some("mysql"),
                    ..Default::default()
                },
                no_env,
            )
            .unwrap();
        let e = r.options::<Sql>().unwrap_err().to_string();
        assert!(e.contains("/proj/venomqa.yaml"), "{e}");
        assert!(e.contains("backends.mysql.tabels_to_reset"), "{e}");
        assert!(
            e.contains("tables_to_reset") && e.contains("pool_size"),
            "lists valid keys: {e}"
        );

        let c = cfg("backends:\n  mysql:\n    busy_timeout_ms: soon\n");
        let r = c
            .resolve_with_env(
                Selection {
                    backend: Some("mysql"),
                    ..Default::default()
                },
                no_env,
            )
            .unwrap();
        let e = r.options::<Sql>().unwrap_err().to_string();
        assert!(e.contains("backends.mysql.busy_timeout_ms"), "{e}");

        let c = cfg("backends:\n  mysql:\n    tables_to_reset: [a]\n    options: {busy_timeout_ms: \"500\", strict: \"true\"}\n");
        let r = c
            .resolve_with_env(
                Selection {
                    backend: Some("mysql"),
                    ..Default::default()
                },
                no_env,
            )
            .unwrap();
        let o = r.options::<Sql>().unwrap();
        assert_eq!(
            (o.tables_to_reset, o.busy_timeout_ms, o.strict),
            (vec!["a".to_owned()], 500, true)
        );

        let c = cfg("backends:\n  mysql:\n    options: {nope: \"1\"}\n");
        let r = c
            .resolve_with_env(
                Selection {
                    backend: Some("mysql"),
                    ..Default::default()
                },
                no_env,
            )
            .unwrap();
        let e = r.options::<Sql>().unwrap_err().to_string();
        assert!(e.contains("backends.mysql.options.nope"), "{e}");
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text: a configuration or an error naming the file, never a panic.
        #[test]
        fn any_text_parses_or_errs(text in "\\PC{0,120}") {
            if let Err(e) = Config::from_yaml(&text, Path::new("/p/venomqa.yaml")) {
                let is_config = matches!(e, Error::Config { .. });
                prop_assert!(is_config, "{}", e);
                prop_assert!(e.to_string().contains("/p/venomqa.yaml"), "{}", e);
            }
        }

        /// Any value of the environment variables: resolves, or an error naming the
        /// variable; never a panic.
        #[test]
        fn any_environment_resolves_or_names_the_variable(
            pool in "\\PC{0,12}",
            backend in "\\PC{0,12}",
            url in "\\PC{0,40}",
            entry in "[a-z][a-z0-9_-]{0,10}",
        ) {
            let var = format!("VENOMQA_{}_POOL_SIZE", env_key(&entry));
            let env = |k: &str| {
                if k == var {
                    Some(pool.clone())
                } else if k == "VENOMQA_DB_BACKEND" {
                    Some(backend.clone())
                } else if k.ends_with("_URL") {
                    Some(url.clone())
                } else {
                    None
                }
            };
            let selection = Selection { backend: Some(&entry), ..Default::default() };
            if let Err(e) = Config::default().resolve_with_env(selection, env) {
                prop_assert!(e.to_string().contains(&var), "{}", e);
            }
        }

        /// Yaml-shaped input with random keys and values: resolves or errs cleanly, and
        /// a backend's typed options never panic either.
        #[test]
        fn entries_resolve_or_err(
            key in "[a-z_]{1,12}",
            value in prop_oneof!["[a-z0-9:/@._-]{0,20}".prop_map(|s| format!("{s:?}")), "-?[0-9]{1,6}".prop_map(String::from), Just("[a, b]".to_owned()), Just("{x: 1}".to_owned())],
            entry in "[a-z_]{1,8}",
        ) {
            let text = format!("backends:\n  {entry}:\n    {key}: {value}\n");
            if let Ok(config) = Config::from_yaml(&text, Path::new("/p/venomqa.yaml")) {
                let env = |_: &str| None;
                if let Ok(resolved) = config.resolve_with_env(Selection { backend: Some(&entry), ..Default::default() }, env) {
                    #[derive(Debug, Deserialize, Default)]
                    #[serde(deny_unknown_fields, default)]
                    #[allow(dead_code)]
                    struct Options { tables_to_reset: Vec<String>, busy_timeout_ms: Option<u64>, isolation: Option<String> }
                    if let Err(e) = resolved.options::<Options>() {
                        prop_assert!(e.to_string().contains(&format!("backends.{entry}")), "{}", e);
                    }
                }
            }
        }
    }
}
