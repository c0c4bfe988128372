//! Placements: where a token sits, recorded by hand, by `render --into`, by
//! import, or (later) by the fleet agent.

use chrono::{DateTime, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::bait::Format;
use honeytrail_core::encoding::spreadsheet_cell;
use honeytrail_core::model::PlacedToken;
use honeytrail_core::model::PLACEMENT_FIELDS;
use honeytrail_core::{Labels, Placement, Spot};
use honeytrail_store::PlacementFilter;
use serde::{Deserialize, Serialize};

use super::tokens::blank;
use crate::{Actor, OpError, OpResult, Ops};

/// A placement to record: the token and every field of the place. The one
/// declaration behind the API body and the web form, and what the command
/// line's place flags (`placement add`, `render --into`, `token import`)
/// are turned into.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    /// Access key ID or token number (`#N`); filled in by the operation
    /// when the placement comes with its token (import, render).
    #[serde(default)]
    pub access_key_id: String,
    pub host: String,
    pub path: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub asset: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Who placed it; default: the actor.
    #[serde(default)]
    pub placed_by: Option<String>,
    /// When it was placed; default: now.
    #[serde(default)]
    pub placed_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::ops::input::labels")]
    pub labels: Labels,
    /// The EC2 instance the key sits on (`i-0abc…`), for quarantine.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The owner's real IAM user, for key deactivation and deny policies.
    #[serde(default)]
    pub iam_user: Option<String>,
    /// The AWS account (12 digits) that owns the instance and the user.
    #[serde(default)]
    pub aws_account: Option<String>,
}

/// Which placements to list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlacementQuery {
    pub host: Option<String>,
    pub owner: Option<String>,
    pub token: Option<String>,
    #[serde(default)]
    pub all: bool,
    /// A page of at most this many (100 when not given, at most 1000); for
    /// [`Ops::placement_page`].
    pub limit: Option<i64>,
    /// Where the page starts: the `next` cursor of the page before.
    pub cursor: Option<String>,
}

impl PlacementRequest {
    /// The place as stored: trimmed, blanks dropped, the format checked.
    pub fn to_spot(&self, actor: &Actor) -> OpResult<Spot> {
        if self.host.trim().is_empty() || self.path.trim().is_empty() {
            return Err(OpError::invalid("a placement needs a host and a path"));
        }
        let format = blank(&self.format);
        // A bait format, or a place that is no file: a Lambda function's
        // environment, a message in a mailbox.
        if let Some(f) =
            format.as_deref().filter(|f| ![honeytrail_core::lambda::FORMAT, honeytrail_core::mail::FORMAT].contains(f))
        {
            f.parse::<Format>()?;
        }
        let mut spot = Spot {
            host: self.host.trim().to_string(),
            path: self.path.trim().to_string(),
            owner: blank(&self.owner),
            asset: blank(&self.asset),
            serial: blank(&self.serial),
            format,
            placed_by: Some(blank(&self.placed_by).unwrap_or_else(|| actor.name.clone())),
            notes: blank(&self.notes),
            labels: self.labels.clone(),
            instance_id: self.instance_id.clone(),
            iam_user: self.iam_user.clone(),
            aws_account: self.aws_account.clone(),
        };
        spot.check_targets()?;
        Ok(spot)
    }
}

impl Ops {
    pub async fn add_placement(&self, actor: &Actor, r: &PlacementRequest) -> OpResult<Placement> {
        actor.require(Permission::Respond)?;
        if r.access_key_id.trim().is_empty() {
            return Err(OpError::invalid("a placement needs the token: its access key ID or #N"));
        }
        let token = self.find_token(&r.access_key_id).await?;
        let spot = r.to_spot(actor)?;
        let detail = format!("on {} in {}", spot.host, spot.path);
        let p = self
            .audited(actor, "placement.add", &token.access_key_id, Some(&detail))
            .add_placement(token.id, &spot, r.placed_at.unwrap_or_else(Utc::now))
            .await?;
        Ok(p)
    }

    pub async fn remove_placement(&self, actor: &Actor, id: i64) -> OpResult<Placement> {
        actor.require(Permission::Respond)?;
        Ok(self
            .audited(actor, "placement.remove", &format!("placement #{id}"), None)
            .remove_placement(id, Utc::now())
            .await?)
    }

    async fn placement_filter(&self, q: &PlacementQuery) -> OpResult<PlacementFilter> {
        let token_id = match blank(&q.token) {
            Some(t) => Some(self.find_token(&t).await?.id),
            None => None,
        };
        Ok(PlacementFilter {
            token_id,
            host: blank(&q.host),
            owner: blank(&q.owner),
            include_removed: q.all,
            ..Default::default()
        })
    }

    /// The placements the query selects as a CSV file
    /// ([`write_csv`]), for spreadsheets.
    pub async fn placements_csv(&self, actor: &Actor, q: &PlacementQuery) -> OpResult<Vec<u8>> {
        let placements = self.search_placements(actor, q).await?;
        let mut out = Vec::new();
        write_csv(&placements, &mut out).map_err(|e| {
            OpError::new(crate::OpErrorKind::Unavailable, "export_failed", format!("cannot write the CSV: {e}"))
        })?;
        Ok(out)
    }

    /// Every placement the query selects (the command line, CSV exports).
    pub async fn search_placements(&self, actor: &Actor, q: &PlacementQuery) -> OpResult<Vec<PlacedToken>> {
        actor.require(Permission::Read)?;
        Ok(self.store.placements(&self.placement_filter(q).await?).await?)
    }

    /// One page of [`Ops::search_placements`], cut in the database (keyset
    /// on the placement ID), with the cursor of the next page.
    pub async fn placement_page(&self, actor: &Actor, q: &PlacementQuery) -> OpResult<crate::ops::Page<PlacedToken>> {
        actor.require(Permission::Read)?;
        use crate::ops::tokens::{cursor_at, page_limit, page_of};
        let limit = page_limit(q.limit)?;
        let mut filter = self.placement_filter(q).await?;
        filter.after_id = cursor_at(&q.cursor, 'p', |id| id.parse().ok())?;
        filter.limit = Some(limit + 1);
        Ok(page_of(self.store.placements(&filter).await?, limit, |p| format!("p{}", p.placement.id)))
    }
}

/// The placements as CSV, for spreadsheets: the placement's number and key,
/// its fields in [`PLACEMENT_FIELDS`] order, then when it was placed and
/// removed, and its labels. Cells that would start a formula are defused.
pub fn write_csv(placements: &[PlacedToken], out: impl std::io::Write) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    let header =
        ["placement", "access_key_id"].into_iter().chain(PLACEMENT_FIELDS).chain(["placed_at", "removed_at", "labels"]);
    w.write_record(header)?;
    for p in placements {
        let s = &p.placement.spot;
        let mut row = vec![p.placement.id.to_string(), p.access_key_id.clone()];
        row.extend(PLACEMENT_FIELDS.iter().map(|f| s.field(f).unwrap_or("").to_string()));
        row.push(p.placement.placed_at.to_rfc3339());
        row.push(p.placement.removed_at.map(|r| r.to_rfc3339()).unwrap_or_default());
        row.push(honeytrail_core::model::labels_text(&s.labels));
        w.write_record(row.iter().map(|cell| spreadsheet_cell(cell).into_owned()))?;
    }
    w.flush()?;
    Ok(())
}
