//! Permissions API 2.0 for `clusters`, `cluster-policies`, `instance-pools`, `jobs`,
//! `pipelines`, `warehouses` (also accepted as `sql/warehouses`), `notebooks`, `directories`
//! and `repos` (workspace object ids, see [`crate::workspace`]).
//!
//! - `GET /api/2.0/permissions/{type}/{id}` → `{object_id: "/<type>/<id>", object_type,
//!   access_control_list: [{user_name | group_name | service_principal_name, display_name?,
//!   all_permissions: [{permission_level, inherited, inherited_from_object?}]}]}`.
//! - `PATCH` (update) `{access_control_list: [{user_name | group_name | service_principal_name,
//!   permission_level}]}`: merges — each listed principal's direct level becomes the given one,
//!   the others keep theirs. Answers the full object, as GET.
//! - `PUT` (set), same body: replaces every direct (non-inherited) entry; an empty list removes
//!   them all. On types with an owner (jobs, pipelines, warehouses) the current `IS_OWNER`
//!   entry is kept when the request names none. Answers the full object.
//!
//! Errors: unknown type or object → 404 RESOURCE_DOES_NOT_EXIST; an entry naming no principal
//! or several → 400 INVALID_PARAMETER_VALUE; a `permission_level` not valid for the type → 400
//! INVALID_PARAMETER_VALUE naming it (levels below); `IS_OWNER` for a group or on more than one
//! principal → 400 INVALID_PARAMETER_VALUE. Setting a new `IS_OWNER` with PATCH transfers
//! ownership (the previous owner's entry is dropped).
//!
//! Every object starts with the same deterministic direct ACL: `dr-admin@example.com` (IS_OWNER,
//! or CAN_MANAGE on types without owners), group `data-engineers` (the type's manage level),
//! group `analysts` (view/attach/use level) and service principal `lifeboat-sp` (CAN_MANAGE);
//! group `admins` always has an inherited CAN_MANAGE. A PATCH or PUT stores a per-object
//! override of the direct entries.
//!
//! | type | valid levels |
//! | --- | --- |
//! | clusters | CAN_ATTACH_TO, CAN_RESTART, CAN_MANAGE |
//! | cluster-policies | CAN_USE, CAN_MANAGE |
//! | instance-pools | CAN_ATTACH_TO, CAN_MANAGE |
//! | jobs | CAN_VIEW, CAN_MANAGE_RUN, CAN_MANAGE, IS_OWNER |
//! | pipelines | CAN_VIEW, CAN_RUN, CAN_MANAGE, IS_OWNER |
//! | warehouses | CAN_VIEW, CAN_MONITOR, CAN_USE, CAN_MANAGE, IS_OWNER |
//! | notebooks, directories, repos | CAN_READ, CAN_RUN, CAN_EDIT, CAN_MANAGE |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{parse_body, ApiError, ApiResult};
use crate::state::{Shared, World};
use crate::workspace::ObjectType;

/// One permissions object type.
struct Kind {
    /// Canonical request type (`sql/warehouses` → `warehouses`).
    canonical: &'static str,
    object_type: &'static str,
    prefix: &'static str,
    engineer: &'static str,
    analyst: &'static str,
    /// The default level of `dr-admin@example.com`.
    owner_level: &'static str,
    levels: &'static [&'static str],
}

const WORKSPACE_LEVELS: &[&str] = &["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"];

