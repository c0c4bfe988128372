//! What the agent learns of the host (or of the tree under `--root`): its
//! facts for the placement record, and its local users.

use std::path::{Path, PathBuf};

use honeytrail_core::fleet::{HostFacts, MAX_FACT};

/// A local user from the root's `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// As written in `/etc/passwd` (inside the root).
    pub home: String,
    pub shell: String,
}

impl LocalUser {
    /// Whether the user logs in: a shell that is not one of the
    /// "no login" ones.
    pub fn logs_in(&self) -> bool {
        let shell = self.shell.rsplit('/').next().unwrap_or("");
        !shell.is_empty() && !["nologin", "false", "sync", "halt", "shutdown", "true"].contains(&shell)
    }

    /// A person's account or root: not a system account (uid below 1000)
    /// nor `nobody`.
    pub fn is_person_or_root(&self) -> bool {
        self.uid == 0 || (1000..65534).contains(&self.uid)
    }
}

/// `path` (absolute, as seen on the host) inside `root`.
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path).ok()?.take(64 * 1024).read_to_string(&mut text).ok()?;
    Some(text)
}

/// A fact as the server takes it: trimmed, printable, bounded.
fn fact(raw: &str) -> Option<String> {
    let v: String = raw.trim().chars().filter(|&c| !honeytrail_core::encoding::hidden(c)).take(MAX_FACT).collect();
    (!v.is_empty()).then_some(v)
}

/// The users of the root's `/etc/passwd`.
pub fn users(root: &Path) -> anyhow::Result<Vec<LocalUser>> {
    let path = under(root, "/etc/passwd");
    let text = read_small(&path).ok_or_else(|| {
        anyhow::anyhow!("cannot read {}: the users and their homes come from it (is --root right?)", path.display())
    })?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(LocalUser {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect())
}

/// What the host says of itself when it enrols.
pub fn facts(root: &Path) -> HostFacts {
    let on_host = root == Path::new("/");
    let hostname = read_small(&under(root, "/etc/hostname"))
        .and_then(|h| fact(&h))
        .or_else(|| on_host.then(|| rustix::system::uname().nodename().to_string_lossy().into_owned()))
        .and_then(|h| fact(&h))
        .unwrap_or_else(|| "localhost".into());
    let machine_id = read_small(&under(root, "/etc/machine-id")).and_then(|m| fact(&m));
    // The DMI serial is the hardware's: only when placing on this host.
    let dmi_serial = on_host
        .then(|| read_small(Path::new("/sys/class/dmi/id/product_serial")))
        .flatten()
        .and_then(|s| fact(&s))
        .filter(|s| !["0", "None", "Not Specified", "To be filled by O.E.M."].contains(&s.as_str()));
    let os = read_small(&under(root, "/etc/os-release"))
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).and_then(|v| fact(v.trim_matches('"'))));
    HostFacts {
        hostname,
        machine_id,
        dmi_serial,
        os,
        instance_id: instance_id(root),
        agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
    }
}

/// The cloud instance ID, where cloud-init wrote it down.
fn instance_id(root: &Path) -> Option<String> {
    if let Some(text) = read_small(&under(root, "/run/cloud-init/instance-data.json")) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(id) = v["v1"]["instance_id"].as_str().or_else(|| v["v1"]["instance-id"].as_str()) {
                return fact(id);
            }
        }
    }
    read_small(&under(root, "/var/lib/cloud/data/instance-id"))
        .and_then(|i| fact(&i))
        .filter(|i| i != "iid-datasource-none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_and_users_come_from_the_root() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("hostname"), "build-7\n").unwrap();
        std::fs::write(etc.join("machine-id"), "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::write(etc.join("os-release"), "NAME=Debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
            .unwrap();
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
             postgres:x:105:110::/var/lib/postgresql:/bin/bash\nmaria:x:1000:1000:Maria:/home/maria:/bin/zsh\n\
             nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\nbroken line\n",
        )
        .unwrap();
        let data = root.path().join("var/lib/cloud/data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("instance-id"), "i-0abc123\u{1b}[31m\n").unwrap();
        let f = facts(root.path());
        assert_eq!(f.hostname, "build-7");
        assert_eq!(f.machine_id.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(f.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(f.instance_id.as_deref(), Some("i-0abc123[31m"), "control characters dropped");
        assert_eq!(f.dmi_serial, None, "not this machine's hardware");
        f.check().unwrap();
        let people: Vec<String> = users(root.path())
            .unwrap()
            .into_iter()
            .filter(|u| u.logs_in() && u.is_person_or_root())
            .map(|u| u.name)
            .collect();
        assert_eq!(people, ["root", "maria"]);
    }
}
