//! A backend a user writes: a key-value store kept in a file, checkpointed by copying the
//! file. It shows both routes:
//!
//! 1. **A typed [`Backend`]** ([`FileStore`]): supply hooks over your own connection type;
//!    venomqa keeps the checkpoint stack (names, duplicates, the rollback and release
//!    rules, unchanged on failure), the pool and the sessions. Register it with
//!    `venomqa::register_backend!(FileStore)`.
//! 2. **A hand-written [`StateManager`]** ([`HandFileStore`]), as the reference document
//!    does: the seven operations yourself, with a [`Stack`] keeping the rules. Register it
//!    with `venomqa::register_backend!("name", factory)`.
//!
//! Both are used from `#[venom_test(backend = "..")]` and pass venomqa's conformance suite.
//! Run the demo with `cargo run -p venomqa-examples --example filestore_backend`, and its
//! tests with `cargo test -p venomqa-examples --example filestore_backend`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use venomqa::checkpoint::{Name, Point, Stack};
use venomqa::{Backend, BackendConfig, Error, Manager, Result, StateManager};

/// An open store: the file the data lives in.
#[derive(Debug)]
pub struct StoreFile {
    path: PathBuf,
}

impl StoreFile {
    /// Opens (creating it if needed) the store at `path`.
    fn open(backend: &str, path: &Path) -> Result<Self> {
        let url = format!("filestore://{}", path.display());
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::connect(backend, &url, e))?;
        }
        if !path.exists() {
            fs::write(path, "").map_err(|e| Error::connect(backend, &url, e))?;
        }
        Ok(StoreFile {
            path: path.to_owned(),
        })
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.read()?.remove(key))
    }

    /// Sets `key` to `value` (keys and values must not contain tabs or newlines).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut all = self.read()?;
        all.insert(key.to_owned(), value.to_owned());
        self.write(&all)
    }

    /// Every key and value.
    pub fn read(&self) -> Result<BTreeMap<String, String>> {
        let text = fs::read_to_string(&self.path).map_err(|e| io("read", &self.path, e))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    fn write(&self, all: &BTreeMap<String, String>) -> Result<()> {
        let text: String = all.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        fs::write(&self.path, text).map_err(|e| io("write", &self.path, e))
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::backend("filestore", format!("{what} {}", path.display()), e)
}

/// The file holding checkpoint `name` of the store at `path`. Checkpoint names are
/// validated before any hook runs (ASCII letters, digits, `_`), so they are safe in a
/// file name.
fn snapshot(path: &Path, name: &str) -> PathBuf {
    let mut file = path.as_os_str().to_owned();
    file.push(format!(".{name}"));
    PathBuf::from(file)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).map(drop).map_err(|e| {
        Error::backend(
            "filestore",
            format!("copy {} to {}", from.display(), to.display()),
            e,
        )
    })
}

/// Where the store lives unless the configuration gives a URL: one file per process and
/// backend, so `cargo nextest run` (a process per test) never shares it between two tests.
fn default_path(backend: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("venomqa-{backend}-{}", std::process::id()))
        .join("store.tsv")
}

fn path_of(backend: &str, config: &BackendConfig) -> PathBuf {
    match &config.url {
        Some(url) => PathBuf::from(
            url.expose()
                .strip_prefix("filestore://")
                .unwrap_or(url.expose()),
        ),
        None => default_path(backend),
    }
}

// ---------------------------------------------------------------------------------------
// Route 1: a typed backend. Hooks over `StoreFile`; the mark of a checkpoint is the path
// of its copy.

/// The typed file store backend, registered as `"filestore"`.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
}

/// The keys of a `filestore` entry in `venomqa.yaml`, besides the common ones (`url`,
/// `pool_size`, ...): this backend has none, and a misspelt key is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStoreOptions {}

impl Backend for FileStore {
    const NAME: &'static str = "filestore";
    type Options = FileStoreOptions;
    type Conn = StoreFile;
    type Mark = PathBuf;

    fn new(config: &BackendConfig, _: FileStoreOptions) -> Result<Self> {
        Ok(FileStore {
            path: path_of(Self::NAME, config),
        })
    }

