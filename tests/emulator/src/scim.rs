//! SCIM 2.0 `GET /api/2.0/preview/scim/v2/Me`: with the PAT, the admin user
//! `dr-admin@example.com` (groups `admins`, `data-engineers`); with an OAuth token, the service
//! principal (`userName` = the OAuth client id, `displayName` `lifeboat-sp`).

use axum::extract::{Extension, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::Shared;

pub const ADMIN_USER: &str = "dr-admin@example.com";
pub const ADMIN_ID: &str = "4242424242424242";
pub const SP_ID: &str = "5151515151515151";

#[tracing::instrument(skip_all)]
async fn me(
    State(_emu): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    let groups = json!([
        {"display": "admins", "value": "1000000000000001", "type": "direct",
         "$ref": "Groups/1000000000000001"},
        {"display": "data-engineers", "value": "1000000000000002", "type": "direct",
         "$ref": "Groups/1000000000000002"},
    ]);
    let v = match caller {
        Caller::Pat => json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": ADMIN_ID,
            "userName": ADMIN_USER,
            "displayName": "DR Admin",
            "active": true,
            "name": {"givenName": "DR", "familyName": "Admin"},
            "emails": [{"value": ADMIN_USER, "type": "work", "primary": true}],
            "groups": groups,
            "entitlements": [{"value": "allow-cluster-create"}, {"value": "workspace-access"}],
        }),
        Caller::ServicePrincipal(client_id) => json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": SP_ID,
            "userName": client_id,
            "displayName": "lifeboat-sp",
            "active": true,
            "emails": [],
            "groups": [{"display": "admins", "value": "1000000000000001", "type": "direct",
                        "$ref": "Groups/1000000000000001"}],
            "entitlements": [{"value": "workspace-access"}],
        }),
    };
    Ok(Json(v))
}

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/2.0/preview/scim/v2/Me", get(me))
}
