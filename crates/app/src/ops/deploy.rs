//! Deployment by automation: the installer the server serves to hosts
//! (`/deploy/install.sh`, which downloads `/deploy/agent` and checks its
//! SHA-256) and the snippets that run it (cloud-init, Ansible, Terraform,
//! shell).

use crate::context::FileStamp;
use std::path::PathBuf;
use std::sync::Arc;

use honeytrail_core::access::Permission;
use honeytrail_core::snippet::{self, SnippetInput, SnippetKind};
use serde::{Deserialize, Serialize};

use crate::{Actor, OpError, OpErrorKind, OpResult, Ops};

/// The agent binary as last read: its bytes (what `/deploy/agent` serves,
/// so the download is always the file the installer's digest names), its
/// SHA-256, and the path, size and time it was read from.
#[derive(Clone)]
pub struct FileDigest {
    path: PathBuf,
    pub bytes: Arc<[u8]>,
    pub sha256: String,
}

/// The installer as the server serves it now.
#[derive(Debug, Clone)]
pub struct Installer {
    pub script: String,
    /// The SHA-256 of `script`, which snippets pin.
    pub sha256: String,
    pub agent: PathBuf,
    pub agent_sha256: String,
}

fn no_agent(why: String) -> OpError {
    OpError::new(OpErrorKind::Unavailable, "no_agent_binary", why)
}

impl Ops {
    /// The agent binary hosts download: `fleet.agent_binary`, else
    /// `honeytrail-agent` beside this program.
    pub fn agent_binary(&self) -> OpResult<PathBuf> {
        let path = match &self.config.fleet.agent_binary {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| no_agent(format!("cannot find this program's own file: {e}")))?
                .with_file_name("honeytrail-agent"),
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            _ => Err(no_agent(format!(
                "no agent binary at {}: build it (cargo build --release -p honeytrail-agent) or set fleet.agent_binary",
                path.display()
            ))),
        }
    }

    /// The agent binary, read and hashed again only when the file changed.
    pub async fn agent_download(&self) -> OpResult<FileDigest> {
        let path = self.agent_binary()?;
        let meta = tokio::fs::metadata(&path).await.map_err(|e| no_agent(format!("{}: {e}", path.display())))?;
        let stamp = FileStamp::new(&path, &meta);
        if let Some(d) = self.signals().agent_digest.get(&stamp) {
            return Ok(d);
        }
        let bytes: Arc<[u8]> =
            tokio::fs::read(&path).await.map_err(|e| no_agent(format!("cannot read {}: {e}", path.display())))?.into();
        let hashed = bytes.clone();
        let sha256 = tokio::task::spawn_blocking(move || snippet::sha256_hex(&hashed))
            .await
            .map_err(|e| no_agent(format!("hashing the agent binary failed: {e}")))?;
        let digest = FileDigest { path, bytes, sha256 };
        self.signals().agent_digest.put(stamp, digest.clone());
        Ok(digest)
    }

    /// The installer for hosts, naming this server's public URL (never the
    /// address a request came in on, which its sender chose).
    pub async fn installer(&self) -> OpResult<Installer> {
        let agent = self.agent_download().await?;
        let script = snippet::install_script(&self.config.serve.public_url(), &agent.sha256)?;
        let sha256 = snippet::sha256_hex(script.as_bytes());
        Ok(Installer { script, sha256, agent: agent.path, agent_sha256: agent.sha256 })
    }

    /// A ready-to-paste snippet that installs and enrols hosts, naming the
    /// SSM parameter that holds the enrolment secret (never the secret).
    pub async fn snippet(&self, actor: &Actor, r: &SnippetRequest) -> OpResult<Snippet> {
        actor.require(Permission::Read)?;
        let kind = SnippetKind::parse(&r.kind)?;
        let installer = self.installer().await?;
        let server = self.config.serve.public_url();
        let input = SnippetInput {
            server: &server,
            install_sha256: &installer.sha256,
            secret_name: &r.secret_name,
            service_name: &r.service_name,
        };
        Ok(Snippet {
            kind: kind.as_str(),
            secret_name: r.secret_name.clone(),
            service_name: r.service_name.clone(),
            snippet: snippet::render(kind, &input)?,
        })
    }
}

