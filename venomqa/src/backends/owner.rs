//! Who holds a lease: one identity per process, shared by the Redis and MongoDB backends.
//!
//! Every lease a process takes (a Redis lease key, a MongoDB lease record or shared-database
//! lock) names this process: a random token (records with it are this process's own), the
//! host, the pid, the process's start time, and a *machine key* that says which other
//! processes see the same pids. From a record of another process, [`liveness`] tells
//! whether its owner is alive, dead, or cannot be judged here (then only the lease's expiry,
//! in server time, decides).
//!
//! A recorded owner is judged dead only when it ran on this machine (same machine key) and
//! the operating system says its pid is gone, or runs with another start time (the pid was
//! reused). Liveness comes from [`sysinfo`] (Linux `/proc`, macOS `proc_pidinfo`, Windows);
//! where it cannot tell, the answer is [`Liveness::Unknown`], never "dead".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

/// This process, as lease records name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// Random per process (16 hex digits): records holding it are this process's.
    pub token: String,
    /// The host name, for messages.
    pub host: String,
    pub pid: u32,
    /// When the process started, in seconds since the Unix epoch, if the system says.
    pub started_at: Option<u64>,
    /// Which processes see the same pids as this one (see [`machine_key`]); `None` turns
    /// pid checks off (only expiry judges this process's records).
    pub machine: Option<String>,
}

static ME: LazyLock<Owner> = LazyLock::new(|| {
    let pid = std::process::id();
    let started_at = match process(pid) {
        Process::Running { started_at } => started_at,
        _ => None,
    };
    let host = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_owned();
    let host = if host.is_empty() {
        "unknown".to_owned()
    } else {
        host
    };
    Owner {
        token: format!("{:016x}", random_u64()),
        // Without our own start time, a pid check cannot tell a reused pid: leave them off.
        machine: started_at.and_then(|_| machine_key(&host)),
        host,
        pid,
        started_at,
    }
});

/// This process's identity.
pub(crate) fn me() -> &'static Owner {
    &ME
}

impl Owner {
    /// A token for one lease of this process, unique among every lease of every process of
    /// every host, and readable: `<host>:<pid>:<process token>:<counter>`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn lease_token(&self) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        format!(
            "{}:{}:{}:{}",
            self.host,
            self.pid,
            self.token,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// 64 random bits from the operating system (a per-process hash of the time if it has
/// none to give).
pub(crate) fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        use std::hash::{BuildHasher, Hasher};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        h.finish()
    })
}

/// Which processes see the same pids as this one: two processes with the same key can
/// check each other's pids.
///
/// Linux: boot id, pid namespace and effective uid (`/proc` mounted with `hidepid=` hides
/// other users' processes, never a user's own), and only when `/proc` is this process's own
/// (in a pid namespace without its own `/proc` mount, `/proc/self` names another pid).
/// Elsewhere: host, boot time and uid.
fn machine_key(host: &str) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let _ = host;
        let me = std::fs::read_link("/proc/self").ok()?;
        if me.to_str()? != std::process::id().to_string() {
            return None;
        }
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .split_whitespace()
            .nth(1)?
            .to_owned();
        Some(format!("{}/{}/uid{uid}", boot.trim(), ns.display()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
        if !sysinfo::IS_SUPPORTED_SYSTEM {
            return None;
        }
        let pid = Pid::from_u32(std::process::id());
        let mut system = System::new();
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_user(UpdateKind::Always),
        );
        let uid = format!("{:?}", system.process(pid)?.effective_user_id()?);
        Some(format!("{host}/boot{}/uid{uid}", System::boot_time()))
    }
}

/// What the operating system says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Process {
    /// It runs (not a zombie), started at this time (seconds since the Unix epoch) if the
    /// system says.
    Running { started_at: Option<u64> },
    /// No such process, or a zombie: it has exited.
    Gone,
    /// The system cannot tell (unsupported platform).
    Unknown,
}

/// What the operating system says about process `pid` now.
pub(crate) fn process(pid: u32) -> Process {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};
    if !sysinfo::IS_SUPPORTED_SYSTEM {
        return Process::Unknown;
    }
    let pid = Pid::from_u32(pid);
    let mut system = System::new();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing(),
    );
    match system.process(pid) {
        None => Process::Gone,
        Some(p) if matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead) => {
            Process::Gone
        }
        Some(p) => Process::Running {
            started_at: Some(p.start_time()).filter(|&t| t > 0),
        },
    }
}

