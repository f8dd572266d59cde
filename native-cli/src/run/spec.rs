//! The OCI runtime bundle's `config.json` for a RUN step: process, user (resolved from the root file system's
//! /etc/passwd and /etc/group), namespaces, standard mounts, docker's default capabilities and rlimits.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::fsutil;

/// docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux has, in number order (to CAP_CHECKPOINT_RESTORE, 40): `RUN --security=insecure` gets
/// those we hold, as a privileged container does.
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A resolved user: uid, gid, supplementary groups and home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

fn parse_db(data: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(data)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(String::from).collect())
        .collect()
}

/// Resolve `user` (`name`, `uid`, `name:group`, `uid:gid`, empty = root) against the root file system.
pub fn resolve_user(root: &Path, user: &str) -> Result<User> {
    let passwd = parse_db(&fsutil::read_in_root(root, "/etc/passwd", 1 << 22)?.unwrap_or_default());
    let group = parse_db(&fsutil::read_in_root(root, "/etc/group", 1 << 22)?.unwrap_or_default());
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = passwd
        .iter()
        .find(|f| f.len() >= 4 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let (uid, mut gid, name, home) = match (u.parse::<u32>(), entry) {
        (_, Some(f)) => {
            let uid: u32 = f[2].parse().unwrap_or(0);
            let gid: u32 = f[3].parse().unwrap_or(0);
            let home = f.get(5).cloned().unwrap_or_else(|| "/".into());
            (uid, gid, Some(f[0].clone()), home)
        }
        (Ok(n), None) => (n, 0, None, "/".to_string()),
        (Err(_), None) => bail!("unable to find user {u}: no matching entries in passwd file"),
    };
    let mut groups = Vec::new();
    match g {
        Some(g) => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => match group.iter().find(|f| f.len() >= 3 && f[0] == g) {
                    Some(f) => f[2].parse().unwrap_or(0),
                    None => bail!("unable to find group {g}: no matching entries in group file"),
                },
            };
        }
        None => {
            // Supplementary groups come from /etc/group when only a user is named.
            if let Some(name) = &name {
                for f in &group {
                    if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                        if let Ok(n) = f[2].parse::<u32>() {
                            if n != gid && !groups.contains(&n) {
                                groups.push(n);
                            }
                        }
                    }
                }
            }
        }
    }
    // BuildKit lists the primary gid first among the supplementary groups (`id` shows groups=GID,...).
    groups.insert(0, gid);
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}

/// Everything that varies between RUN steps.
pub struct SpecInput<'a> {
    pub rootfs: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub user: &'a User,
    /// `host` shares the host's network namespace.
    pub host_network: bool,
    /// Otherwise: a namespace to join (the `default` network's), or none for a fresh one with only loopback.
    pub netns: Option<&'a Path>,
    /// Extra mounts (already in OCI form).
    pub mounts: Vec<Value>,
    /// The UTS host name.
    pub hostname: &'a str,
    /// Privileged (`RUN --security=insecure`): every capability, every device, no masked or read-only paths.
    pub insecure: bool,
}

fn nofile_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // The container may not have more than we have: raising needs CAP_SYS_RESOURCE.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_max.min(1 << 20)
    } else {
        1024
    }
}

/// The capabilities of [`ALL_CAPS`] in our own bounding set: a privileged step can have no more than we have (runc
/// fails to start it otherwise), as BuildKit's insecure mode gives what its daemon holds.
fn held_caps() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    // ALL_CAPS is in capability-number order.
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(n, _)| bounding & (1u64 << n) != 0)
        .map(|(_, c)| *c)
        .collect()
}

pub fn config(i: &SpecInput) -> Value {
    let mut env: Vec<String> = i.env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", i.user.home));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if i.host_network {
        // sysfs cannot be mounted without a network namespace of our own; bind the host's read-only instead.
        mounts.push(json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
    } else {
        let ro = if i.insecure { "rw" } else { "ro" };
        mounts.push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", ro]}));
        match i.netns {
            Some(p) => namespaces.push(json!({"type": "network", "path": p})),
            None => namespaces.push(json!({"type": "network"})),
        }
    }
    mounts.extend(i.mounts.iter().cloned());
    let nofile = nofile_limit();
    let all_caps = held_caps();
    let (caps, masked, readonly): (&[&str], &[&str], &[&str]) = if i.insecure {
        (&all_caps, &[], &[])
    } else {
        (DEFAULT_CAPS, MASKED, READONLY)
    };
    let hostname = if i.hostname.is_empty() {
        super::network::HOSTNAME
    } else {
        i.hostname
    };
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": i.user.uid, "gid": i.user.gid, "additionalGids": i.user.groups},
            "args": i.args,
            "env": env,
            "cwd": i.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": !i.insecure
        },
        "root": {"path": i.rootfs, "readonly": false},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "resources": {"devices": [{"allow": i.insecure, "access": "rwm"}]},
            "namespaces": namespaces,
            "maskedPaths": masked,
            "readonlyPaths": readonly
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_steps_are_privileged_and_named_steps_named() {
        let user = User {
            uid: 0,
            gid: 0,
            groups: vec![0],
            home: "/root".into(),
        };
        let input = |insecure, hostname| SpecInput {
            rootfs: Path::new("/r"),
            args: &[],
            env: &[],
            cwd: "/",
            user: &user,
            host_network: false,
            netns: None,
            mounts: vec![],
            hostname,
            insecure,
        };
        let sandbox = config(&input(false, ""));
        assert_eq!(sandbox["hostname"], "buildkitsandbox");
        assert_eq!(
            sandbox["process"]["capabilities"]["bounding"],
            json!(DEFAULT_CAPS)
        );
        assert_eq!(sandbox["process"]["noNewPrivileges"], true);
        assert_eq!(sandbox["linux"]["maskedPaths"], json!(MASKED));
        let insecure = config(&input(true, "myhost"));
        assert_eq!(insecure["hostname"], "myhost");
        assert_eq!(
            insecure["process"]["capabilities"]["bounding"],
            json!(held_caps())
        );
        assert_eq!(insecure["process"]["noNewPrivileges"], false);
        assert_eq!(insecure["linux"]["maskedPaths"], json!([]));
        assert_eq!(insecure["linux"]["readonlyPaths"], json!([]));
        assert_eq!(insecure["linux"]["resources"]["devices"][0]["allow"], true);
        // Only capabilities we hold, in number order: CAP_CHOWN (0) is held by any root process.
        let held = held_caps();
        assert!(
            held.len() <= ALL_CAPS.len() && held.first() == Some(&"CAP_CHOWN"),
            "{held:?}"
        );
    }

    #[test]
    fn users() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1001::/home/bob:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nbob:x:1001:\nwheel:x:10:bob,alice\n",
        )
        .unwrap();
        let r = t.path();
        assert_eq!(
            resolve_user(r, "").unwrap(),
            User {
                uid: 0,
                gid: 0,
                groups: vec![0],
                home: "/root".into()
            }
        );
        assert_eq!(
            resolve_user(r, "bob").unwrap(),
            User {
                uid: 1000,
                gid: 1001,
                groups: vec![1001, 10],
                home: "/home/bob".into()
            }
        );
        assert_eq!(resolve_user(r, "1000:wheel").unwrap().gid, 10);
        assert_eq!(
            resolve_user(r, "4242").unwrap(),
            User {
                uid: 4242,
                gid: 0,
                groups: vec![0],
                home: "/".into()
            }
        );
        assert!(resolve_user(r, "nobody").is_err());
        assert!(resolve_user(r, "bob:nogroup").is_err());
    }
}