    fn connect(&self) -> Result<StoreFile> {
        StoreFile::open(Self::NAME, &self.path)
    }

    fn recycle(&self, store: &mut StoreFile) -> Result<()> {
        store.read().map(drop)
    }

    fn checkpoint(&self, store: &mut StoreFile, at: Point<'_>) -> Result<PathBuf> {
        let copy_path = snapshot(&store.path, at.name());
        copy(&store.path, &copy_path)?;
        Ok(copy_path)
    }

    fn rollback(&self, store: &mut StoreFile, _: Point<'_>, saved: &PathBuf) -> Result<()> {
        copy(saved, &store.path)
    }

    fn release(&self, _: &mut StoreFile, _: Point<'_>, _: &PathBuf) -> Result<()> {
        Ok(())
    }

    /// The copy of a checkpoint that is gone is deleted.
    fn forget(&self, _: &mut StoreFile, saved: PathBuf) -> Result<()> {
        fs::remove_file(&saved).map_err(|e| io("remove", &saved, e))
    }

    fn reset(&self, store: &mut StoreFile) -> Result<()> {
        store.write(&BTreeMap::new())
    }
}

// Registered at link time and applied when the registry is first used; `#[venom_test(backend = "filestore")]` can now find it.
// One connection per process (the default pool size): the tests that use it take turns.
venomqa::register_backend!(FileStore);

// ---------------------------------------------------------------------------------------
// Route 2: the reference document's way, by hand. A `Stack` keeps the rules.

/// The same store, its [`StateManager`] written by hand; registered as
/// `"filestore_by_hand"`.
pub struct HandFileStore {
    path: PathBuf,
    store: Option<StoreFile>,
    stack: Stack<PathBuf>,
}

impl HandFileStore {
    /// A store at `path`, not connected yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        HandFileStore {
            path: path.into(),
            store: None,
            stack: Stack::new("filestore_by_hand"),
        }
    }

    /// The open store, or [`Error::NotConnected`].
    pub fn store(&mut self) -> Result<&mut StoreFile> {
        self.store.as_mut().ok_or_else(|| Error::NotConnected {
            backend: "filestore_by_hand".into(),
        })
    }

    fn remove(copies: Vec<PathBuf>) {
        for file in copies {
            let _ = fs::remove_file(file);
        }
    }
}

/// Tests take it as a typed session, `Session<HandFileStore>`.
impl venomqa::HandWritten for HandFileStore {}

impl StateManager for HandFileStore {
    fn connect(&mut self) -> Result<()> {
        self.store = Some(StoreFile::open("filestore_by_hand", &self.path)?);
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        Self::remove(self.stack.clear());
        self.store = None;
        Ok(())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let path = self.store()?.path.clone();
        self.stack.push(name, |at| {
            let copy_path = snapshot(&path, at.name());
            copy(&path, &copy_path)?;
            Ok(copy_path)
        })
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let path = self.store()?.path.clone();
        let later = self.stack.rollback(name, |_, saved| copy(saved, &path))?;
        Self::remove(later);
        Ok(())
    }

    fn release(&mut self, name: &str) -> Result<()> {
        self.store()?;
        let released = self.stack.release(name, |_, _| Ok(()))?;
        Self::remove(released);
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        self.store()?.write(&BTreeMap::new())?;
        Self::remove(self.stack.clear());
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.store.is_some()
    }

    fn checkpoints(&self) -> &[Name] {
        self.stack.names()
    }

    fn health_check(&mut self) -> bool {
        self.store().is_ok_and(|s| s.read().is_ok())
    }
}

venomqa::register_backend!("filestore_by_hand", |config: &BackendConfig| {
    Ok(HandFileStore::new(path_of("filestore_by_hand", config)))
});

