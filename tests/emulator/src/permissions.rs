//! Permissions API 2.0: `GET /api/2.0/permissions/{type}/{id}` for `clusters`,
//! `cluster-policies`, `instance-pools`, `jobs`, `pipelines`, `warehouses` (also accepted as
//! `sql/warehouses`), `notebooks`, `directories` →
//! `{object_id: "/<type>/<id>", object_type, access_control_list: [{user_name | group_name |
//! service_principal_name, all_permissions: [{permission_level, inherited,
//! inherited_from_object?}]}]}`. Unknown object → 404 RESOURCE_DOES_NOT_EXIST.
//!
//! Every object carries the same deterministic ACL: its owner (IS_OWNER), group
//! `data-engineers` (manage level of the type), group `analysts` (view/attach/use level),
//! service principal `lifeboat-sp` (CAN_MANAGE) and the inherited `admins` CAN_MANAGE.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::state::{Shared, World};

/// (object_type, object_id prefix, engineer level, analyst level)
fn kind_of(t: &str) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    Some(match t {
        "clusters" => ("cluster", "/clusters/", "CAN_RESTART", "CAN_ATTACH_TO"),
        "cluster-policies" => ("cluster-policy", "/cluster-policies/", "CAN_USE", "CAN_USE"),
        "instance-pools" => (
            "instance-pool",
            "/instance-pools/",
            "CAN_MANAGE",
            "CAN_ATTACH_TO",
        ),
        "jobs" => ("job", "/jobs/", "CAN_MANAGE_RUN", "CAN_VIEW"),
        "pipelines" => ("pipelines", "/pipelines/", "CAN_RUN", "CAN_VIEW"),
        "warehouses" | "sql/warehouses" => {
            ("warehouses", "/sql/warehouses/", "CAN_MANAGE", "CAN_USE")
        }
        "notebooks" => ("notebook", "/notebooks/", "CAN_EDIT", "CAN_READ"),
        "directories" => ("directory", "/directories/", "CAN_MANAGE", "CAN_READ"),
        _ => return None,
    })
}

fn exists(w: &World, t: &str, id: &str) -> bool {
    match t {
        "clusters" => w.clusters.contains_key(id),
        "cluster-policies" => w.policies.contains_key(id),
        "instance-pools" => w.pools.contains_key(id),
        "jobs" => id.parse::<u64>().is_ok_and(|j| w.jobs.contains_key(&j)),
        "pipelines" => w.pipelines.contains_key(id),
        "warehouses" | "sql/warehouses" => w.warehouses.contains_key(id),
        "notebooks" | "directories" => w
            .workspace_objects
            .contains_key(&(t.to_string(), id.to_string())),
        _ => false,
    }
}

fn perm(level: &str) -> Value {
    json!([{"permission_level": level, "inherited": false}])
}

/// The ACL of an object (see the module doc).
pub fn acl(t: &str, id: &str) -> Option<Value> {
    let (object_type, prefix, eng, analyst) = kind_of(t)?;
    let owner_level = match t {
        "clusters" | "cluster-policies" | "instance-pools" | "directories" | "notebooks" => {
            "CAN_MANAGE"
        }
        _ => "IS_OWNER",
    };
    Some(json!({
        "object_id": format!("{prefix}{id}"),
        "object_type": object_type,
        "access_control_list": [
            {"user_name": "dr-admin@example.com", "display_name": "DR Admin", "all_permissions": perm(owner_level)},
            {"group_name": "data-engineers", "all_permissions": perm(eng)},
            {"group_name": "analysts", "all_permissions": perm(analyst)},
            {"service_principal_name": "lifeboat-sp", "display_name": "lifeboat-sp", "all_permissions": perm("CAN_MANAGE")},
            {"group_name": "admins", "all_permissions": [
                {"permission_level": "CAN_MANAGE", "inherited": true, "inherited_from_object": ["/directories/"]}]},
        ],
    }))
}

#[tracing::instrument(skip_all)]
async fn get_permissions(
    State(emu): State<Shared>,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (w, _) = emu.world();
    if kind_of(&t).is_none() || !exists(&w, &t, &id) {
        return Err(ApiError::not_found(format!("{t} {id} does not exist.")));
    }
    acl(&t, &id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("{t} {id} does not exist.")))
}

#[tracing::instrument(skip_all)]
async fn get_sql_warehouse_permissions(
    State(emu): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    get_permissions(State(emu), Path(("warehouses".to_string(), id))).await
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/api/2.0/permissions/sql/warehouses/{id}",
            get(get_sql_warehouse_permissions),
        )
        .route("/api/2.0/permissions/{type}/{id}", get(get_permissions))
}
