//! Tokens, labels, placements and custody hops.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use honeytrail_core::{CustodyHop, Labels, NewToken, Placement, Spot, Token, TokenKind, TokenState};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Backend, Store, StoreError};
pub use honeytrail_core::model::PlacedToken;

/// Which tokens to list.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub state: Option<TokenState>,
    pub kind: Option<TokenKind>,
    /// `(name, value)`; a `None` value matches any value of that label.
    pub label: Option<(String, Option<String>)>,
    pub iam_user_name: Option<String>,
    /// Placed (now or before) on a host whose name contains this, any case.
    pub host: Option<String>,
    /// Placed (now or before) with an owner whose name contains this, any case.
    pub owner: Option<String>,
    /// Only tokens with an ID above this: the cursor of the page before.
    pub after_id: Option<i64>,
    /// At most this many tokens, in ID order.
    pub limit: Option<i64>,
}

impl TokenFilter {
    /// Active keys minted by honeytrail: the ones it can act on in AWS.
    pub fn active_minted() -> TokenFilter {
        TokenFilter { state: Some(TokenState::Active), kind: Some(TokenKind::AwsMinted), ..TokenFilter::default() }
    }
}

/// The columns a token is recognised by in CloudTrail.
#[derive(Debug, Clone, Copy)]
pub struct TokenIdentity<'a> {
    pub id: i64,
    pub retired: bool,
    /// A decoy resource, known by its ARN (`access_key_id`).
    pub decoy: bool,
    pub access_key_id: &'a str,
    pub iam_user_arn: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub iam_user_name: Option<&'a str>,
}

/// Which placements to list. Host and owner match case-insensitive substrings.
#[derive(Debug, Clone, Default)]
pub struct PlacementFilter {
    pub token_id: Option<i64>,
    pub host: Option<String>,
    pub owner: Option<String>,
    pub include_removed: bool,
    /// Only placements with an ID above this: the cursor of the page before.
    pub after_id: Option<i64>,
    /// At most this many, in ID order.
    pub limit: Option<i64>,
}

/// A custody hop to record.
#[derive(Debug, Clone)]
pub struct NewHop {
    pub description: String,
    pub actor: Option<String>,
    pub automatic: bool,
    pub at: DateTime<Utc>,
}

/// How many tokens were ever added and retired: one row, counted in the
/// same transaction as each change, so reading it costs the same at ten
/// tokens or ten million.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFingerprint {
    pub added: i64,
    pub retired: i64,
}

/// Counts tokens added or retired in the change's own transaction.
pub(crate) async fn count_changes(
    tx: &mut Transaction<'static, Any>,
    added: usize,
    retired: u64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE registry_changes SET added = added + $1, retired = retired + $2 WHERE id = 1")
        .bind(added as i64)
        .bind(retired as i64)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One token of a bulk import, with where it already sits.
#[derive(Debug, Clone, Default)]
pub struct ImportRow {
    pub token: NewToken,
    pub placements: Vec<Spot>,
    pub hops: Vec<NewHop>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: usize,
    pub skipped_existing: usize,
    pub placements: usize,
}

/// A bind value for statements built at run time.
#[derive(Debug, Clone)]
enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
        };
    }
    q
}

/// `($1, $2), ($3, $4)` for `rows` rows of `cols` columns.
///
/// SQLite gets anonymous `?` placeholders instead: it looks up the name of
/// every numbered parameter by walking a list, which makes binding thousands
/// of `$N` parameters quadratic.
fn values_clause(backend: Backend, rows: usize, cols: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => out.push_str(&format!("${}", r * cols + c + 1)),
            }
        }
        out.push(')');
    }
    out
}

/// Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bind limits.
const BATCH_ROWS: usize = 400;

const TOKEN_COLUMNS: &str = "id, kind, access_key_id, CASE WHEN secret_sealed IS NULL THEN 0 ELSE 1 END AS has_secret, iam_user_name, iam_user_arn, account_id, source, memo, state, created_at, retired_at, rotated_from";
const PLACEMENT_COLUMNS: &str = "p.id, p.token_id, p.host, p.path, p.owner, p.asset, p.serial, p.format, p.placed_by, p.notes, p.labels, p.placed_at, p.removed_at, p.instance_id, p.iam_user, p.aws_account";