/// A snippet to make: for which tool, and the names it uses on hosts. The
/// one declaration behind `deploy snippet`, the API's query and the Deploy
/// page's form.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct SnippetRequest {
    /// cloud-init, ansible, terraform or shell
    #[serde(default)]
    pub kind: String,
    /// The SSM Parameter Store name (SecureString) holding the enrolment secret; hosts read it at boot
    #[cfg_attr(feature = "clap", arg(long, default_value = snippet::DEFAULT_SECRET_NAME))]
    #[serde(default = "default_secret_name")]
    pub secret_name: String,
    /// The agent's service, binary and state directory name on hosts (must not say what it is)
    #[cfg_attr(feature = "clap", arg(long, default_value = snippet::DEFAULT_SERVICE_NAME))]
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_secret_name() -> String {
    snippet::DEFAULT_SECRET_NAME.into()
}

fn default_service_name() -> String {
    snippet::DEFAULT_SERVICE_NAME.into()
}

/// A snippet, with what it was made for.
#[derive(Debug, Clone, Serialize)]
pub struct Snippet {
    pub kind: &'static str,
    pub secret_name: String,
    pub service_name: String,
    pub snippet: String,
}

/// Bait in a Lambda function's environment: where it goes and how to reach
/// that account. The one declaration behind `deploy lambda`, the API's
/// body and the Deploy page's form.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct LambdaRequest {
    /// The function's name or ARN
    pub function: String,
    /// The function's region [default: aws.region]
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub region: Option<String>,
    /// The account the function must be in (checked against the credentials before anything changes)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub account: Option<String>,
    /// The AWS profile for the function's account (default: the standard credential chain)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub profile: Option<String>,
    /// An active key to place (default: a fresh one is minted)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub key: Option<String>,
    /// Take honeytrail's variables out again (every other variable unchanged); the key is retired
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub remove: bool,
}

/// What `deploy lambda` did.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaPlaced {
    pub function_arn: String,
    pub access_key_id: String,
    /// The names of the two variables (key ID, secret).
    pub variables: (String, String),
    pub placement: honeytrail_core::Placement,
    /// On removal: whether the key was retired (it had no other placement).
    pub retired: bool,
}

impl Ops {
    async fn workload(&self, r: &LambdaRequest) -> OpResult<honeytrail_aws::lambda::Workload> {
        let workload = honeytrail_aws::lambda::Workload::connect(&honeytrail_aws::AwsSettings {
            endpoint: self.config.aws.endpoint.clone(),
            region: r.region.clone().or_else(|| self.config.aws.region.clone()),
            profile: r.profile.clone(),
            static_credentials: None,
            role_arn: None,
        })
        .await;
        if let Some(want) = &r.account {
            let me = workload.identity().await?;
            if &me.account != want {
                return Err(OpError::conflict(
                    "wrong_account",
                    format!(
                        "the AWS credentials are for account {} ({}), not {want}: nothing changed; use a profile for {want} (--profile)",
                        me.account, me.arn
                    ),
                ));
            }
        }
        Ok(workload)
    }

