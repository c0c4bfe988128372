//! `/accounts…`: the pool of canary accounts keys are minted in.

use std::sync::Arc;

use axum::extract::{Path, State};
use honeytrail_app::ops::AccountRequest;

use super::{created, ok, ApiResult, Body};
use crate::auth::{AdminCaller, ApiCaller};
use crate::Shared;

pub(super) async fn list_accounts(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.accounts(&c.actor).await?)
}

pub(super) async fn post_account(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<AccountRequest>,
) -> ApiResult {
    created(s.ops.add_account(&c.actor, &r).await?)
}

pub(super) async fn delete_account(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult {
    ok(s.ops.remove_account(&c.actor, &name).await?)
}