fn kind_of(t: &str) -> Option<Kind> {
    let k = |canonical, object_type, prefix, engineer, analyst, owner_level, levels| Kind {
        canonical,
        object_type,
        prefix,
        engineer,
        analyst,
        owner_level,
        levels,
    };
    Some(match t {
        "clusters" => k(
            "clusters",
            "cluster",
            "/clusters/",
            "CAN_RESTART",
            "CAN_ATTACH_TO",
            "CAN_MANAGE",
            &["CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"],
        ),
        "cluster-policies" => k(
            "cluster-policies",
            "cluster-policy",
            "/cluster-policies/",
            "CAN_USE",
            "CAN_USE",
            "CAN_MANAGE",
            &["CAN_USE", "CAN_MANAGE"],
        ),
        "instance-pools" => k(
            "instance-pools",
            "instance-pool",
            "/instance-pools/",
            "CAN_MANAGE",
            "CAN_ATTACH_TO",
            "CAN_MANAGE",
            &["CAN_ATTACH_TO", "CAN_MANAGE"],
        ),
        "jobs" => k(
            "jobs",
            "job",
            "/jobs/",
            "CAN_MANAGE_RUN",
            "CAN_VIEW",
            "IS_OWNER",
            &["CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"],
        ),
        "pipelines" => k(
            "pipelines",
            "pipelines",
            "/pipelines/",
            "CAN_RUN",
            "CAN_VIEW",
            "IS_OWNER",
            &["CAN_VIEW", "CAN_RUN", "CAN_MANAGE", "IS_OWNER"],
        ),
        "warehouses" | "sql/warehouses" => k(
            "warehouses",
            "warehouses",
            "/sql/warehouses/",
            "CAN_MANAGE",
            "CAN_USE",
            "IS_OWNER",
            &[
                "CAN_VIEW",
                "CAN_MONITOR",
                "CAN_USE",
                "CAN_MANAGE",
                "IS_OWNER",
            ],
        ),
        "notebooks" => k(
            "notebooks",
            "notebook",
            "/notebooks/",
            "CAN_EDIT",
            "CAN_READ",
            "CAN_MANAGE",
            WORKSPACE_LEVELS,
        ),
        "directories" => k(
            "directories",
            "directory",
            "/directories/",
            "CAN_MANAGE",
            "CAN_READ",
            "CAN_MANAGE",
            WORKSPACE_LEVELS,
        ),
        "repos" => k(
            "repos",
            "repo",
            "/repos/",
            "CAN_MANAGE",
            "CAN_READ",
            "CAN_MANAGE",
            WORKSPACE_LEVELS,
        ),
        _ => return None,
    })
}

/// Who an ACL entry is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    User(String),
    Group(String),
    ServicePrincipal(String),
}

impl Principal {
    fn json(&self) -> Value {
        match self {
            Principal::User(n) => {
                let mut v = json!({ "user_name": n });
                if n == crate::scim::ADMIN_USER {
                    v["display_name"] = json!("DR Admin");
                }
                v
            }
            Principal::Group(n) => json!({ "group_name": n }),
            Principal::ServicePrincipal(n) => {
                json!({ "service_principal_name": n, "display_name": n })
            }
        }
    }
}

/// One direct ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub principal: Principal,
    pub level: String,
}

fn entry(principal: Principal, level: &str) -> AclEntry {
    AclEntry {
        principal,
        level: level.to_string(),
    }
}

/// The direct entries every object of the kind starts with.
fn default_direct(k: &Kind) -> Vec<AclEntry> {
    vec![
        entry(
            Principal::User(crate::scim::ADMIN_USER.into()),
            k.owner_level,
        ),
        entry(Principal::Group("data-engineers".into()), k.engineer),
        entry(Principal::Group("analysts".into()), k.analyst),
        entry(
            Principal::ServicePrincipal("lifeboat-sp".into()),
            "CAN_MANAGE",
        ),
    ]
}

fn exists(w: &mut World, k: &Kind, id: &str) -> bool {
    let mut ws = |t: ObjectType| {
        id.parse::<i64>()
            .ok()
            .and_then(|i| w.workspace.by_id(i))
            .is_some_and(|(_, o)| o.object_type == t)
    };
    match k.canonical {
        "clusters" => w.clusters.contains_key(id),
        "cluster-policies" => w.policies.contains_key(id),
        "instance-pools" => w.pools.contains_key(id),
        "jobs" => id.parse::<u64>().is_ok_and(|j| w.jobs.contains_key(&j)),
        "pipelines" => w.pipelines.contains_key(id),
        "warehouses" => w.warehouses.contains_key(id),
        "notebooks" => ws(ObjectType::Notebook),
        "directories" => ws(ObjectType::Directory),
        "repos" => id.parse::<i64>().is_ok_and(|r| w.repos.contains_key(&r)),
        _ => false,
    }
}

