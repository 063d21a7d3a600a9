//! What the resilience tests share: a private database server started (and restarted) by
//! the test on a port of its own, and a TCP proxy that can stall.
//!
//! The private servers run from a temporary directory with a small footprint (fsync off,
//! small buffers): starting one takes well under a second, so a restart mid-suite costs
//! seconds, not minutes. They are stopped and their directory removed when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// `host:port` of a URL (`mysql://u:p@host:port/db` -> `host:port`).
pub fn server_of(url: &str) -> &str {
    let rest = &url[url.find("://").map_or(0, |i| i + 3)..];
    let rest = &rest[rest.rfind('@').map_or(0, |i| i + 1)..];
    &rest[..rest.find(['/', '?']).unwrap_or(rest.len())]
}

/// The port of a URL, or `default`.
pub fn port_of(url: &str, default: u16) -> u16 {
    server_of(url)
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(default)
}

/// `s` with every byte that is not an unreserved URL character percent-encoded.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binding a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// A directory under the system's temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "venomqa-{what}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of program `name`: on `PATH`, else in one of `dirs` (globbed by version).
fn program(name: &str, dirs: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    for pattern in dirs {
        // "/usr/lib/postgresql/*/bin": the highest version.
        if let Some((base, rest)) = pattern.split_once("/*/") {
            let mut versions: Vec<PathBuf> = std::fs::read_dir(base)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            versions.sort_by_key(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(0)
            });
            if let Some(candidate) = versions
                .iter()
                .rev()
                .map(|v| v.join(rest).join(name))
                .find(|c| c.is_file())
            {
                return candidate;
            }
        } else if Path::new(pattern).join(name).is_file() {
            return Path::new(pattern).join(name);
        }
    }
    panic!(
        "{name} is not installed (looked on PATH and in {dirs:?}); run `bash scripts/services.sh` as root, which installs it"
    );
}

/// Waits until `ready` holds, for at most `within`.
fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < within,
            "{what} did not come up within {within:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The kind of private server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MariaDb,
    Postgres,
    /// `redis-server`, keeping nothing on disk: a restart brings it back empty.
    Redis,
}

/// A database server of the test's own, on its own port, in a temporary directory.
pub struct PrivateServer {
    kind: Kind,
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
    /// The uid the server runs as (PostgreSQL refuses to run as root).
    uid: Option<u32>,
    /// The superuser's password over TCP (PostgreSQL only), if password auth is on.
    pub password: Option<String>,
}