    /// Adds a honey key to a Lambda function's environment, under names
    /// real teams use for a second key, leaving every other variable as it
    /// was; records the custody hop and the placement (function ARN and
    /// variable names).
    pub async fn deploy_lambda(&self, actor: &Actor, r: &LambdaRequest) -> OpResult<LambdaPlaced> {
        use honeytrail_core::lambda;
        actor.require(Permission::Respond)?;
        let workload = self.workload(r).await?;
        let mut env = workload.function_env(&r.function).await?;
        let (id_name, secret_name) = lambda::choose_names(&env.variables).ok_or_else(|| {
            OpError::conflict(
                "no_free_names",
                format!("{} already has variables of every name honeytrail would use; nothing changed", env.arn),
            )
        })?;
        let (token, minted) = match &r.key {
            Some(key) => (self.find_token(key).await?, false),
            None => (self.mint(actor, super::tokens::MintRequest::default()).await?, true),
        };
        let secret = self.secret_for_bait(&token).await?;
        let request = super::placements::PlacementRequest {
            access_key_id: token.access_key_id.clone(),
            host: env.arn.clone(),
            path: lambda::placement_path(id_name, secret_name),
            asset: Some("Lambda function".into()),
            format: Some(lambda::FORMAT.into()),
            ..Default::default()
        };
        // Checked before the function changes, so nothing is placed unrecorded.
        request.to_spot(actor)?;
        env.variables.insert(id_name.to_string(), token.access_key_id.clone());
        env.variables.insert(secret_name.to_string(), secret.expose().to_string());
        if let Err(e) = workload.put_function_env(&r.function, &env).await {
            // A key minted for a function that never got it is not left active.
            if minted {
                if let Err(cleanup) = self.retire_by(actor, token.id, "never placed: the Lambda update failed").await {
                    tracing::warn!(key = %token.access_key_id, error = %cleanup.message, "a key minted for a Lambda function that never got it could not be retired");
                }
            }
            return Err(e.into());
        }
        let hop = honeytrail_store::NewHop {
            description: format!(
                "written into the environment of Lambda function {} ({id_name}, {secret_name}) through the Lambda API",
                env.arn
            ),
            actor: Some(actor.name.clone()),
            automatic: true,
            at: chrono::Utc::now(),
        };
        self.audited(actor, "deploy.lambda", &token.access_key_id, Some(&env.arn)).add_hop(token.id, &hop).await?;
        let placement = self.add_placement(actor, &request).await?;
        Ok(LambdaPlaced {
            function_arn: env.arn,
            access_key_id: token.access_key_id,
            variables: (id_name.into(), secret_name.into()),
            placement,
            retired: false,
        })
    }

    /// Takes honeytrail's variables out of a Lambda function again (only
    /// while they still hold its key; every other variable unchanged),
    /// ends the placement, and retires the key when it is placed nowhere
    /// else.
    pub async fn remove_lambda(&self, actor: &Actor, r: &LambdaRequest) -> OpResult<LambdaPlaced> {
        use honeytrail_core::lambda;
        actor.require(Permission::Respond)?;
        let workload = self.workload(r).await?;
        let mut env = workload.function_env(&r.function).await?;
        let placed = self
            .store
            .placements(&honeytrail_store::PlacementFilter { host: Some(env.arn.clone()), ..Default::default() })
            .await?;
        let found = placed.into_iter().find_map(|p| {
            let names = lambda::names_of(&p.placement.spot.path)?;
            let ours = p.placement.spot.host == env.arn
                && p.placement.spot.format.as_deref() == Some(lambda::FORMAT)
                && p.placement.removed_at.is_none()
                && r.key.as_ref().is_none_or(|k| k == &p.access_key_id)
                && env.variables.get(names.0) == Some(&p.access_key_id);
            ours.then(|| (p.clone(), names.0.to_string(), names.1.to_string()))
        });
        let Some((p, id_name, secret_name)) = found else {
            return Err(OpError::not_found(format!(
                "honeytrail bait in the environment of {} (no variable holds a key placed there; nothing changed)",
                env.arn
            )));
        };
        env.variables.remove(&id_name);
        env.variables.remove(&secret_name);
        workload.put_function_env(&r.function, &env).await?;
        let placement = self.remove_placement(actor, p.placement.id).await?;
        let retired = self.retire_if_unplaced(actor, &p.access_key_id).await?;
        Ok(LambdaPlaced {
            function_arn: env.arn,
            access_key_id: p.access_key_id,
            variables: (id_name, secret_name),
            placement,
            retired,
        })
    }
}

/// Bait in a mailbox: which mailbox and folder, and how to log in. The
/// one declaration behind `deploy mailbox`, the API's body and the Deploy
/// page's form. The password is used for this one connection and kept
/// nowhere.
#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct MailboxRequest {
    /// The IMAP server: imaps://host or imaps://host:port
    #[cfg_attr(feature = "clap", arg(long))]
    pub imap_url: String,
    /// The IMAP user to sign in as
    #[cfg_attr(feature = "clap", arg(long))]
    pub user: String,
    /// Read from standard input on the command line, never a flag.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub password: String,
    /// The folder the message goes into
    #[cfg_attr(feature = "clap", arg(long, default_value = "INBOX"))]
    pub folder: String,
    /// The mailbox's address, when the IMAP user is not one
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub address: Option<String>,
    /// PEM certificates of the CA that signed the IMAP server's certificate
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(skip)]
    pub ca_file: Option<PathBuf>,
    /// The CA's PEM text itself (the API and the web form, which name no
    /// file on the server).
    #[cfg_attr(feature = "clap", arg(skip))]
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// An active key to place (default: a fresh one is minted)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub key: Option<String>,
    /// Delete the message honeytrail placed there (that message only); the key is retired
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub remove: bool,
}

