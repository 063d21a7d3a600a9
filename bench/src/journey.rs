//! The journey row: a journey of 100 paths against the shop server (its own process, its
//! own pool, a SQLite file), run twice in the same run:
//!
//! 1. venomqa: capture isolation, a rollback to the checkpoint after each path;
//! 2. what users do without it: a template copy of the database made at the checkpoint,
//!    and before each path the server stopped, the template copied back over the file
//!    (a fresh database), and the server started again (it must reopen its pool).
//!
//! Both runs use the same client without keep-alive (the restarts would break pooled
//! connections), the same journey and the same server binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use venomqa::checkpoint::{Name, Stack};
use venomqa::journey::{Client, JourneyResult, JourneyRunner, UreqTransport};
use venomqa::sqlite::SqliteStateManager;
use venomqa::{BackendConfig, Error, Result, StateManager};
use venomqa_examples::{bench_journey, dump, ShopServer};

use crate::harness::Stats;
use crate::report::Report;

const PATHS: usize = 100;

/// Records the journey rows.
pub fn run(report: &mut Report, workspace: &Path) {
    eprintln!("journey: {PATHS} paths against the shop server");
    let shop = match shop_binary(workspace) {
        Ok(p) => p,
        Err(e) => {
            report.skip("sqlite", "journey", "journey, 100 paths", e);
            return;
        }
    };
    let dir = workspace.join("target/venomqa-bench");
    let _ = std::fs::create_dir_all(&dir);
    match capture_run(&shop, &dir) {
        Ok(r) => {
            let capture_total = r.duration;
            let per = r.rollback_time() / r.rollbacks().max(1) as u32;
            report.add(
                "sqlite",
                "journey",
                format!("journey, {PATHS} paths: total (capture)"),
                one(r.duration),
                format!("{} rollbacks in the run", r.rollbacks()),
            );
            report.add(
                "sqlite",
                "journey",
                "journey: time in rollbacks (capture)",
                one(r.rollback_time()),
                format!(
                    "{:.1} ms per rollback, {:.0}% of the run",
                    per.as_secs_f64() * 1e3,
                    100.0 * r.rollback_time().as_secs_f64() / r.duration.as_secs_f64()
                ),
            );
            match template_run(&shop, &dir) {
                Ok(t) => {
                    let per = t.rollback_time() / t.rollbacks().max(1) as u32;
                    report.add(
                        "sqlite",
                        "journey",
                        format!("journey, {PATHS} paths: total (template + restart)"),
                        one(t.duration),
                        format!(
                            "{:.1}x the capture run",
                            t.duration.as_secs_f64() / capture_total.as_secs_f64()
                        ),
                    );
                    report.add(
                        "sqlite",
                        "journey",
                        "journey: time in restores (template + restart)",
                        one(t.rollback_time()),
                        format!(
                            "{:.1} ms per restore: stop, copy the template, start, wait",
                            per.as_secs_f64() * 1e3
                        ),
                    );
                }
                Err(e) => report.skip("sqlite", "journey", "journey (template + restart)", e),
            }
        }
        Err(e) => report.skip("sqlite", "journey", "journey, 100 paths", e),
    }
}

pub(crate) fn one(d: Duration) -> Stats {
    Stats {
        median: d,
        p90: d,
        n: 1,
    }
}

/// The shop binary of this build profile, built first if missing.
pub(crate) fn shop_binary(workspace: &Path) -> std::result::Result<PathBuf, String> {
    let release = !cfg!(debug_assertions);
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
        .unwrap_or_else(|| {
            workspace.join(if release {
                "target/release"
            } else {
                "target/debug"
            })
        });
    let shop = exe_dir.join("shop");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-q", "-p", "venomqa-examples", "--bin", "shop"])
        .current_dir(workspace);
    if release {
        cmd.arg("--release");
    }
    match cmd.status() {
        Ok(s) if s.success() && shop.exists() => Ok(shop),
        Ok(s) => Err(format!(
            "building the shop server failed ({s}); try cargo build -p venomqa-examples --bin shop"
        )),
        Err(e) => Err(format!("could not run cargo to build the shop server: {e}")),
    }
}

pub(crate) fn client(url: &str) -> Client {
    let agent = ureq::Agent::config_builder()
        .max_idle_connections(0)
        .build()
        .into();
    Client::with_transport(url, UreqTransport::from_agent(agent)).timeout(Duration::from_secs(30))
}

pub(crate) fn fresh(dir: &Path, name: &str) -> PathBuf {
    let file = dir.join(name);
    for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    file
}

/// A connected SQLite state manager with capture isolation on `file`.
pub(crate) fn capture_manager(file: &Path) -> std::result::Result<SqliteStateManager, String> {
    let mut m = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(format!("sqlite://{}", file.display()))
            .with_option("isolation", "capture"),
    )
    .map_err(|e| e.to_string())?;
    m.connect().map_err(|e| e.to_string())?;
    Ok(m)
}

