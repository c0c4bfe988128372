//! `install`: this binary and a hardened systemd unit under a name the
//! operator chooses, so nothing on the host names the product.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// The unit for `name`: the agent runs as root (it writes into users' homes
/// and sets their files' owners), with the rest of the system read-only
/// except the homes, its state directory and the places templates name.
pub fn unit(name: &str, bin: &Path) -> String {
    format!(
        "[Unit]\n\
         Description=Host inventory collector\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={bin} run --state-dir /var/lib/{name}\n\
         Restart=always\n\
         RestartSec=30\n\
         SyslogIdentifier={name}\n\
         StateDirectory={name}\n\
         StateDirectoryMode=0700\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ReadWritePaths=-/home -/root -/opt -/srv\n\
         PrivateTmp=yes\n\
         PrivateDevices=yes\n\
         ProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\n\
         ProtectControlGroups=yes\n\
         RestrictSUIDSGID=yes\n\
         LockPersonality=yes\n\
         MemoryDenyWriteExecute=yes\n\
         RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n\
         CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_SETUID CAP_SETGID CAP_SYS_ADMIN CAP_SYS_PTRACE\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        bin = bin.display()
    )
}

/// Checks a service name: a plain name that does not say what it is.
pub fn check_name(name: &str) -> Result<()> {
    honeytrail_core::snippet::check_service_name(name).map_err(|e| anyhow::anyhow!("--service-name: {e}"))
}

pub fn install(name: &str, bin_dir: &Path, unit_dir: &Path) -> Result<()> {
    check_name(name)?;
    let me = std::env::current_exe().context("cannot find this program's own file")?;
    let bin = bin_dir.join(name);
    std::fs::create_dir_all(bin_dir).with_context(|| format!("cannot create {}", bin_dir.display()))?;
    let tmp = bin_dir.join(format!(".{name}.new"));
    std::fs::copy(&me, &tmp).with_context(|| format!("cannot copy {} to {}", me.display(), tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &bin).with_context(|| format!("cannot install {}", bin.display()))?;
    std::fs::create_dir_all(unit_dir).with_context(|| format!("cannot create {}", unit_dir.display()))?;
    let unit_path = unit_dir.join(format!("{name}.service"));
    std::fs::write(&unit_path, unit(name, &bin)).with_context(|| format!("cannot write {}", unit_path.display()))?;
    println!("installed {} and {}", bin.display(), unit_path.display());
    println!("next: {} enrol --server URL --secret-file FILE --state-dir /var/lib/{name} --once", bin.display());
    println!("then: systemctl daemon-reload && systemctl enable --now {name}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_unit_say_nothing() {
        check_name(crate::DEFAULT_NAME).unwrap();
        for bad in ["honeytrail-agent", "canaryd", "my-honey", "Decoy", "a b", "", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let u = unit("host-inventory", Path::new("/usr/local/sbin/host-inventory"));
        for w in crate::check::TELLTALE {
            assert!(!u.to_lowercase().contains(w), "the unit says {w}: {u}");
        }
        assert!(u.contains("NoNewPrivileges=yes") && u.contains("ProtectSystem=strict"));
        // The shipped example is exactly what install writes for the default name.
        let shipped = include_str!("../../../packaging/systemd/honeytrail-agent.service");
        let body: String = shipped.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        assert_eq!(body, u);
    }
}