fn main() -> Result<()> {
    // Standalone use, without the test attribute, as in the reference document.
    let mut typed = Manager::open(FileStore {
        path: default_path("filestore"),
    })?;
    typed.connection()?.set("greeting", "hello")?;
    typed.checkpoint("before_change")?;
    typed.connection()?.set("greeting", "changed")?;
    typed.rollback("before_change")?;
    println!(
        "typed: greeting after rollback: {:?}",
        typed.connection()?.get("greeting")?
    );
    typed.reset()?;

    let mut by_hand = HandFileStore::new(default_path("filestore_by_hand"));
    by_hand.connect()?;
    by_hand.store()?.set("greeting", "hello")?;
    by_hand.checkpoint("before_change")?;
    by_hand.store()?.set("greeting", "changed")?;
    by_hand.rollback("before_change")?;
    println!(
        "by hand: greeting after rollback: {:?}",
        by_hand.store()?.get("greeting")?
    );
    by_hand.reset()?;
    by_hand.disconnect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use venomqa::conformance::{self, Probe};
    use venomqa::{venom_test, Session};

    /// A session on the typed backend: `s.connection()` is the test's `StoreFile`.
    type FileSession = Session<Manager<FileStore>>;
    /// A session on the hand-written one.
    type HandSession = Session<HandFileStore>;

    #[test]
    fn registered_at_start_up() {
        let names = venomqa::registry::backends();
        assert!(names.contains(&"filestore".to_owned()), "{names:?}");
        assert!(names.contains(&"filestore_by_hand".to_owned()), "{names:?}");
    }

    #[venom_test(backend = "filestore")]
    fn a_test_sees_an_empty_store_and_its_writes_are_undone(s: &mut FileSession) -> Result<()> {
        assert_eq!(s.connection().get("user")?, None, "no earlier test's data");
        s.connection().set("user", "ann")?;
        s.checkpoint("rename", |s| -> Result<()> {
            s.connection().set("user", "bob")?;
            assert_eq!(s.connection().get("user")?.as_deref(), Some("bob"));
            Ok(())
        })??;
        assert_eq!(s.connection().get("user")?.as_deref(), Some("ann"));
        Ok(())
    }

    #[venom_test(backend = "filestore_by_hand")]
    fn the_hand_written_store_works_the_same(s: &mut HandSession) -> Result<()> {
        assert_eq!(s.manager().store()?.get("user")?, None);
        s.manager().store()?.set("user", "carol")?;
        s.checkpoint("rename", |s| s.manager().store()?.set("user", "dan"))??;
        assert_eq!(s.manager().store()?.get("user")?.as_deref(), Some("carol"));
        Ok(())
    }

    #[test]
    fn nothing_is_left_in_the_file_after_a_test() {
        a_test_sees_an_empty_store_and_its_writes_are_undone().unwrap();
        let mut s = FileSession::builder().open().unwrap();
        assert!(s.connection().read().unwrap().is_empty());
        assert_eq!(s.checkpoints(), [venomqa::ROOT_CHECKPOINT]);
        s.finish().unwrap();
    }

    #[test]
    fn hostile_checkpoint_names_never_reach_the_file_system() {
        let mut s = FileSession::builder().open().unwrap();
        for name in ["../../etc/passwd", "a/b", "..", "x y"] {
            assert!(s.create_checkpoint(name).is_err(), "{name}");
        }
        s.finish().unwrap();
    }

    /// The suite sees the store's data through keys `probe:<n>`.
    struct Keys;

    impl Keys {
        fn store(m: &mut dyn StateManager) -> Result<&mut StoreFile> {
            if m.is::<HandFileStore>() {
                return m.downcast_mut::<HandFileStore>().unwrap().store();
            }
            m.connection::<FileStore>()
        }
    }

    impl Probe for Keys {
        fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
            Self::store(m)?.set(&format!("probe:{value}"), "")
        }
        fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
            Ok(Self::store(m)?
                .read()?
                .keys()
                .filter_map(|k| k.strip_prefix("probe:")?.parse().ok())
                .collect())
        }
    }

    #[test]
    fn both_routes_pass_the_conformance_suite() {
        conformance::run("filestore", Keys);
        conformance::run("filestore_by_hand", Keys);
        let dir = tempdir("faults");
        conformance::faults(FileStore {
            path: dir.join("store.tsv"),
        });
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(
            left.len(),
            1,
            "every checkpoint's copy was deleted: {left:?}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("venomqa-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
