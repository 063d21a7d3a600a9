//! A backend a user writes: a key-value store kept in a file, checkpointed by copying the
//! file. It shows the whole recipe:
//!
//! 1. implement [`StateManager`] on top of [`BaseStateManager`] (the base keeps the
//!    checkpoint stack and validates names; you do the I/O);
//! 2. register it by name at start-up with [`venomqa::register_backend!`];
//! 3. use it from `#[venom_test(backend = "filestore")]`.
//!
//! Run the demo with `cargo run -p venomqa-examples --example filestore_backend`, and its
//! tests with `cargo test -p venomqa-examples --example filestore_backend`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use venomqa::{BackendConfig, BaseStateManager, Error, Result, StateManager};

/// A key-value store in a tab-separated file. Checkpoint `x` is a copy of the file,
/// `<file>.x`; rolling back copies it back.
pub struct FileStore {
    base: BaseStateManager,
    path: PathBuf,
}

impl FileStore {
    /// A store at `url` (`filestore:///abs/path.tsv` or `filestore://rel/path.tsv`).
    pub fn new(url: &str) -> Self {
        let path = url.strip_prefix("filestore://").unwrap_or(url);
        FileStore {
            base: BaseStateManager::new("filestore", url),
            path: PathBuf::from(path),
        }
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

    fn read(&self) -> Result<BTreeMap<String, String>> {
        self.base.ensure_connected()?;
        let text = fs::read_to_string(&self.path).map_err(|e| self.io("read", e))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    fn write(&self, all: &BTreeMap<String, String>) -> Result<()> {
        let text: String = all.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        fs::write(&self.path, text).map_err(|e| self.io("write", e))
    }

    fn io(&self, what: &str, e: std::io::Error) -> Error {
        Error::backend("filestore", format!("{what} {}", self.path.display()), e)
    }
}

/// The file holding checkpoint `name` of the store at `path`.
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

fn remove(files: impl IntoIterator<Item = PathBuf>) {
    for file in files {
        let _ = fs::remove_file(file);
    }
}

impl StateManager for FileStore {
    fn connect(&mut self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| Error::connection("filestore", self.base.url(), e))?;
        }
        if !self.path.exists() {
            fs::write(&self.path, "")
                .map_err(|e| Error::connection("filestore", self.base.url(), e))?;
        }
        self.base.set_connected(true);
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        remove(
            self.base
                .checkpoints()
                .iter()
                .map(|c| snapshot(&self.path, c)),
        );
        self.base.set_connected(false);
        Ok(())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let path = &self.path;
        self.base
            .checkpoint(name, |name, _| copy(path, &snapshot(path, name)))
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let path = &self.path;
        self.base.rollback(name, |_, later| {
            copy(&snapshot(path, name), path)?;
            remove(later.iter().map(|c| snapshot(path, c)));
            Ok(())
        })
    }

    fn release(&mut self, name: &str) -> Result<()> {
        let path = &self.path;
        self.base.release(name, |_, released| {
            remove(released.iter().map(|c| snapshot(path, c)));
            Ok(())
        })
    }

    fn reset(&mut self) -> Result<()> {
        self.write(&BTreeMap::new())?;
        remove(
            self.base
                .checkpoints()
                .iter()
                .map(|c| snapshot(&self.path, c)),
        );
        self.base.clear_checkpoints();
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.base.is_connected()
    }

    fn checkpoints(&self) -> &[String] {
        self.base.checkpoints()
    }

    fn health_check(&mut self) -> bool {
        self.is_connected() && self.path.is_file()
    }
}

/// Where the store lives unless the configuration gives a URL: one file per process, so
/// `cargo nextest run` (a process per test) never shares it between two tests.
fn default_url() -> String {
    let dir = std::env::temp_dir().join(format!("venomqa-filestore-{}", std::process::id()));
    format!("filestore://{}", dir.join("store.tsv").display())
}

// Registered before main runs; `#[venom_test(backend = "filestore")]` can now find it.
// One manager per process (the default): the tests that use it take turns.
venomqa::register_backend!("filestore", |config: &BackendConfig| {
    Ok(FileStore::new(
        config.url.clone().unwrap_or_else(default_url).as_str(),
    ))
});

fn main() -> Result<()> {
    // Standalone use, without the test attribute, as in the reference document.
    let mut store = venomqa::Connected::new(FileStore::new(&default_url()))?;
    store.set("greeting", "hello")?;
    store.checkpoint("before_change")?;
    store.set("greeting", "changed")?;
    store.rollback("before_change")?;
    println!("greeting after rollback: {:?}", store.get("greeting")?);
    store.reset()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use venomqa::{venom_test, Session};

    type FileSession = Session<FileStore>;

    #[test]
    fn registered_at_start_up() {
        assert!(venomqa::registry::backends().contains(&"filestore".to_owned()));
    }

    #[venom_test(backend = "filestore")]
    fn a_test_sees_an_empty_store_and_its_writes_are_undone(s: &mut FileSession) -> Result<()> {
        assert_eq!(s.manager().get("user")?, None, "no earlier test's data");
        s.manager().set("user", "ann")?;
        s.checkpoint("rename", |s| -> Result<()> {
            s.manager().set("user", "bob")?;
            assert_eq!(s.manager().get("user")?.as_deref(), Some("bob"));
            Ok(())
        })??;
        assert_eq!(s.manager().get("user")?.as_deref(), Some("ann"));
        Ok(())
    }

    #[venom_test(backend = "filestore")]
    fn another_test_also_starts_empty(s: &mut FileSession) -> Result<()> {
        assert_eq!(s.manager().get("user")?, None);
        s.manager().set("user", "carol")?;
        Ok(())
    }

    #[test]
    fn nothing_is_left_in_the_file_after_a_test() {
        a_test_sees_an_empty_store_and_its_writes_are_undone().unwrap();
        let mut s = FileSession::start("filestore").unwrap();
        assert!(s.manager().read().unwrap().is_empty());
        assert_eq!(s.checkpoints(), [venomqa::ROOT_CHECKPOINT]);
        s.finish().unwrap();
    }

    #[test]
    fn hostile_checkpoint_names_never_reach_the_file_system() {
        let mut s = FileSession::start("filestore").unwrap();
        for name in ["../../etc/passwd", "a/b", "..", "x y"] {
            assert!(s.create_checkpoint(name).is_err(), "{name}");
        }
        s.finish().unwrap();
    }
}
