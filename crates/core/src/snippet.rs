//! Ready-to-paste deployment snippets and the shell installer the server
//! serves at `/deploy/install.sh`.
//!
//! A snippet never holds a secret: it names where the enrolment secret is
//! kept (an SSM Parameter Store SecureString the host reads at boot with its
//! own role), so user data, a playbook or a Terraform plan can be shared and
//! reviewed without giving anyone a way to enrol hosts. Every value put into
//! a snippet is checked against a narrow alphabet first, so none of them can
//! break out of the shell, YAML or HCL quoting around it.

use crate::naming::telltale_word;
use crate::Invalid;

/// The service name snippets and installs use unless told otherwise: a
/// plausible inventory daemon, nothing that says what it is.
pub const DEFAULT_SERVICE_NAME: &str = "host-inventory";

/// Where the enrolment secret lives unless told otherwise.
pub const DEFAULT_SECRET_NAME: &str = "/ops/host-inventory/enrolment";

/// The SHA-256 of `bytes`, as 64 lower-case hex digits (what `sha256sum`
/// prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The kinds of snippet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnippetKind {
    CloudInit,
    Ansible,
    Terraform,
    Shell,
}

impl SnippetKind {
    pub const ALL: [SnippetKind; 4] =
        [SnippetKind::CloudInit, SnippetKind::Ansible, SnippetKind::Terraform, SnippetKind::Shell];

    pub fn as_str(self) -> &'static str {
        match self {
            SnippetKind::CloudInit => "cloud-init",
            SnippetKind::Ansible => "ansible",
            SnippetKind::Terraform => "terraform",
            SnippetKind::Shell => "shell",
        }
    }

    pub fn parse(raw: &str) -> Result<SnippetKind, Invalid> {
        SnippetKind::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| Invalid(format!("snippet kind {raw:?}: one of cloud-init, ansible, terraform, shell")))
    }
}

/// A service name: a plain name that does not say what it is. The agent's
/// `install` applies the same rule.
pub fn check_service_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(Invalid(format!("service name {name:?}: 1 to 64 lower-case letters, digits, - and _")));
    }
    if let Some(w) = telltale_word(name) {
        return Err(Invalid(format!(
            "service name {name:?} says \"{w}\": anyone listing units or processes would know; choose a dull name"
        )));
    }
    Ok(())
}

/// An SSM parameter name (SSM's own alphabet, minus nothing we need).
fn check_secret_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 1011
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
        && !name.contains("//");
    if !ok {
        return Err(Invalid(format!(
            "secret name {name:?}: an SSM parameter name (letters, digits, / _ . -), e.g. {DEFAULT_SECRET_NAME}"
        )));
    }
    Ok(())
}

/// The server's public URL: http(s), host, optional port and path, from an
/// alphabet that needs no quoting anywhere.
fn check_server(url: &str) -> Result<(), Invalid> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty() && !r.starts_with('/') && r.bytes().all(|b| b.is_ascii_alphanumeric() || b":/._-[]".contains(&b))
    });
    if !ok {
        return Err(Invalid(format!(
            "server URL {url:?}: set serve.public_url to where hosts reach the server, e.g. https://honeytrail.example.com"
        )));
    }
    Ok(())
}

fn check_sha256(hex: &str) -> Result<(), Invalid> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Invalid("sha256: 64 hex digits".into()));
    }
    Ok(())
}

/// Renders `/deploy/install.sh`: download the agent from `server`, check it
/// against `agent_sha256`, install it under the chosen service name, read
/// the enrolment secret, enrol once, start the service.
pub fn install_script(server: &str, agent_sha256: &str) -> Result<String, Invalid> {
    check_server(server)?;
    check_sha256(agent_sha256)?;
    Ok(INSTALL_SH
        .replace("@SERVER@", server.trim_end_matches('/'))
        .replace("@SHA256@", agent_sha256)
        .replace("@NAME@", DEFAULT_SERVICE_NAME))
}

