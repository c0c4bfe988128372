//! The chain of custody and the moves of a secret: every hop recorded by a
//! person, the secret shown, the bait rendered or written into a file.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::bait::{self, BaitInput, Format, Merged};
use honeytrail_core::{CustodyHop, Placement, Secret, Token};
use honeytrail_place::BaitFile;
use honeytrail_store::NewHop;

use super::placements::PlacementRequest;
use crate::{Actor, OpError, OpErrorKind, OpResult, Ops};

/// Bait to write into a file on this host.
#[derive(Debug, Clone)]
pub struct RenderInto {
    pub key: String,
    pub format: String,
    /// Default: `render.profile`.
    pub profile: Option<String>,
    /// Default: `render.region`.
    pub region: Option<String>,
    pub path: PathBuf,
    /// Replace an entry of the same name (a backup is kept).
    pub force: bool,
    /// The host to record; default: this machine's name.
    pub host: Option<String>,
    /// The placement to record (its host, path and format are filled in);
    /// `None`: record none (the custody hop is recorded all the same).
    pub placement: Option<PlacementRequest>,
}

/// What writing bait into a file did.
#[derive(Debug, Clone)]
pub struct Written {
    pub token: Token,
    pub path: PathBuf,
    pub format: Format,
    pub profile: String,
    pub replaced: bool,
    pub backup: Option<PathBuf>,
    pub placement: Option<Placement>,
}