impl std::fmt::Debug for MailboxRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxRequest")
            .field("imap_url", &self.imap_url)
            .field("user", &self.user)
            .field("password", &"***")
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// What `deploy mailbox` did.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxPlaced {
    pub access_key_id: String,
    pub message_id: String,
    pub placement: honeytrail_core::Placement,
    pub retired: bool,
}

fn imap_error(e: String) -> OpError {
    OpError::upstream("imap", e)
}

impl MailboxRequest {
    fn trusted_ca(&self) -> OpResult<Option<crate::imap::TrustedCa>> {
        use crate::imap::TrustedCa;
        match (&self.ca_file, self.ca_pem.as_deref().map(str::trim).filter(|p| !p.is_empty())) {
            (Some(_), Some(_)) => Err(OpError::invalid("give the IMAP server's CA as a file or as PEM text, not both")),
            (Some(f), None) => TrustedCa::from_file(f).map(Some).map_err(OpError::invalid),
            (None, Some(pem)) => TrustedCa::from_pem(pem, "ca_pem").map(Some).map_err(OpError::invalid),
            (None, None) => Ok(None),
        }
    }
}

impl Ops {
    /// The IMAP server named, if honeytrail may connect to it: on
    /// `alerts.allowed_hosts` when that is set, never a metadata or
    /// link-local address.
    fn imap_target(&self, raw: &str) -> OpResult<crate::imap::ImapUrl> {
        let url = crate::imap::ImapUrl::parse(raw).map_err(OpError::invalid)?;
        honeytrail_alert::target::check_host(&url.host, &self.config.alerts.allowed_hosts, "IMAP host")
            .map_err(|f| OpError::invalid(f.message))?;
        Ok(url)
    }
}

impl Ops {
    /// Places a message with a honey key in a mailbox folder (IMAP APPEND
    /// over TLS): a colleague's reply with "the keys for the backup job",
    /// dated days back. The placement names the mailbox, folder and
    /// Message-ID.
    pub async fn deploy_mailbox(&self, actor: &Actor, r: &MailboxRequest) -> OpResult<MailboxPlaced> {
        use honeytrail_core::mail;
        actor.require(Permission::Respond)?;
        let url = self.imap_target(&r.imap_url)?;
        let address = r.address.clone().unwrap_or_else(|| r.user.clone());
        // Checked before anything is minted: the message must be renderable.
        mail::render(
            &mail::MessageInput {
                to: &address,
                access_key_id: "AKIAIOSFODNN7EXAMPLE",
                secret_access_key: "x",
                region: &self.config.render.region,
                now: chrono::Utc::now(),
            },
            &mut rand::thread_rng(),
        )?;
        let mut session =
            crate::imap::connect(&url, &r.user, &r.password, r.trusted_ca()?.as_ref()).await.map_err(imap_error)?;
        let (token, minted) = match &r.key {
            Some(key) => (self.find_token(key).await?, false),
            None => (self.mint(actor, super::tokens::MintRequest::default()).await?, true),
        };
        let secret = self.secret_for_bait(&token).await?;
        let message = mail::render(
            &mail::MessageInput {
                to: &address,
                access_key_id: &token.access_key_id,
                secret_access_key: secret.expose(),
                region: &self.config.render.region,
                now: chrono::Utc::now(),
            },
            &mut rand::thread_rng(),
        )?;
        let host = format!("{} mailbox {}", url.display(), r.user);
        let request = super::placements::PlacementRequest {
            access_key_id: token.access_key_id.clone(),
            host: host.clone(),
            path: mail::placement_path(&message.message_id, &r.folder),
            owner: Some(address),
            asset: Some("mailbox".into()),
            format: Some(mail::FORMAT.into()),
            ..Default::default()
        };
        // Checked before the message goes in, so nothing is placed unrecorded.
        request.to_spot(actor)?;
        let date = message.date.format("%d-%b-%Y %H:%M:%S +0000").to_string();
        if let Err(e) = session.append(&r.folder, "\\Seen", &date, message.text.as_bytes()).await {
            if minted {
                if let Err(cleanup) = self.retire_by(actor, token.id, "never placed: the IMAP APPEND failed").await {
                    tracing::warn!(key = %token.access_key_id, error = %cleanup.message, "a key minted for a mailbox that never got it could not be retired");
                }
            }
            return Err(imap_error(e));
        }
        session.logout().await;
        let hop = honeytrail_store::NewHop {
            description: format!(
                "sent as message {} into {host}, folder {} (IMAP APPEND)",
                message.message_id, r.folder
            ),
            actor: Some(actor.name.clone()),
            automatic: true,
            at: chrono::Utc::now(),
        };
        self.audited(actor, "deploy.mailbox", &token.access_key_id, Some(&host)).add_hop(token.id, &hop).await?;
        let placement = self.add_placement(actor, &request).await?;
        Ok(MailboxPlaced {
            access_key_id: token.access_key_id,
            message_id: message.message_id,
            placement,
            retired: false,
        })
    }