/// The wire form of an object's ACL: the direct entries, then `admins`' inherited CAN_MANAGE
/// (merged into a direct `admins` entry when there is one).
fn render(k: &Kind, id: &str, direct: &[AclEntry]) -> Value {
    let inherited = json!({"permission_level": "CAN_MANAGE", "inherited": true,
        "inherited_from_object": ["/directories/"]});
    let admins = Principal::Group("admins".into());
    let mut acl: Vec<Value> = direct
        .iter()
        .map(|e| {
            let mut perms = vec![json!({"permission_level": e.level, "inherited": false})];
            if e.principal == admins {
                perms.push(inherited.clone());
            }
            let mut v = e.principal.json();
            v["all_permissions"] = Value::Array(perms);
            v
        })
        .collect();
    if !direct.iter().any(|e| e.principal == admins) {
        let mut v = admins.json();
        v["all_permissions"] = json!([inherited]);
        acl.push(v);
    }
    json!({
        "object_id": format!("{}{id}", k.prefix),
        "object_type": k.object_type,
        "access_control_list": acl,
    })
}

/// The ACL of an object as GET answers it, or None for an unknown type or object.
pub fn acl(w: &mut World, t: &str, id: &str) -> Option<Value> {
    let k = kind_of(t)?;
    if !exists(w, &k, id) {
        return None;
    }
    Some(
        match w
            .acl_overrides
            .get(&(k.canonical.to_string(), id.to_string()))
        {
            Some(direct) => render(&k, id, direct),
            None => render(&k, id, &default_direct(&k)),
        },
    )
}

fn missing(t: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("{t} {id} does not exist."))
}

#[derive(Deserialize)]
struct AclRequest {
    user_name: Option<String>,
    group_name: Option<String>,
    service_principal_name: Option<String>,
    permission_level: Option<String>,
}

#[derive(Deserialize)]
struct AclBody {
    #[serde(default)]
    access_control_list: Vec<AclRequest>,
}

/// Validates the request entries for kind `k`.
fn parse_entries(k: &Kind, body: AclBody) -> ApiResult<Vec<AclEntry>> {
    let mut out = Vec::new();
    for r in body.access_control_list {
        let named: Vec<Principal> = [
            r.user_name.filter(|s| !s.is_empty()).map(Principal::User),
            r.group_name.filter(|s| !s.is_empty()).map(Principal::Group),
            r.service_principal_name
                .filter(|s| !s.is_empty())
                .map(Principal::ServicePrincipal),
        ]
        .into_iter()
        .flatten()
        .collect();
        let principal = match <[Principal; 1]>::try_from(named) {
            Ok([p]) => p,
            Err(_) => {
                return Err(ApiError::invalid(
                    "Each access control entry must name exactly one of user_name, group_name and service_principal_name",
                ))
            }
        };
        let level = r
            .permission_level
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid("Missing required field: permission_level"))?;
        if !k.levels.contains(&level.as_str()) {
            return Err(ApiError::invalid(format!(
                "Permission level {level} is not valid for {} objects; valid levels: {}",
                k.object_type,
                k.levels.join(", ")
            )));
        }
        if level == "IS_OWNER" && matches!(principal, Principal::Group(_)) {
            return Err(ApiError::invalid(format!(
                "A group cannot be the owner ({level} for {principal:?})"
            )));
        }
        // The last entry for a principal wins.
        out.retain(|e: &AclEntry| e.principal != principal);
        out.push(AclEntry { principal, level });
    }
    if out.iter().filter(|e| e.level == "IS_OWNER").count() > 1 {
        return Err(ApiError::invalid("An object can have only one IS_OWNER"));
    }
    Ok(out)
}

/// Applies a PATCH (`replace` false) or PUT (`replace` true) and answers the new ACL.
fn write(w: &mut World, t: &str, id: &str, body: &[u8], replace: bool) -> ApiResult<Value> {
    let k = kind_of(t).ok_or_else(|| missing(t, id))?;
    if !exists(w, &k, id) {
        return Err(missing(t, id));
    }
    let requested = parse_entries(&k, parse_body(body)?)?;
    let key = (k.canonical.to_string(), id.to_string());
    let current = w
        .acl_overrides
        .get(&key)
        .cloned()
        .unwrap_or_else(|| default_direct(&k));
    let new_owner = requested.iter().any(|e| e.level == "IS_OWNER");
    let direct = if replace {
        let mut kept: Vec<AclEntry> = if new_owner {
            Vec::new()
        } else {
            current
                .into_iter()
                .filter(|e| e.level == "IS_OWNER")
                .collect()
        };
        kept.retain(|e| !requested.iter().any(|r| r.principal == e.principal));
        kept.extend(requested);
        kept
    } else {
        let mut merged = current;
        if new_owner {
            merged.retain(|e| e.level != "IS_OWNER");
        }
        for r in requested {
            match merged.iter_mut().find(|e| e.principal == r.principal) {
                Some(e) => e.level = r.level,
                None => merged.push(r),
            }
        }
        merged
    };
    let out = render(&k, id, &direct);
    w.acl_overrides.insert(key, direct);
    Ok(out)
}