/// Tokens read in one query by [`Store::each_token_identity_after`].
const IDENTITY_CHUNK: i64 = 50_000;

/// One chunk of token identities, packed: per token
/// `ID,S,` (S `r` retired, `a` otherwise, followed by `d` for a decoy) then the key, the ARN, the account
/// and the user name, each as `LENGTH:VALUE` (bytes) or `-1:` when NULL.
/// One `concat` a row (NULL is empty in it, as in PostgreSQL's): chains of
/// `||` cost SQLite a new string each. `concat`, `string_agg` and
/// `octet_length` are in PostgreSQL and in SQLite since 3.44 (the bundled
/// one is newer).
const IDENTITY_CHUNK_SQL: &str = "SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(string_agg(packed, ''), '') FROM (\
     SELECT id, concat(id, ',', CASE WHEN state = 'retired' THEN 'r' ELSE 'a' END, \
     CASE WHEN kind = 'aws-decoy' THEN 'd' ELSE '' END, ',', \
     octet_length(access_key_id), ':', access_key_id, \
     COALESCE(octet_length(iam_user_arn), -1), ':', iam_user_arn, \
     COALESCE(octet_length(account_id), -1), ':', account_id, \
     COALESCE(octet_length(iam_user_name), -1), ':', iam_user_name) AS packed \
     FROM tokens WHERE id > $1 ORDER BY id LIMIT $2) chunk";

/// The first identity of a packed chunk and what follows it.
fn unpack_identity(s: &str) -> Option<(TokenIdentity<'_>, &str)> {
    let (id, s) = s.split_once(',')?;
    let (state, s) = s.split_once(',')?;
    fn value(s: &str) -> Option<(Option<&str>, &str)> {
        let (len, s) = s.split_once(':')?;
        if len == "-1" {
            return Some((None, s));
        }
        let len: usize = len.parse().ok()?;
        Some((Some(s.get(..len)?), s.get(len..)?))
    }
    let (key, s) = value(s)?;
    let (arn, s) = value(s)?;
    let (account, s) = value(s)?;
    let (user, s) = value(s)?;
    let identity = TokenIdentity {
        id: id.parse().ok()?,
        retired: state.starts_with('r'),
        decoy: state.ends_with('d'),
        access_key_id: key?,
        iam_user_arn: arn,
        account_id: account,
        iam_user_name: user,
    };
    Some((identity, s))
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt { what: "timestamp", detail: ms.to_string() })
}

fn token_from_row(row: &AnyRow) -> Result<Token, StoreError> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    Ok(Token {
        id: row.try_get("id")?,
        kind: kind
            .parse()
            .map_err(|e: honeytrail_core::Invalid| StoreError::Corrupt { what: "token kind", detail: e.0 })?,
        access_key_id: row.try_get("access_key_id")?,
        has_secret: row.try_get::<i64, _>("has_secret")? != 0,
        iam_user_name: row.try_get("iam_user_name")?,
        iam_user_arn: row.try_get("iam_user_arn")?,
        account_id: row.try_get("account_id")?,
        source: row.try_get("source")?,
        memo: row.try_get("memo")?,
        labels: Labels::new(),
        state: state
            .parse()
            .map_err(|e: honeytrail_core::Invalid| StoreError::Corrupt { what: "token state", detail: e.0 })?,
        created_at: from_millis(row.try_get("created_at")?)?,
        retired_at: row.try_get::<Option<i64>, _>("retired_at")?.map(from_millis).transpose()?,
        rotated_from: row.try_get("rotated_from")?,
    })
}

fn placement_from_row(row: &AnyRow) -> Result<Placement, StoreError> {
    let labels: String = row.try_get("labels")?;
    Ok(Placement {
        id: row.try_get("id")?,
        token_id: row.try_get("token_id")?,
        spot: Spot {
            host: row.try_get("host")?,
            path: row.try_get("path")?,
            owner: row.try_get("owner")?,
            asset: row.try_get("asset")?,
            serial: row.try_get("serial")?,
            format: row.try_get("format")?,
            placed_by: row.try_get("placed_by")?,
            notes: row.try_get("notes")?,
            labels: serde_json::from_str(&labels)
                .map_err(|e| StoreError::Corrupt { what: "placement labels", detail: e.to_string() })?,
            instance_id: row.try_get("instance_id")?,
            iam_user: row.try_get("iam_user")?,
            aws_account: row.try_get("aws_account")?,
        },
        placed_at: from_millis(row.try_get("placed_at")?)?,
        removed_at: row.try_get::<Option<i64>, _>("removed_at")?.map(from_millis).transpose()?,
    })
}