const INSTALL_SH: &str = r#"#!/bin/sh
# Installs the host inventory collector from @SERVER@ and enrols this host.
#
#   sh install.sh --secret-name /ops/host-inventory/enrolment   # from SSM Parameter Store
#   sh install.sh --secret-file /root/enrolment                 # from a file
#   sh install.sh < enrolment                                   # from standard input
#
# Options: --service-name NAME (default @NAME@), --region R (of the SSM
# parameter; default: this EC2 instance's), --ca-file PEM (an internal CA),
# --root DIR (place under another root, e.g. an image; no service started),
# --bin-dir DIR, --unit-dir DIR, --state-dir DIR, --no-start.
# On EC2 (the metadata service answers) the host also proves which instance
# it is, for enrolment secrets bound to EC2.
set -eu
server='@SERVER@'
sha256='@SHA256@'
name='@NAME@'
secret_name='' secret_file='' region='' ca_file='' root='/' start=yes
bin_dir=/usr/local/sbin unit_dir=/etc/systemd/system state_dir=''
die() { echo "install.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --secret-name|--secret-file|--service-name|--region|--ca-file|--root|--bin-dir|--unit-dir|--state-dir)
            [ $# -ge 2 ] || die "$1 needs a value"
            case "$1" in
                --secret-name) secret_name=$2 ;; --secret-file) secret_file=$2 ;;
                --service-name) name=$2 ;; --region) region=$2 ;; --ca-file) ca_file=$2 ;;
                --root) root=$2; start=no ;; --bin-dir) bin_dir=$2 ;; --unit-dir) unit_dir=$2 ;;
                --state-dir) state_dir=$2 ;;
            esac
            shift 2 ;;
        --no-start) start=no; shift ;;
        *) die "unknown option $1 (see the comment at the top of this script)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: the collector writes into users' home directories"
case "$name" in ''|*[!a-z0-9_-]*) die "--service-name $name: lower-case letters, digits, - and _" ;; esac
[ -n "$state_dir" ] || state_dir=/var/lib/$name
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fetch() {
    if command -v curl >/dev/null 2>&1; then
        if [ -n "$ca_file" ]; then curl -fsS --cacert "$ca_file" -o "$2" "$server$1"; else curl -fsS -o "$2" "$server$1"; fi
    elif command -v wget >/dev/null 2>&1; then
        if [ -n "$ca_file" ]; then wget -q --ca-certificate="$ca_file" -O "$2" "$server$1"; else wget -q -O "$2" "$server$1"; fi
    else
        die "neither curl nor wget is installed"
    fi
}
fetch /deploy/agent "$tmp/agent" || die "cannot download $server/deploy/agent"
echo "$sha256  $tmp/agent" | sha256sum -c - >/dev/null 2>&1 \
    || die "the download from $server/deploy/agent is not the one this script names (SHA-256 $sha256): nothing installed"
chmod 0755 "$tmp/agent"
"$tmp/agent" install --service-name "$name" --bin-dir "$bin_dir" --unit-dir "$unit_dir" >/dev/null
imds=''
if command -v curl >/dev/null 2>&1; then
    imds=$(curl -fsS -m 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token 2>/dev/null) || imds=''