#[tracing::instrument(skip_all)]
async fn get_permissions(
    State(emu): State<Shared>,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (mut w, _) = emu.world();
    acl(&mut w, &t, &id)
        .map(Json)
        .ok_or_else(|| missing(&t, &id))
}

#[tracing::instrument(skip_all)]
async fn update_permissions(
    State(emu): State<Shared>,
    Path((t, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (mut w, _) = emu.world();
    write(&mut w, &t, &id, &body, false).map(Json)
}

#[tracing::instrument(skip_all)]
async fn set_permissions(
    State(emu): State<Shared>,
    Path((t, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (mut w, _) = emu.world();
    write(&mut w, &t, &id, &body, true).map(Json)
}

#[tracing::instrument(skip_all)]
async fn get_sql_warehouse_permissions(
    State(emu): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    get_permissions(State(emu), Path(("warehouses".to_string(), id))).await
}

#[tracing::instrument(skip_all)]
async fn update_sql_warehouse_permissions(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    update_permissions(State(emu), Path(("warehouses".to_string(), id)), body).await
}

#[tracing::instrument(skip_all)]
async fn set_sql_warehouse_permissions(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    set_permissions(State(emu), Path(("warehouses".to_string(), id)), body).await
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/api/2.0/permissions/sql/warehouses/{id}",
            get(get_sql_warehouse_permissions)
                .patch(update_sql_warehouse_permissions)
                .put(set_sql_warehouse_permissions),
        )
        .route(
            "/api/2.0/permissions/{type}/{id}",
            get(get_permissions)
                .patch(update_permissions)
                .put(set_permissions),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> AclBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn entries_are_validated() {
        let jobs = kind_of("jobs").unwrap();
        let ok = parse_entries(
            &jobs,
            body(json!({"access_control_list": [
                {"group_name": "g", "permission_level": "CAN_VIEW"},
                {"group_name": "g", "permission_level": "CAN_MANAGE"}]})),
        )
        .unwrap();
        assert_eq!(ok, vec![entry(Principal::Group("g".into()), "CAN_MANAGE")]);
        for bad in [
            json!({"access_control_list": [{"group_name": "g", "permission_level": "CAN_FLY"}]}),
            json!({"access_control_list": [{"permission_level": "CAN_VIEW"}]}),
            json!({"access_control_list": [{"user_name": "u", "group_name": "g", "permission_level": "CAN_VIEW"}]}),
            json!({"access_control_list": [{"group_name": "g", "permission_level": "IS_OWNER"}]}),
            json!({"access_control_list": [{"user_name": "a", "permission_level": "IS_OWNER"},
                                           {"user_name": "b", "permission_level": "IS_OWNER"}]}),
        ] {
            let e = parse_entries(&jobs, body(bad.clone())).unwrap_err();
            assert_eq!(e.code, json!("INVALID_PARAMETER_VALUE"), "{bad}");
        }
        let e = parse_entries(
            &kind_of("clusters").unwrap(),
            body(json!({"access_control_list": [{"user_name": "u", "permission_level": "IS_OWNER"}]})),
        )
        .unwrap_err();
        assert!(e.message.contains("IS_OWNER"));
    }

    #[test]
    fn admins_inherited_entry_merges_with_a_direct_one() {
        let k = kind_of("repos").unwrap();
        let v = render(
            &k,
            "7",
            &[entry(Principal::Group("admins".into()), "CAN_READ")],
        );
        let acl = v["access_control_list"].as_array().unwrap();
        assert_eq!(acl.len(), 1);
        assert_eq!(acl[0]["all_permissions"].as_array().unwrap().len(), 2);
        assert_eq!(v["object_id"], "/repos/7");
    }
}
