//! `/tokens…`: list, import, mint, read, retire, and bait to download.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use honeytrail_app::ops::{ImportRequest, MintRequest, TokenQuery};

use super::{attachment, created, ok, page, ApiResult, Body};
use crate::auth::{ApiCaller, ResponderCaller};
use crate::Shared;

pub(super) async fn list_tokens(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<TokenQuery>,
) -> ApiResult {
    page("/tokens", uri.query().unwrap_or(""), s.ops.token_page(&c.actor, &q).await?)
}

pub(super) async fn post_token(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<ImportRequest>,
) -> ApiResult {
    let via = format!("through the honeytrail web UI/API from {}", c.from);
    created(s.ops.import_token(&c.actor, r, &via).await?)
}

pub(super) async fn post_mint(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<MintRequest>,
) -> ApiResult {
    created(s.ops.mint(&c.actor, r).await?)
}

pub(super) async fn get_token(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(key): Path<String>,
) -> ApiResult {
    ok(s.ops.token_detail(&c.actor, &key).await?)
}

pub(super) async fn post_retire(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(key): Path<String>,
) -> ApiResult {
    ok(s.ops.retire(&c.actor, &key).await?.token)
}

pub(super) async fn get_bait(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path((key, format)): Path<(String, String)>,
) -> ApiResult {
    let (file_name, text) = s.ops.render_bait(&c.actor, &key, &format).await?;
    attachment("text/plain; charset=utf-8", &file_name, text)
}