fn capture_run(shop: &Path, dir: &Path) -> std::result::Result<JourneyResult, String> {
    let file = fresh(dir, "journey-capture.sqlite");
    let mut m = capture_manager(&file)?;
    let server = ShopServer::start(
        &shop.to_string_lossy(),
        m.url().map_err(|e| e.to_string())?.expose(),
    );
    let baseline = dump(&file);
    let result = JourneyRunner::new(client(server.url()))
        .state_manager(&mut m)
        .run(&bench_journey(PATHS))
        .map_err(|e| e.to_string())?;
    if !result.passed() {
        return Err(format!("the journey failed:\n{result}"));
    }
    if dump(&file) != baseline {
        return Err("the database is not back at its baseline".into());
    }
    Ok(result)
}

fn template_run(shop: &Path, dir: &Path) -> std::result::Result<JourneyResult, String> {
    let file = fresh(dir, "journey-template.sqlite");
    let db_url = format!("sqlite://{}", file.display());
    let server = ShopServer::start(&shop.to_string_lossy(), &db_url);
    let port: u16 = server
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("no port")?;
    let url = server.url().to_owned();
    let mut m = RestartFromTemplate::new(shop, &file, db_url, port, server);
    let result = JourneyRunner::new(client(&url))
        .state_manager(&mut m)
        .run(&bench_journey(PATHS))
        .map_err(|e| e.to_string())?;
    if !result.passed() {
        return Err(format!("the journey failed:\n{result}"));
    }
    Ok(result)
}

/// What users do without capture: a copy of the database at each checkpoint; a rollback
/// stops the server, copies the template back (a fresh database file) and starts the
/// server again on the same port.
pub(crate) struct RestartFromTemplate {
    shop: String,
    file: PathBuf,
    db_url: String,
    port: u16,
    server: Option<ShopServer>,
    stack: Stack<PathBuf>,
}

fn io(op: &str, e: impl Into<venomqa::BoxError>) -> Error {
    Error::backend("template", op, e)
}

impl RestartFromTemplate {
    /// The manager of `server`, running `shop` on `file` (`db_url`) at `port`.
    pub(crate) fn new(
        shop: &Path,
        file: &Path,
        db_url: String,
        port: u16,
        server: ShopServer,
    ) -> Self {
        RestartFromTemplate {
            shop: shop.to_string_lossy().into_owned(),
            file: file.to_owned(),
            db_url,
            port,
            server: Some(server),
            stack: Stack::new("template"),
        }
    }

    fn restore(&mut self, template: &Path) -> Result<()> {
        if let Some(mut s) = self.server.take() {
            s.kill();
        }
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.file.display()));
        }
        std::fs::copy(template, &self.file).map_err(|e| io("copying the template", e))?;
        let started = Instant::now();
        loop {
            // The port can stay busy for a moment after the kill.
            match std::panic::catch_unwind(|| {
                ShopServer::start_on(&self.shop, &self.db_url, self.port)
            }) {
                Ok(s) => {
                    self.server = Some(s);
                    return Ok(());
                }
                Err(_) if started.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => return Err(io("restarting the server", "it did not start in 10 s")),
            }
        }
    }
}

impl StateManager for RestartFromTemplate {
    fn connect(&mut self) -> Result<()> {
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        Ok(())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let file = self.file.clone();
        self.stack.push(name, |at| {
            let template = file.with_extension(format!("template-{}", at.name()));
            let _ = std::fs::remove_file(&template);
            let conn = rusqlite::Connection::open(&file).map_err(|e| io("opening", e))?;
            conn.execute("VACUUM INTO ?1", [template.to_string_lossy()])
                .map_err(|e| io("copying into a template", e))?;
            Ok(template)
        })
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let (_, template) = self.stack.get(name)?;
        let template = template.clone();
        self.restore(&template)?;
        for t in self.stack.rollback(name, |_, _| Ok(()))? {
            let _ = std::fs::remove_file(t);
        }
        Ok(())
    }

    fn release(&mut self, name: &str) -> Result<()> {
        for t in self.stack.release(name, |_, _| Ok(()))? {
            let _ = std::fs::remove_file(t);
        }
        Ok(())
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        self.rollback(name)?;
        self.release(name)
    }

    fn reset(&mut self) -> Result<()> {
        Err(Error::unsupported(
            "template",
            "reset",
            "not needed by the benchmark",
        ))
    }

    fn is_connected(&self) -> bool {
        true
    }

    fn checkpoints(&self) -> &[Name] {
        self.stack.names()
    }

    fn captures(&self) -> bool {
        // A restore replaces the whole file, whoever wrote to it.
        true
    }
}