fn hop_from_row(row: &AnyRow) -> Result<CustodyHop, StoreError> {
    Ok(CustodyHop {
        id: row.try_get("id")?,
        token_id: row.try_get("token_id")?,
        seq: row.try_get("seq")?,
        at: from_millis(row.try_get("at")?)?,
        description: row.try_get("description")?,
        actor: row.try_get("actor")?,
        automatic: row.try_get::<i64, _>("automatic")? != 0,
    })
}

/// Escapes `%`, `_` and `\` for a LIKE pattern and wraps it for a substring match.
fn like_pattern(s: &str) -> String {
    let mut out = String::from("%");
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("23505") | Some("2067") | Some("1555")),
        _ => false,
    }
}

impl Store {
    fn seal(&self, token: &NewToken) -> Result<Option<String>, StoreError> {
        match &token.secret {
            None => Ok(None),
            Some(secret) => Ok(Some(self.secrets.as_ref().ok_or(StoreError::NoSecretKey)?.seal(secret))),
        }
    }

    fn token_args(&self, t: &NewToken, now: DateTime<Utc>) -> Result<Vec<Arg>, StoreError> {
        Ok(vec![
            Arg::Text(Some(t.kind.unwrap_or(TokenKind::AwsImported).as_str().to_string())),
            Arg::Text(Some(t.access_key_id.clone())),
            Arg::Text(self.seal(t)?),
            Arg::Text(t.iam_user_name.clone()),
            Arg::Text(t.iam_user_arn.clone()),
            Arg::Text(t.account_id.clone()),
            Arg::Text(t.source.clone()),
            Arg::Text(Some(t.memo.clone())),
            Arg::Text(Some(TokenState::Active.as_str().to_string())),
            Arg::Int(Some(millis(t.created_at.unwrap_or(now)))),
            Arg::Int(t.rotated_from),
        ])
    }

    /// Registers one token with its first placements and custody hops, all
    /// in one transaction.
    pub async fn insert_token(
        &self,
        new: &NewToken,
        placements: &[Spot],
        hops: &[NewHop],
    ) -> Result<Token, StoreError> {
        let mut tx = self.begin_write().await?;
        let id = self.insert_token_tx(&mut tx, new, placements, hops).await?;
        self.commit(tx).await?;
        self.token(id).await
    }