/// The uid of the `postgres` system user.
fn postgres_uid() -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|uid| uid.parse().ok())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl PrivateServer {
    /// Initialises a data directory and starts the server on a free port, with an empty
    /// database `test` and a password-less superuser (`root` / `postgres`).
    pub fn start(kind: Kind) -> Self {
        Self::start_with(kind, None)
    }

    /// A PostgreSQL server whose TCP logins need `password` (SCRAM), as production ones do.
    pub fn start_postgres_with_password(password: &str) -> Self {
        Self::start_with(Kind::Postgres, Some(password))
    }

    fn start_with(kind: Kind, password: Option<&str>) -> Self {
        let dir = TempDir::new(match kind {
            Kind::MariaDb => "mariadb",
            Kind::Postgres => "postgres",
            Kind::Redis => "redis",
        });
        let uid = match kind {
            Kind::Postgres if is_root() => Some(postgres_uid().expect(
                "PostgreSQL refuses to run as root and there is no `postgres` user; run scripts/services.sh",
            )),
            _ => None,
        };
        let data = dir.0.join("data");
        match kind {
            Kind::MariaDb => {
                let install = || {
                    let _ = std::fs::remove_dir_all(&data);
                    Command::new(program("mariadb-install-db", &["/usr/bin", "/usr/sbin"]))
                        .arg("--no-defaults")
                        .arg(format!("--datadir={}", data.display()))
                        .arg("--auth-root-authentication-method=normal")
                        .arg("--skip-test-db")
                        .args(if is_root() { &["--user=root"][..] } else { &[] })
                        .stdin(Stdio::null())
                        .output()
                };
                // Once more if the bootstrap fails (seen once under a full nextest run on
                // a machine whose disk other builds were filling); the first failure is
                // printed, the second fails the test with the server's own output.
                match install() {
                    Ok(out) if out.status.success() => {}
                    first => {
                        eprintln!("mariadb-install-db failed, trying once more: {first:?}");
                        let out = install().expect("running mariadb-install-db");
                        assert!(
                            out.status.success(),
                            "mariadb-install-db failed twice ({}): {}{}",
                            out.status,
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                }
            }
            Kind::Postgres => {
                if let Some(uid) = uid {
                    std::os::unix::fs::chown(&dir.0, Some(uid), None).expect("chown");
                }
                let mut initdb = Command::new(program(
                    "initdb",
                    &["/usr/lib/postgresql/*/bin", "/usr/local/bin"],
                ));
                initdb
                    .arg("-D")
                    .arg(&data)
                    .args(["-U", "postgres", "--auth-local=trust", "--no-sync"])
                    .args(["-E", "UTF8"])
                    .arg(if password.is_some() {
                        "--auth-host=scram-sha-256"
                    } else {
                        "--auth-host=trust"
                    });
                if let Some(uid) = uid {
                    initdb.uid(uid);
                }
                run(&mut initdb, "initdb");
            }
            Kind::Redis => {} // nothing to initialise: it keeps nothing on disk
        }
        let mut server = PrivateServer {
            kind,
            port: free_port(),
            child: None,
            dir,
            uid,
            password: password.map(str::to_owned),
        };
        server.boot();
        server.create_test_database();
        server
    }

    fn create_test_database(&self) {
        match self.kind {
            Kind::MariaDb => run(
                Command::new("mariadb")
                    .args(["--protocol=TCP", "-h", "127.0.0.1", "-uroot"])
                    .arg(format!("-P{}", self.port))
                    .args(["-e", "CREATE DATABASE IF NOT EXISTS test"]),
                "creating database test",
            ),
            Kind::Postgres => {
                // Over the Unix socket, which trusts the local superuser.
                let mut psql = Command::new("psql");
                psql.args(["-w", "-U", "postgres", "-d", "postgres", "-h"])
                    .arg(&self.dir.0)
                    .arg(format!("-p{}", self.port))
                    .args(["-qc", "CREATE DATABASE test"]);
                if let Some(password) = &self.password {
                    psql.arg("-c").arg(format!(
                        "ALTER ROLE postgres PASSWORD '{}'",
                        password.replace('\'', "''")
                    ));
                }
                run(&mut psql, "creating database test");
            }
            Kind::Redis => {}
        }
    }

    /// Its data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    /// The URL of database `test` on it.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::MariaDb => format!("mysql://root@127.0.0.1:{}/test", self.port),
            Kind::Postgres => match &self.password {
                Some(p) => format!(
                    "postgres://postgres:{}@127.0.0.1:{}/test",
                    percent_encode(p),
                    self.port
                ),
                None => format!("postgres://postgres@127.0.0.1:{}/test", self.port),
            },
            Kind::Redis => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    fn boot(&mut self) {
        let data = self.dir.0.join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join("server.log"))
            .expect("server log");
        let mut command = match self.kind {
            Kind::MariaDb => {
                let mut c = Command::new(program("mariadbd", &["/usr/sbin"]));
                c.arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--port={}", self.port))
                    .arg("--bind-address=127.0.0.1")
                    .arg(format!("--socket={}", self.dir.0.join("sock").display()))
                    .arg(format!("--pid-file={}", self.dir.0.join("pid").display()))
                    .args([
                        "--skip-log-bin",
                        "--innodb-buffer-pool-size=16M",
                        "--innodb-log-file-size=8M",
                        "--innodb-flush-log-at-trx-commit=0",
                        "--skip-name-resolve",
                    ]);
                if is_root() {
                    c.arg("--user=root");
                }
                c
            }
            Kind::Postgres => {
                let mut c = Command::new(program(
                    "postgres",
                    &["/usr/lib/postgresql/*/bin", "/usr/local/bin"],
                ));
                c.arg("-D")
                    .arg(&data)
                    .arg("-p")
                    .arg(self.port.to_string())
                    .arg("-k")
                    .arg(&self.dir.0)
                    .args([
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "fsync=off",
                        "-c",
                        "shared_buffers=16MB",
                        "-c",
                        "logging_collector=off",
                    ]);
                if let Some(uid) = self.uid {
                    c.uid(uid);
                }
                c
            }
            Kind::Redis => {
                let mut c = Command::new(program("redis-server", &["/usr/bin", "/usr/local/bin"]));
                c.arg("--port")
                    .arg(self.port.to_string())
                    .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(&self.dir.0);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", self.kind));
        self.child = Some(child);
        let port = self.port;
        let log_path = self.dir.0.join("server.log");
        wait_until(
            &format!(
                "{:?} on port {port} (log: {})",
                self.kind,
                log_path.display()
            ),
            Duration::from_secs(30),
            || port_open(port) && self.answers(),
        );
    }

    /// Whether it accepts a login now.
    fn answers(&self) -> bool {
        let status = match self.kind {
            Kind::MariaDb => Command::new("mariadb")
                .args([
                    "--protocol=TCP",
                    "-h",
                    "127.0.0.1",
                    "-uroot",
                    "-e",
                    "SELECT 1",
                ])
                .arg(format!("-P{}", self.port))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status(),
            Kind::Postgres => Command::new("pg_isready")
                .args(["-q", "-h", "127.0.0.1"])
                .arg(format!("-p{}", self.port))
                .status(),
            Kind::Redis => return true, // it answers once it listens
        };
        status.is_ok_and(|s| s.success())
    }

    /// Stops the server (a clean, fast shutdown) and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM: MariaDB's normal shutdown; SIGINT: PostgreSQL's fast shutdown (it
        // rolls back open transactions and disconnects everyone).
        let signal = match self.kind {
            Kind::MariaDb | Kind::Redis => "-TERM",
            Kind::Postgres => "-INT",
        };
        let _ = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        loop {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it again, on the same port and data.
    pub fn start_again(&mut self) {
        self.boot();
    }

    /// Stops it, waits `down`, and starts it again: a restart as an operator (or a
    /// crashing container) does it.
    pub fn restart(&mut self, down: Duration) {
        self.stop();
        thread::sleep(down);
        self.start_again();
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy in front of a server that can be told to stall: it then stops passing
/// bytes either way (holding what it read), like a server that accepted the connection
/// and stopped answering.
pub struct StallProxy {
    pub port: u16,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    /// Round trips: bytes from the client after bytes from the server (or first).
    round_trips: Arc<AtomicUsize>,
    /// Who sent last: 0 nobody, 1 the client, 2 the server.
    last: Arc<AtomicUsize>,
}

impl StallProxy {
    pub fn new(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().unwrap().port();
        let proxy = StallProxy {
            port,
            stalled: Arc::default(),
            stop: Arc::default(),
            connections: Arc::default(),
            streams: Arc::default(),
            round_trips: Arc::default(),
            last: Arc::default(),
        };
        let (stalled, stop, connections, streams) = (
            proxy.stalled.clone(),
            proxy.stop.clone(),
            proxy.connections.clone(),
            proxy.streams.clone(),
        );
        let (round_trips, last) = (proxy.round_trips.clone(), proxy.last.clone());
        listener.set_nonblocking(true).unwrap();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                connections.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut s = streams.lock().unwrap();
                    s.push(client.try_clone().unwrap());
                    s.push(server.try_clone().unwrap());
                }
                for (from, to, side) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap(), 1),
                    (server, client, 2),
                ] {
                    let (stalled, stop) = (stalled.clone(), stop.clone());
                    let (round_trips, last) = (round_trips.clone(), last.clone());
                    thread::spawn(move || {
                        pump(from, to, &stalled, &stop, |_| {
                            if last.swap(side, Ordering::SeqCst) != side && side == 1 {
                                round_trips.fetch_add(1, Ordering::SeqCst);
                            }
                        })
                    });
                }
            }
        });
        proxy
    }

    /// The URL `url` with its port replaced by the proxy's.
    pub fn url_through(&self, url: &str, upstream_port: u16) -> String {
        url.replace(&format!(":{upstream_port}/"), &format!(":{}/", self.port))
    }

    /// Stops (true) or resumes (false) passing bytes.
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }

    /// Round trips so far: the times the client spoke after the server (or first).
    /// Exact while one connection at a time is in use.
    pub fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    stalled: &AtomicBool,
    stop: &AtomicBool,
    on_data: impl Fn(usize),
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        on_data(n);
        while stalled.load(Ordering::SeqCst) && !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(5));
        }
        if stop.load(Ordering::Relaxed) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// What one test of [`through_a_restart`] did.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    /// Whether it began after the server was back.
    pub after_restart: bool,
    /// Its error or panic message, if it failed.
    pub failure: Option<String>,
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// The scenario: tests run on two threads (`test(name)` runs one, as a session
/// would) while `restart` stops the server and starts it again, 400 ms in. Each thread
/// runs tests until 8 have begun after the restart. Then it checks that only a test in
/// flight failed (at most one per thread), that no failure calls its test "passed" and
/// each says `lost` (when given), and that every test that began after the restart passed.
pub fn through_a_restart(
    test: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static,
    restart: impl FnOnce(),
    lost: Option<&str>,
) -> Vec<Outcome> {
    let test = Arc::new(test);
    let restarted = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let (test, restarted) = (test.clone(), restarted.clone());
            thread::spawn(move || {
                let mut outcomes = Vec::new();
                let mut after = 0;
                for i in 1.. {
                    if after == 8 {
                        break;
                    }
                    assert!(i < 2000, "the restart never happened");
                    let after_restart = restarted.load(Ordering::SeqCst);
                    let name = format!("worker{worker}_test{i}");
                    let failure = match catch_unwind(AssertUnwindSafe(|| test(&name))) {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(panic) => Some(panic_text(panic)),
                    };
                    after += usize::from(after_restart);
                    outcomes.push(Outcome {
                        name,
                        after_restart,
                        failure,
                    });
                }
                outcomes
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    let began = Instant::now();
    restart();
    restarted.store(true, Ordering::SeqCst);
    println!("server down and up again in {:?}", began.elapsed());

    let outcomes: Vec<Outcome> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a worker thread panicked"))
        .collect();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    for o in &failed {
        println!("{}: {}", o.name, o.failure.as_deref().unwrap_or_default());
    }
    println!("{} tests, {} failed", outcomes.len(), failed.len());
    assert!(
        failed.len() <= 2,
        "more than the tests in flight failed: {failed:#?}"
    );
    for o in &failed {
        let text = o.failure.as_deref().unwrap_or_default();
        assert!(!text.contains("passed"), "{}: {text}", o.name);
        if let Some(lost) = lost {
            assert!(text.contains(lost), "{}: {text}", o.name);
        }
    }
    assert!(
        outcomes
            .iter()
            .filter(|o| o.after_restart)
            .all(|o| o.failure.is_none()),
        "a test that began after the restart failed: {outcomes:#?}"
    );
    outcomes
}

/// A server that stays down: `open` (a session on `server` whose connect timeout is about
/// 1.5 s, running `SELECT 1`) keeps trying for the timeout, then fails naming the host,
/// the port, the cause and how long it tried, in one short line. When the server is
/// back, `open` succeeds.
pub fn stays_down_then_back(server: &mut PrivateServer, open: impl Fn() -> venomqa::Result<()>) {
    server.stop();
    let started = Instant::now();
    let e = open().expect_err("a session opened while the server was down");
    let waited = started.elapsed();
    let text = e.to_string();
    println!("{text} (after {waited:?})");
    assert!(
        matches!(e, venomqa::Error::Connect { attempts, .. } if attempts > 1),
        "{text}"
    );
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port)),
        "{text}"
    );
    assert!(text.contains("refused"), "names the cause: {text}");
    assert!(text.contains("attempts in"), "{text}");
    assert!(
        waited >= Duration::from_millis(1000),
        "it gave up before the timeout: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(30),
        "the timeout was ignored: {waited:?}"
    );
    assert!(text.len() <= 300, "{} chars: {text}", text.len());

    // Back up: the next session connects.
    server.start_again();
    open().expect("a session once the server was back");
}