fi
if [ -z "$secret_file" ]; then
    secret_file=$tmp/secret
    if [ -n "$secret_name" ]; then
        if [ -z "$region" ]; then
            [ -n "$imds" ] \
                && region=$(curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $imds" http://169.254.169.254/latest/meta-data/placement/region 2>/dev/null) \
                || die "not on EC2 (no instance metadata): say --region for $secret_name"
        fi
        (umask 077; aws ssm get-parameter --region "$region" --with-decryption --name "$secret_name" \
            --query Parameter.Value --output text >"$secret_file") \
            || die "cannot read the SSM parameter $secret_name in $region: the instance role needs ssm:GetParameter on it"
    else
        (umask 077; cat >"$secret_file")
    fi
fi
set -- enrol --server "$server" --secret-file "$secret_file" --state-dir "$state_dir" --root "$root" --once
[ -z "$ca_file" ] || set -- "$@" --ca-file "$ca_file"
[ -z "$imds" ] || set -- "$@" --ec2-identity
"$bin_dir/$name" "$@"
if [ "$start" = yes ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now "$name.service"
fi
"#;

/// What a snippet is made of.
#[derive(Debug, Clone)]
pub struct SnippetInput<'a> {
    /// The server's public URL.
    pub server: &'a str,
    /// The SHA-256 of the install script the server serves now.
    pub install_sha256: &'a str,
    /// The SSM parameter that holds the enrolment secret.
    pub secret_name: &'a str,
    pub service_name: &'a str,
}

/// Renders one snippet.
pub fn render(kind: SnippetKind, input: &SnippetInput<'_>) -> Result<String, Invalid> {
    check_server(input.server)?;
    check_sha256(input.install_sha256)?;
    check_secret_name(input.secret_name)?;
    check_service_name(input.service_name)?;
    let server = input.server.trim_end_matches('/');
    let (sha, secret, name) = (input.install_sha256, input.secret_name, input.service_name);
    // One shell line: fetch the installer, check it is the one this snippet
    // was rendered for, run it, remove it.
    let line = format!(
        "f=$(mktemp) && curl -fsS -o \"$f\" {server}/deploy/install.sh && echo \"{sha}  $f\" | sha256sum -c - >/dev/null && sh \"$f\" --secret-name {secret} --service-name {name}; s=$?; rm -f \"$f\"; exit $s"
    );
    let policy_note = format!(
        "the instance role needs ssm:GetParameter on {secret} (and kms:Decrypt on its key); re-render this after upgrading the server's agent binary (the installer's SHA-256 changes)"
    );
    Ok(match kind {
        SnippetKind::CloudInit => format!(
            "#cloud-config\n\
             # Installs the host inventory collector and enrols this instance with its own key.\n\
             # The enrolment secret stays in SSM Parameter Store ({secret}):\n\
             # {policy_note}.\n\
             runcmd:\n  - [sh, -c, '{line}']\n"
        ),
        SnippetKind::Ansible => format!(
            "# Ansible: install the host inventory collector and enrol every host in the play.\n\
             # The enrolment secret is read on the control node from SSM Parameter Store ({secret})\n\
             # with the amazon.aws collection; a vaulted variable works as well.\n\
             - name: Fetch the host inventory installer\n  \
               ansible.builtin.get_url:\n    \
                 url: {server}/deploy/install.sh\n    \
                 dest: /root/.{name}-install.sh\n    \
                 checksum: \"sha256:{sha}\"\n    \
                 mode: \"0700\"\n  \
               become: true\n\
             - name: Install and enrol\n  \
               ansible.builtin.command:\n    \
                 cmd: sh /root/.{name}-install.sh --service-name {name}\n    \
                 stdin: \"{{{{ lookup('amazon.aws.aws_ssm', '{secret}', decrypt=true) }}}}\"\n    \
                 creates: /var/lib/{name}/state.json\n  \
               become: true\n  \
               no_log: true\n\
             - name: Remove the installer\n  \
               ansible.builtin.file:\n    \
                 path: /root/.{name}-install.sh\n    \
                 state: absent\n  \
               become: true\n"
        ),
        SnippetKind::Terraform => {
            let parameter = secret.trim_start_matches('/');
            format!(
                "# Terraform: instances install the host inventory collector at first boot and enrol themselves.\n\
                 # Only the name of the enrolment secret ({secret}, SSM Parameter Store) is in user data;\n\
                 # the instance profile below may read that one parameter. Re-render this after upgrading\n\
                 # the server's agent binary (the installer's SHA-256 changes).\n\
                 variable \"ami_id\" {{\n  type = string\n}}\n\n\
                 data \"aws_region\" \"current\" {{}}\n\
                 data \"aws_caller_identity\" \"current\" {{}}\n\n\
                 locals {{\n  inventory_user_data = <<-EOT\n    #cloud-config\n    runcmd:\n      - [sh, -c, '{line}']\n  EOT\n}}\n\n\
                 resource \"aws_iam_role\" \"inventory\" {{\n  name_prefix = \"{name}-\"\n  assume_role_policy = jsonencode({{\n    Version = \"2012-10-17\"\n    Statement = [{{ Effect = \"Allow\", Action = \"sts:AssumeRole\", Principal = {{ Service = \"ec2.amazonaws.com\" }} }}]\n  }})\n}}\n\n\
                 resource \"aws_iam_role_policy\" \"inventory\" {{\n  role = aws_iam_role.inventory.id\n  policy = jsonencode({{\n    Version = \"2012-10-17\"\n    Statement = [{{\n      Effect   = \"Allow\"\n      Action   = \"ssm:GetParameter\"\n      Resource = \"arn:aws:ssm:${{data.aws_region.current.name}}:${{data.aws_caller_identity.current.account_id}}:parameter/{parameter}\"\n    }}]\n  }})\n}}\n\n\
                 resource \"aws_iam_instance_profile\" \"inventory\" {{\n  name_prefix = \"{name}-\"\n  role        = aws_iam_role.inventory.name\n}}\n\n\
                 # One instance\n\
                 resource \"aws_instance\" \"app\" {{\n  ami                  = var.ami_id\n  instance_type        = \"t3.micro\"\n  iam_instance_profile = aws_iam_instance_profile.inventory.name\n  user_data            = local.inventory_user_data\n}}\n\n\
                 # Or every instance an Auto Scaling group starts\n\
                 resource \"aws_launch_template\" \"app\" {{\n  name_prefix   = \"app-\"\n  image_id      = var.ami_id\n  instance_type = \"t3.micro\"\n  iam_instance_profile {{\n    name = aws_iam_instance_profile.inventory.name\n  }}\n  user_data = base64encode(local.inventory_user_data)\n}}\n"
            )
        }
        SnippetKind::Shell => format!(
            "# Run as root on each host; the enrolment secret is read from SSM Parameter Store ({secret}).\n\
             # Elsewhere, fetch {server}/deploy/install.sh and run: sh install.sh --secret-file FILE\n\
             sh -c '{line}'\n"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a host's files must not say (the shell's `trap` and IMDS's
    /// `token` are no give-away).
    fn says(text: &str) -> Option<&'static str> {
        let lower = text.to_lowercase();
        ["honey", "canar", "decoy", "bait", "deception"].into_iter().find(|w| lower.contains(w))
    }

    fn input<'a>(server: &'a str, secret: &'a str, name: &'a str) -> SnippetInput<'a> {
        const SHA: &str = "abababababababababababababababababababababababababababababababab";
        SnippetInput { server, install_sha256: SHA, secret_name: secret, service_name: name }
    }

    #[test]
    fn snippets_name_the_secret_and_pin_the_installer() {
        let i = input("https://ht.example.com/", DEFAULT_SECRET_NAME, DEFAULT_SERVICE_NAME);
        for kind in SnippetKind::ALL {
            let s = render(kind, &i).unwrap();
            assert!(s.contains("https://ht.example.com/deploy/install.sh"), "{kind:?}: {s}");
            assert!(s.contains(&"ab".repeat(32)), "{kind:?}");
            assert!(s.contains(DEFAULT_SECRET_NAME), "{kind:?}");
            assert_eq!(says(&s), None, "{kind:?}: {s}");
            assert_eq!(SnippetKind::parse(kind.as_str()).unwrap(), kind);
        }
    }

    #[test]
    fn nothing_hostile_reaches_a_snippet() {
        for bad in ["https://x/'; rm -rf /", "https://x/$(id)", "https://x\n", "ftp://x", "https://", "https:///x"] {
            assert!(render(SnippetKind::Shell, &input(bad, DEFAULT_SECRET_NAME, "inv")).is_err(), "{bad:?}");
        }
        for bad in ["", "a b", "x'y", "/a/$(id)", "a\"b", "a//b", "{{ x }}"] {
            assert!(render(SnippetKind::Ansible, &input("https://x", bad, "inv")).is_err(), "{bad:?}");
        }
        for bad in ["", "Inventory", "honeytrail-agent", "canaryd", "a;b", "x".repeat(65).as_str()] {
            assert!(check_service_name(bad).is_err(), "{bad:?}");
        }
        check_service_name(DEFAULT_SERVICE_NAME).unwrap();
        assert!(SnippetKind::parse("puppet").is_err());
        assert!(install_script("https://x", "nothex").is_err());
    }

    #[test]
    fn the_installer_says_nothing_and_names_its_server() {
        let s = install_script("https://ht.example.com", &"0f".repeat(32)).unwrap();
        assert!(s.starts_with("#!/bin/sh\n") && s.contains("server='https://ht.example.com'"));
        assert!(!s.contains("@SERVER@") && !s.contains("@SHA256@") && !s.contains("@NAME@"), "a placeholder is left");
        assert_eq!(says(&s), None);
    }
}