    /// Deletes the message honeytrail placed in that mailbox folder (that
    /// message only), ends the placement, and retires the key when it is
    /// placed nowhere else.
    pub async fn remove_mailbox(&self, actor: &Actor, r: &MailboxRequest) -> OpResult<MailboxPlaced> {
        use honeytrail_core::mail;
        actor.require(Permission::Respond)?;
        let url = self.imap_target(&r.imap_url)?;
        let host = format!("{} mailbox {}", url.display(), r.user);
        let placed = self
            .store
            .placements(&honeytrail_store::PlacementFilter { host: Some(host.clone()), ..Default::default() })
            .await?;
        let found = placed.into_iter().find(|p| {
            p.placement.spot.host == host
                && p.placement.spot.format.as_deref() == Some(mail::FORMAT)
                && p.placement.removed_at.is_none()
                && mail::parts_of(&p.placement.spot.path).is_some_and(|(_, folder)| folder == r.folder)
                && r.key.as_ref().is_none_or(|k| k == &p.access_key_id)
        });
        let Some(p) = found else {
            return Err(OpError::not_found(format!("a message honeytrail placed in {host}, folder {}", r.folder)));
        };
        let (message_id, _) = mail::parts_of(&p.placement.spot.path).unwrap_or_default();
        let message_id = message_id.to_string();
        let mut session =
            crate::imap::connect(&url, &r.user, &r.password, r.trusted_ca()?.as_ref()).await.map_err(imap_error)?;
        let uids = session.uids_of(&r.folder, &message_id).await.map_err(imap_error)?;
        if !uids.is_empty() {
            session.delete(&uids).await.map_err(imap_error)?;
        }
        session.logout().await;
        let placement = self.remove_placement(actor, p.placement.id).await?;
        let retired = self.retire_if_unplaced(actor, &p.access_key_id).await?;
        Ok(MailboxPlaced { access_key_id: p.access_key_id, message_id, placement, retired })
    }

    /// Retires a key placed nowhere any more; whether it did.
    async fn retire_if_unplaced(&self, actor: &Actor, key: &str) -> OpResult<bool> {
        let token = self.find_token(key).await?;
        let placed = self
            .store
            .placements(&honeytrail_store::PlacementFilter { token_id: Some(token.id), ..Default::default() })
            .await?
            .iter()
            .any(|o| o.placement.removed_at.is_none());
        if placed || token.state == honeytrail_core::TokenState::Retired {
            return Ok(false);
        }
        self.retire(actor, key).await?;
        Ok(true)
    }
}

impl Ops {
    /// Places bait in a Lambda function, or (`remove`) takes it out again.
    pub async fn lambda_bait(&self, actor: &Actor, r: &LambdaRequest) -> OpResult<LambdaPlaced> {
        if r.remove {
            self.remove_lambda(actor, r).await
        } else {
            self.deploy_lambda(actor, r).await
        }
    }

    /// Places a message with bait in a mailbox, or (`remove`) deletes it.
    pub async fn mailbox_bait(&self, actor: &Actor, r: &MailboxRequest) -> OpResult<MailboxPlaced> {
        let mut r = r.clone();
        for field in [&mut r.address, &mut r.ca_pem, &mut r.key] {
            *field = field.take().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        }
        if r.remove {
            self.remove_mailbox(actor, &r).await
        } else {
            self.deploy_mailbox(actor, &r).await
        }
    }
}