/// The owner a lease record names.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
pub(crate) struct Recorded<'a> {
    /// The process token ([`Owner::token`]).
    pub token: Option<&'a str>,
    pub pid: Option<u32>,
    /// Seconds since the Unix epoch.
    pub started_at: Option<u64>,
    pub machine: Option<&'a str>,
}

/// Whether the owner of a lease record still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
pub(crate) enum Liveness {
    /// It is this process, or a process on this machine that runs.
    Alive,
    /// A process on this machine that has exited; the reason, for messages.
    Dead(String),
    /// Elsewhere, or the system cannot tell: only the lease's expiry can judge it.
    Unknown,
}

/// Whether `record`'s owner is alive, asking the operating system ([`process`]).
#[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
pub(crate) fn liveness(record: &Recorded<'_>) -> Liveness {
    liveness_with(record, process)
}

/// [`liveness`] with the process probe passed in (tests simulate what the system says).
#[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
pub(crate) fn liveness_with(record: &Recorded<'_>, probe: impl Fn(u32) -> Process) -> Liveness {
    let me = me();
    if record.token == Some(me.token.as_str()) {
        return Liveness::Alive;
    }
    let (Some(mine), Some(theirs), Some(pid)) = (&me.machine, record.machine, record.pid) else {
        return Liveness::Unknown;
    };
    if mine != theirs {
        return Liveness::Unknown;
    }
    match (probe(pid), record.started_at) {
        (Process::Gone, _) => Liveness::Dead(format!(
            "its owner, process {pid} on this machine, has exited"
        )),
        (
            Process::Running {
                started_at: Some(now),
            },
            Some(then),
        ) if now != then => Liveness::Dead(format!(
            "its owner, process {pid} on this machine, has exited (the pid was reused)"
        )),
        (Process::Running { .. }, _) => Liveness::Alive,
        (Process::Unknown, _) => Liveness::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_running_and_tokens_are_unique() {
        let me = me();
        assert!(matches!(process(me.pid), Process::Running { .. }));
        assert_eq!(me.token.len(), 16);
        assert_ne!(me.lease_token(), me.lease_token());
        assert!(me
            .lease_token()
            .starts_with(&format!("{}:{}:", me.host, me.pid)));
        assert_eq!(process(u32::MAX - 1), Process::Gone);
    }

    #[test]
    fn only_a_gone_or_reused_pid_on_this_machine_is_dead() {
        let me = me();
        let mine = Recorded {
            token: Some(&me.token),
            ..Recorded::default()
        };
        assert_eq!(liveness(&mine), Liveness::Alive);
        let Some(machine) = me.machine.as_deref() else {
            return;
        };
        let other = |pid, started_at| Recorded {
            token: Some("someone-else"),
            pid: Some(pid),
            started_at,
            machine: Some(machine),
        };
        assert_eq!(liveness(&other(me.pid, me.started_at)), Liveness::Alive);
        let reused = liveness(&other(me.pid, me.started_at.map(|t| t + 1)));
        assert!(
            matches!(&reused, Liveness::Dead(r) if r.contains("reused")),
            "{reused:?}"
        );
        let gone = liveness(&other(u32::MAX - 1, Some(1)));
        assert!(
            matches!(&gone, Liveness::Dead(r) if r.contains("exited")),
            "{gone:?}"
        );
        // A record without a start time (an older version's): the pid alone decides.
        assert_eq!(liveness(&other(me.pid, None)), Liveness::Alive);
        // The system cannot tell: unknown, never dead.
        let unknown = |_| Process::Unknown;
        assert_eq!(
            liveness_with(&other(12345, Some(1)), unknown),
            Liveness::Unknown
        );
        // Another machine: unknown, whatever its pid.
        let elsewhere = Recorded {
            machine: Some("elsewhere"),
            ..other(u32::MAX - 1, None)
        };
        assert_eq!(liveness(&elsewhere), Liveness::Unknown);
    }
}