impl Ops {
    /// Records a hop a person made: "sent by email to ops@example.com".
    pub async fn add_hop(
        &self,
        actor: &Actor,
        key: &str,
        description: &str,
        by: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> OpResult<CustodyHop> {
        actor.require(Permission::Respond)?;
        let description = description.trim();
        if description.is_empty() {
            return Err(OpError::invalid(
                "the hop description is empty; say where the secret went, e.g. \"sent by email to ops@example.com\"",
            ));
        }
        let token = self.find_token(key).await?;
        let hop = NewHop {
            description: description.to_string(),
            actor: Some(by.map(str::to_string).unwrap_or_else(|| actor.name.clone())),
            automatic: false,
            at: at.unwrap_or_else(Utc::now),
        };
        Ok(self.audited(actor, "custody.add", &token.access_key_id, None).add_hop(token.id, &hop).await?)
    }

    pub async fn hops(&self, actor: &Actor, key: &str) -> OpResult<(Token, Vec<CustodyHop>)> {
        actor.require(Permission::Read)?;
        let token = self.find_token(key).await?;
        let hops = self.store.hops(token.id).await?;
        Ok((token, hops))
    }

    /// Shows the secret: a custody hop, since it leaves honeytrail. `shown`
    /// says where ("on a terminal on ht-1").
    pub async fn reveal_secret(&self, actor: &Actor, key: &str, shown: &str) -> OpResult<Secret> {
        actor.require(Permission::Respond)?;
        let token = self.find_token(key).await?;
        let secret = self.store.reveal_secret(token.id).await?.ok_or_else(|| {
            OpError::conflict("no_secret", format!("honeytrail holds no secret for {}", token.access_key_id))
        })?;
        let hop = NewHop {
            description: format!("secret shown {shown}"),
            actor: Some(actor.name.clone()),
            automatic: true,
            at: Utc::now(),
        };
        self.audited(actor, "token.reveal", &token.access_key_id, None).add_hop(token.id, &hop).await?;
        Ok(secret)
    }

    /// Renders bait as text, recording the hop `to` ("to standard output on
    /// ht-1"). The profile and region default to the configuration's.
    pub async fn render_text(
        &self,
        actor: &Actor,
        key: &str,
        format: &str,
        profile: Option<&str>,
        region: Option<&str>,
        to: &str,
    ) -> OpResult<String> {
        actor.require(Permission::Respond)?;
        let format = key_format(format)?;
        let token = self.find_token(key).await?;
        let secret = self.secret_for_bait(&token).await?;
        let render = &self.config.render;
        let input = BaitInput {
            access_key_id: &token.access_key_id,
            secret_access_key: secret.expose(),
            profile: profile.unwrap_or(&render.profile),
            region: region.unwrap_or(&render.region),
            session: None,
        };
        let text = bait::render(format, &input);
        let hop = NewHop {
            description: format!("rendered as {format} {to}"),
            actor: Some(actor.name.clone()),
            automatic: true,
            at: Utc::now(),
        };
        self.audited(actor, "token.render", &token.access_key_id, Some(format.name())).add_hop(token.id, &hop).await?;
        Ok(text)
    }

    /// Writes bait into a file on this host: merged into what is there
    /// without touching other entries (the old file is kept in
    /// `<data_dir>/backups/`), written atomically with the old file's owner
    /// and mode (new files 0600, owned like their directory), never through
    /// a link another user planted; then the custody hop and the placement
    /// are recorded.
    pub async fn render_into(&self, actor: &Actor, r: RenderInto) -> OpResult<Written> {
        actor.require(Permission::Respond)?;
        let format = key_format(&r.format)?;
        let token = self.find_token(&r.key).await?;
        let secret = self.secret_for_bait(&token).await?;
        let profile = r.profile.clone().unwrap_or_else(|| self.config.render.profile.clone());
        let region = r.region.clone().unwrap_or_else(|| self.config.render.region.clone());
        let input = BaitInput {
            access_key_id: &token.access_key_id,
            secret_access_key: secret.expose(),
            profile: &profile,
            region: &region,
            session: None,
        };
        let path = std::path::absolute(&r.path).map_err(|e| file_error(&r.path, "resolve", e))?;
        // Opened without following links anyone else planted; the old
        // content goes to honeytrail's own backups, never beside the bait.
        let file = BaitFile::open(&path).map_err(|e| OpError::new(OpErrorKind::Invalid, "file", e.to_string()))?;
        let Merged { content, replaced } = bait::merge(format, file.existing.as_deref().unwrap_or(""), &input, r.force)
            .map_err(|e| {
                OpError::conflict("exists", format!("not writing {}: {e}", path.display()))
                    .with_cli_hint("--profile names another profile; --force replaces, keeping a backup")
            })?;
        let backup = file
            .replace(&content, &self.config.data_dir().join("backups"))
            .map_err(|e| OpError::new(OpErrorKind::Invalid, "file", e.to_string()))?;
        let host = r.host.clone().unwrap_or_else(crate::context::hostname);
        let hop = NewHop {
            description: format!("written to {} on {host} by honeytrail render ({format})", path.display()),
            actor: Some(actor.name.clone()),
            automatic: true,
            at: Utc::now(),
        };
        self.audited(actor, "token.render", &token.access_key_id, Some(&path.display().to_string()))
            .add_hop(token.id, &hop)
            .await?;
        let placement = match r.placement {
            Some(p) => {
                let request = PlacementRequest {
                    access_key_id: token.access_key_id.clone(),
                    host,
                    path: path.display().to_string(),
                    format: Some(format.name().to_string()),
                    ..p
                };
                Some(self.add_placement(actor, &request).await?)
            }
            None => None,
        };
        Ok(Written { token, path, format, profile, replaced, backup, placement })
    }
}

fn file_error(path: &Path, what: &str, e: std::io::Error) -> OpError {
    OpError::new(OpErrorKind::Invalid, "file", format!("cannot {what} {}: {e}", path.display()))
}

/// A format bait made from a token's key may take: a format that holds only
/// session credentials (the AWS CLI's cache) would hold a long-lived key
/// without a session token, which no real cache does.
fn key_format(raw: &str) -> OpResult<Format> {
    let format: Format = raw.parse()?;
    if format.session_only() {
        return Err(OpError::invalid(format!(
            "{format} holds session credentials only, never a key: choose another format, or place session \
             canaries with a template of credential session (docs/fleet.md)"
        )));
    }
    Ok(format)
}