    pub(crate) async fn insert_token_tx(
        &self,
        tx: &mut Transaction<'static, Any>,
        new: &NewToken,
        placements: &[Spot],
        hops: &[NewHop],
    ) -> Result<i64, StoreError> {
        if let Some(row) = sqlx::query("SELECT id FROM tokens WHERE access_key_id = $1")
            .bind(&new.access_key_id)
            .fetch_optional(&mut **tx)
            .await?
        {
            return Err(StoreError::Duplicate {
                access_key_id: new.access_key_id.clone(),
                existing_id: row.try_get(0)?,
            });
        }
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO tokens (kind, access_key_id, secret_sealed, iam_user_name, iam_user_arn, account_id, source, memo, state, created_at, rotated_from) VALUES {} RETURNING id",
            values_clause(Backend::Postgres, 1, 11)
        );
        let row = bind_all(sqlx::query(&sql), self.token_args(new, now)?).fetch_one(&mut **tx).await.map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate { access_key_id: new.access_key_id.clone(), existing_id: 0 }
            } else {
                e.into()
            }
        })?;
        let id: i64 = row.try_get(0)?;
        count_changes(tx, 1, 0).await?;
        let labels: Vec<(i64, &String, &String)> = new.labels.iter().map(|(k, v)| (id, k, v)).collect();
        insert_labels(self.backend, tx, &labels).await?;
        let spots: Vec<(i64, &Spot)> = placements.iter().map(|s| (id, s)).collect();
        insert_placements(self.backend, tx, &spots, now).await?;
        for hop in hops {
            insert_hop(tx, id, hop).await?;
        }
        Ok(id)
    }

    /// Imports many tokens in one transaction: either all of them land or none.
    pub async fn import_tokens(&self, rows: &[ImportRow], skip_existing: bool) -> Result<ImportSummary, StoreError> {
        let mut tx = self.begin_write().await?;
        let existing: HashSet<String> = sqlx::query("SELECT access_key_id FROM tokens")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        let mut seen = HashSet::with_capacity(rows.len());
        let mut dupes = Vec::new();
        let mut fresh = Vec::with_capacity(rows.len());
        for row in rows {
            let key = &row.token.access_key_id;
            if existing.contains(key) || !seen.insert(key.clone()) {
                dupes.push(key.clone());
            } else {
                fresh.push(row);
            }
        }
        if !dupes.is_empty() && !skip_existing {
            return Err(StoreError::ImportDuplicates { count: dupes.len(), example: dupes[0].clone() });
        }
        let now = Utc::now();
        let mut ids: HashMap<String, i64> = HashMap::with_capacity(fresh.len());
        for chunk in fresh.chunks(BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO tokens (kind, access_key_id, secret_sealed, iam_user_name, iam_user_arn, account_id, source, memo, state, created_at, rotated_from) VALUES {} RETURNING id, access_key_id",
                values_clause(self.backend, chunk.len(), 11)
            );
            let mut args = Vec::with_capacity(chunk.len() * 11);
            for row in chunk {
                args.extend(self.token_args(&row.token, now)?);
            }
            for r in bind_all(sqlx::query(&sql), args).fetch_all(&mut *tx).await? {
                ids.insert(r.try_get(1)?, r.try_get(0)?);
            }
        }
        count_changes(&mut tx, fresh.len(), 0).await?;
        let id_of = |row: &ImportRow| ids[&row.token.access_key_id];
        let labels: Vec<(i64, &String, &String)> =
            fresh.iter().flat_map(|row| row.token.labels.iter().map(move |(k, v)| (id_of(row), k, v))).collect();
        insert_labels(self.backend, &mut tx, &labels).await?;
        let spots: Vec<(i64, &Spot)> =
            fresh.iter().flat_map(|row| row.placements.iter().map(move |s| (id_of(row), s))).collect();
        insert_placements(self.backend, &mut tx, &spots, now).await?;
        // The tokens are new, so their hops are numbered from 1 here rather
        // than one MAX(seq) look-up per hop.
        let hops: Vec<(i64, i64, &NewHop)> = fresh
            .iter()
            .flat_map(|row| row.hops.iter().enumerate().map(move |(i, h)| (id_of(row), i as i64 + 1, h)))
            .collect();
        for chunk in hops.chunks(BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO custody_hops (token_id, seq, at, description, actor, automatic) VALUES {}",
                values_clause(self.backend, chunk.len(), 6)
            );
            let args = chunk
                .iter()
                .flat_map(|(id, seq, h)| {
                    [
                        Arg::Int(Some(*id)),
                        Arg::Int(Some(*seq)),
                        Arg::Int(Some(millis(h.at))),
                        Arg::Text(Some(h.description.clone())),
                        Arg::Text(h.actor.clone()),
                        Arg::Int(Some(h.automatic as i64)),
                    ]
                })
                .collect();
            bind_all(sqlx::query(&sql), args).execute(&mut *tx).await?;
        }
        self.commit(tx).await?;
        Ok(ImportSummary { imported: fresh.len(), skipped_existing: dupes.len(), placements: spots.len() })
    }

    pub async fn token(&self, id: i64) -> Result<Token, StoreError> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token #{id}")))?;
        let mut token = token_from_row(&row)?;
        token.labels = self.labels_of(id).await?;
        Ok(token)
    }

    pub async fn token_by_key(&self, access_key_id: &str) -> Result<Option<Token>, StoreError> {
        let row = sqlx::query("SELECT id FROM tokens WHERE access_key_id = $1")
            .bind(access_key_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.token(r.try_get(0)?).await?)),
            None => Ok(None),
        }
    }

    /// Whether a token (of any state) is known by the identity ARN `arn`.
    pub async fn arn_in_use(&self, arn: &str) -> Result<bool, StoreError> {
        let row =
            sqlx::query("SELECT id FROM tokens WHERE iam_user_arn = $1").bind(arn).fetch_optional(&self.pool).await?;
        Ok(row.is_some())
    }

    /// Finds a token by access key ID or by `#N` / `N` token number.
    pub async fn find_token(&self, reference: &str) -> Result<Token, StoreError> {
        let r = reference.trim();
        if let Ok(id) = r.trim_start_matches('#').parse::<i64>() {
            return self.token(id).await;
        }
        self.token_by_key(r).await?.ok_or_else(|| StoreError::NotFound(format!("token {r:?}")))
    }

    async fn labels_of(&self, id: i64) -> Result<Labels, StoreError> {
        let rows = sqlx::query("SELECT name, value FROM token_labels WHERE token_id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// Visits the identity columns of every token (what the match index is
    /// made of), a chunk of tokens at a time: no labels, secrets or notes
    /// are read, and the rows are never all in memory at once.
    pub async fn each_token_identity(&self, visit: impl FnMut(TokenIdentity<'_>)) -> Result<(), StoreError> {
        self.each_token_identity_after(0, visit).await
    }

    /// [`Store::each_token_identity`] for the tokens with an ID above `after`
    /// (those registered since), in ID order.
    pub async fn each_token_identity_after(
        &self,
        after: i64,
        visit: impl FnMut(TokenIdentity<'_>),
    ) -> Result<(), StoreError> {
        self.each_token_identity_in_chunks(after, IDENTITY_CHUNK, visit).await
    }

    /// [`Store::each_token_identity_after`], reading `chunk` tokens a query.
    pub async fn each_token_identity_in_chunks(
        &self,
        after: i64,
        chunk: i64,
        mut visit: impl FnMut(TokenIdentity<'_>),
    ) -> Result<(), StoreError> {
        let chunk = chunk.max(1);
        // Tokens come packed, `chunk` to one string: the per-row cost of the
        // driver (a row object, its values, a channel hop) is paid per chunk,
        // not per token, which is most of the time of reading a million.
        // Each value is written with its byte length before it, so no content
        // of any column can be misread. Each chunk's reply names its last ID, so the next chunk is asked
        // for before this one is unpacked: the database produces one while
        // the caller indexes the other.
        let fetch = |after: i64| {
            let pool = self.pool.clone();
            tokio::spawn(async move {
                let row = sqlx::query(IDENTITY_CHUNK_SQL).bind(after).bind(chunk).fetch_one(&pool).await?;
                let count: i64 = row.try_get(0)?;
                let last: i64 = row.try_get(1)?;
                let packed: String = row.try_get(2)?;
                Ok::<_, StoreError>((count, last, packed))
            })
        };
        let mut pending = Some(fetch(after));
        while let Some(next) = pending.take() {
            let (count, last, packed) =
                next.await.map_err(|e| StoreError::Refused(format!("reading the token identities stopped: {e}")))??;
            if count == chunk {
                pending = Some(fetch(last));
            }
            let mut rest = packed.as_str();
            while !rest.is_empty() {
                let (identity, tail) = unpack_identity(rest).ok_or_else(|| {
                    StoreError::Refused("the token table read back in a shape honeytrail did not write".into())
                })?;
                visit(identity);
                rest = tail;
            }
        }
        Ok(())
    }

    /// How many tokens are registered, retired ones included.
    pub async fn token_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM tokens").fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// The token table's change counters, for the match index: one row
    /// read, whatever the number of tokens. When only `added` grew, tokens
    /// were only added (though not necessarily in ID order).
    pub async fn token_fingerprint(&self) -> Result<TokenFingerprint, StoreError> {
        let r = sqlx::query("SELECT added, retired FROM registry_changes WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(TokenFingerprint { added: r.try_get(0)?, retired: r.try_get(1)? })
    }

    pub async fn list_tokens(&self, filter: &TokenFilter) -> Result<Vec<Token>, StoreError> {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        let mut arg = |a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if let Some(state) = filter.state {
            clauses.push(format!("state = {}", arg(Arg::Text(Some(state.as_str().into())))));
        }
        if let Some(kind) = filter.kind {
            clauses.push(format!("kind = {}", arg(Arg::Text(Some(kind.as_str().into())))));
        }
        if let Some(user) = &filter.iam_user_name {
            clauses.push(format!("iam_user_name = {}", arg(Arg::Text(Some(user.clone())))));
        }
        if let Some(host) = &filter.host {
            let h = arg(Arg::Text(Some(like_pattern(host))));
            clauses.push(format!("id IN (SELECT token_id FROM placements WHERE LOWER(host) LIKE {h} ESCAPE '\\')"));
        }
        if let Some(owner) = &filter.owner {
            let o = arg(Arg::Text(Some(like_pattern(owner))));
            clauses.push(format!("id IN (SELECT token_id FROM placements WHERE LOWER(owner) LIKE {o} ESCAPE '\\')"));
        }
        if let Some(after) = filter.after_id {
            clauses.push(format!("id > {}", arg(Arg::Int(Some(after)))));
        }
        // A page of one label's tokens and nothing else to filter: the
        // cursor and the limit go into the label's index range scan.
        let label_only = filter.state.is_none()
            && filter.kind.is_none()
            && filter.iam_user_name.is_none()
            && filter.host.is_none()
            && filter.owner.is_none()
            && filter.limit.is_some();
        if let Some((name, value)) = &filter.label {
            let n = arg(Arg::Text(Some(name.clone())));
            match value {
                Some(v) if label_only => {
                    let v = arg(Arg::Text(Some(v.clone())));
                    let after = arg(Arg::Int(Some(filter.after_id.unwrap_or(0))));
                    clauses.push(format!(
                        "id IN (SELECT token_id FROM token_labels WHERE name = {n} AND value = {v} AND token_id > {after} \
                         ORDER BY token_id LIMIT {})",
                        filter.limit.unwrap_or(0).max(0)
                    ));
                }
                Some(v) => {
                    let v = arg(Arg::Text(Some(v.clone())));
                    clauses.push(format!("id IN (SELECT token_id FROM token_labels WHERE name = {n} AND value = {v})"));
                }
                None => clauses.push(format!("id IN (SELECT token_id FROM token_labels WHERE name = {n})")),
            }
        }
        let mut filter_sql =
            if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        filter_sql.push_str(" ORDER BY id");
        if let Some(limit) = filter.limit {
            filter_sql.push_str(&format!(" LIMIT {}", limit.max(0)));
        }
        let rows = bind_all(sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM tokens{filter_sql}")), args.clone())
            .fetch_all(&self.pool)
            .await?;
        let mut tokens: Vec<Token> = rows.iter().map(token_from_row).collect::<Result<_, _>>()?;
        let label_rows = bind_all(
            sqlx::query(&format!(
                "SELECT token_id, name, value FROM token_labels WHERE token_id IN (SELECT id FROM tokens{filter_sql})"
            )),
            args,
        )
        .fetch_all(&self.pool)
        .await?;
        let position: HashMap<i64, usize> = tokens.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        for r in label_rows {
            let token_id: i64 = r.try_get(0)?;
            if let Some(&i) = position.get(&token_id) {
                tokens[i].labels.insert(r.try_get(1)?, r.try_get(2)?);
            }
        }
        Ok(tokens)
    }

    /// The sealed secret of a token, opened.
    pub async fn reveal_secret(&self, id: i64) -> Result<Option<honeytrail_core::Secret>, StoreError> {
        let row = sqlx::query("SELECT secret_sealed FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token #{id}")))?;
        let sealed: Option<String> = row.try_get(0)?;
        match sealed {
            None => Ok(None),
            Some(s) => Ok(Some(self.secrets.as_ref().ok_or(StoreError::NoSecretKey)?.open(&s)?)),
        }
    }

    /// Marks a token retired. Its history (placements, custody) is kept.
    pub async fn retire_token(&self, id: i64, at: DateTime<Utc>) -> Result<Token, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE tokens SET state = $1, retired_at = $2 WHERE id = $3 AND state = $4")
            .bind(TokenState::Retired.as_str())
            .bind(millis(at))
            .bind(id)
            .bind(TokenState::Active.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            // Either unknown (NotFound from token()) or already retired: both
            // fine to report as is, and nothing to audit.
            tx.rollback().await?;
            return self.token(id).await;
        }
        count_changes(&mut tx, 0, done.rows_affected()).await?;
        self.commit(tx).await?;
        self.token(id).await
    }

    /// Registers `new` as the replacement of token `old_id`: the new token gets
    /// the old one's active placements, and the old one is retired, in one transaction.
    pub async fn record_rotation(
        &self,
        old_id: i64,
        new: &NewToken,
        hops: &[NewHop],
        at: DateTime<Utc>,
    ) -> Result<Token, StoreError> {
        let old = self.token(old_id).await?;
        let carried: Vec<Spot> = self
            .placements(&PlacementFilter { token_id: Some(old_id), ..Default::default() })
            .await?
            .into_iter()
            .map(|p| {
                let mut spot = p.placement.spot;
                let note = format!("carried over from {} at rotation; re-render the bait here", old.access_key_id);
                spot.notes = Some(match spot.notes {
                    Some(n) if !n.is_empty() => format!("{n}; {note}"),
                    _ => note,
                });
                spot
            })
            .collect();
        let mut new = new.clone();
        new.rotated_from = Some(old_id);
        if new.labels.is_empty() {
            new.labels = old.labels.clone();
        }
        let mut tx = self.begin_write().await?;
        let id = self.insert_token_tx(&mut tx, &new, &carried, hops).await?;
        let retired = sqlx::query("UPDATE tokens SET state = $1, retired_at = $2 WHERE id = $3")
            .bind(TokenState::Retired.as_str())
            .bind(millis(at))
            .bind(old_id)
            .execute(&mut *tx)
            .await?;
        count_changes(&mut tx, 0, retired.rows_affected()).await?;
        self.commit(tx).await?;
        self.token(id).await
    }

    pub async fn add_placement(&self, token_id: i64, spot: &Spot, at: DateTime<Utc>) -> Result<Placement, StoreError> {
        self.token(token_id).await?;
        let mut tx = self.begin_write().await?;
        let ids = insert_placements(self.backend, &mut tx, &[(token_id, spot)], at).await?;
        self.commit(tx).await?;
        self.placement(ids[0]).await
    }

    pub async fn placement(&self, id: i64) -> Result<Placement, StoreError> {
        let row = sqlx::query(&format!("SELECT {PLACEMENT_COLUMNS} FROM placements p WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("placement #{id}")))?;
        placement_from_row(&row)
    }

    pub async fn placements(&self, filter: &PlacementFilter) -> Result<Vec<PlacedToken>, StoreError> {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        if let Some(id) = filter.token_id {
            args.push(Arg::Int(Some(id)));
            clauses.push(format!("p.token_id = ${}", args.len()));
        }
        if let Some(host) = &filter.host {
            args.push(Arg::Text(Some(like_pattern(host))));
            clauses.push(format!("LOWER(p.host) LIKE ${} ESCAPE '\\'", args.len()));
        }
        if let Some(owner) = &filter.owner {
            args.push(Arg::Text(Some(like_pattern(owner))));
            clauses.push(format!("LOWER(p.owner) LIKE ${} ESCAPE '\\'", args.len()));
        }
        if !filter.include_removed {
            clauses.push("p.removed_at IS NULL".into());
        }
        if let Some(after) = filter.after_id {
            args.push(Arg::Int(Some(after)));
            clauses.push(format!("p.id > ${}", args.len()));
        }
        let filter_sql = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let limit = filter.limit.map(|l| format!(" LIMIT {}", l.max(0))).unwrap_or_default();
        let sql = format!("SELECT {PLACEMENT_COLUMNS}, t.access_key_id FROM placements p JOIN tokens t ON t.id = p.token_id{filter_sql} ORDER BY p.id{limit}");
        let rows = bind_all(sqlx::query(&sql), args).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(PlacedToken { access_key_id: r.try_get("access_key_id")?, placement: placement_from_row(r)? }))
            .collect()
    }

    /// Marks a placement removed (the bait was taken away); history is kept.
    pub async fn remove_placement(&self, id: i64, at: DateTime<Utc>) -> Result<Placement, StoreError> {
        let placement = self.placement(id).await?;
        if placement.removed_at.is_none() {
            self.exec(sqlx::query("UPDATE placements SET removed_at = $1 WHERE id = $2").bind(millis(at)).bind(id))
                .await?;
        }
        self.placement(id).await
    }

    pub async fn add_hop(&self, token_id: i64, hop: &NewHop) -> Result<CustodyHop, StoreError> {
        self.token(token_id).await?;
        let mut tx = self.begin_write().await?;
        let id = insert_hop(&mut tx, token_id, hop).await?;
        self.commit(tx).await?;
        let row =
            sqlx::query("SELECT id, token_id, seq, at, description, actor, automatic FROM custody_hops WHERE id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        hop_from_row(&row)
    }

    /// The sentence an alert uses for a token, from its active placements and
    /// its chain of custody.
    pub async fn describe_token(&self, token: &Token) -> Result<honeytrail_core::describe::Description, StoreError> {
        let placements: Vec<Placement> = self
            .placements(&PlacementFilter { token_id: Some(token.id), ..Default::default() })
            .await?
            .into_iter()
            .map(|p| p.placement)
            .collect();
        let hops = self.hops(token.id).await?;
        Ok(honeytrail_core::describe::describe(token, &placements, &hops))
    }

    /// The chain of custody of a token, oldest hop first.
    pub async fn hops(&self, token_id: i64) -> Result<Vec<CustodyHop>, StoreError> {
        let rows = sqlx::query("SELECT id, token_id, seq, at, description, actor, automatic FROM custody_hops WHERE token_id = $1 ORDER BY seq")
            .bind(token_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(hop_from_row).collect()
    }
}

pub(crate) async fn insert_labels(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    labels: &[(i64, &String, &String)],
) -> Result<(), StoreError> {
    for chunk in labels.chunks(BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO token_labels (token_id, name, value) VALUES {}",
            values_clause(backend, chunk.len(), 3)
        );
        let args = chunk
            .iter()
            .flat_map(|(id, k, v)| [Arg::Int(Some(*id)), Arg::Text(Some((*k).clone())), Arg::Text(Some((*v).clone()))])
            .collect();
        bind_all(sqlx::query(&sql), args).execute(&mut **tx).await?;
    }
    Ok(())
}

pub(crate) async fn insert_placements(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    spots: &[(i64, &Spot)],
    at: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(spots.len());
    for chunk in spots.chunks(BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO placements (token_id, host, path, owner, asset, serial, format, placed_by, notes, labels, placed_at, \
             instance_id, iam_user, aws_account) VALUES {} RETURNING id",
            values_clause(backend, chunk.len(), 14)
        );
        let mut args = Vec::with_capacity(chunk.len() * 14);
        for (token_id, s) in chunk {
            args.extend([
                Arg::Int(Some(*token_id)),
                Arg::Text(Some(s.host.clone())),
                Arg::Text(Some(s.path.clone())),
                Arg::Text(s.owner.clone()),
                Arg::Text(s.asset.clone()),
                Arg::Text(s.serial.clone()),
                Arg::Text(s.format.clone()),
                Arg::Text(s.placed_by.clone()),
                Arg::Text(s.notes.clone()),
                Arg::Text(Some(serde_json::to_string(&s.labels).expect("labels serialise"))),
                Arg::Int(Some(millis(at))),
                Arg::Text(s.instance_id.clone()),
                Arg::Text(s.iam_user.clone()),
                Arg::Text(s.aws_account.clone()),
            ]);
        }
        for r in bind_all(sqlx::query(&sql), args).fetch_all(&mut **tx).await? {
            ids.push(r.try_get(0)?);
        }
    }
    Ok(ids)
}

pub(crate) async fn insert_hop(
    tx: &mut Transaction<'static, Any>,
    token_id: i64,
    hop: &NewHop,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO custody_hops (token_id, seq, at, description, actor, automatic) \
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM custody_hops WHERE token_id = $2), $3, $4, $5, $6) RETURNING id",
    )
    .bind(token_id)
    .bind(token_id)
    .bind(millis(hop.at))
    .bind(&hop.description)
    .bind(&hop.actor)
    .bind(hop.automatic as i64)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get(0)?)
}
