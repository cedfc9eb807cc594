//! Unity Catalog API 2.1: catalogs, schemas and grants (tables exist only as grant targets).
//! Names are case-insensitive and stored lower-case.
//!
//! - `GET /api/2.1/unity-catalog/catalogs?max_results=&page_token=` → `{catalogs?: [Catalog],
//!   next_page_token?}`, ordered by name. `max_results` absent: everything, no token; `0`: the
//!   server page size (50); `n > 0`: min(n, 1000); negative → 400 INVALID_PARAMETER_VALUE. The
//!   token is absent on the last page.
//! - `GET /api/2.1/unity-catalog/catalogs/{name}` → `Catalog`; unknown → 404
//!   CATALOG_DOES_NOT_EXIST `Catalog '<name>' does not exist.`
//! - `GET /api/2.1/unity-catalog/schemas?catalog_name=&max_results=&page_token=` →
//!   `{schemas?: [Schema], next_page_token?}` (paged as catalogs); `catalog_name` missing → 400
//!   INVALID_PARAMETER_VALUE; unknown catalog → 404 CATALOG_DOES_NOT_EXIST.
//! - `GET /api/2.1/unity-catalog/schemas/{full_name}` → `Schema`; unknown → 404
//!   SCHEMA_DOES_NOT_EXIST `Schema '<full_name>' does not exist.`
//! - `GET /api/2.1/unity-catalog/permissions/{securable_type}/{full_name}?principal=&max_results=
//!   &page_token=` → `{privilege_assignments?: [{principal, privileges: [..]}],
//!   next_page_token?}`: direct grants only, principals and privileges sorted. `securable_type`
//!   `catalog`, `schema` or `table` (any case; others → 400 INVALID_PARAMETER_VALUE). Unknown
//!   securable → 404 CATALOG_DOES_NOT_EXIST / SCHEMA_DOES_NOT_EXIST / TABLE_DOES_NOT_EXIST (a
//!   malformed full name → 400 INVALID_PARAMETER_VALUE). `max_results` pages assignments
//!   (absent or 0: all).
//! - `PATCH` on the same path `{changes: [{principal, add?: [..], remove?: [..]}],
//!   omit_permissions_in_response?}` → `{privilege_assignments?: [..]}` (all of them, as GET;
//!   `{}` with `omit_permissions_in_response`). Removals apply before additions; removing
//!   `ALL_PRIVILEGES` revokes everything of that principal. A privilege that does not apply to
//!   the securable type (or is unknown) or an empty principal → 400 INVALID_PARAMETER_VALUE
//!   naming it, and nothing changes.
//!
//! `Catalog` = `{name, full_name, owner, comment?, catalog_type: "MANAGED_CATALOG",
//! securable_type: "CATALOG", isolation_mode: "OPEN", metastore_id, created_at, created_by,
//! updated_at, updated_by}`; `Schema` = `{name, catalog_name, full_name, owner, comment?,
//! catalog_type, securable_type: "SCHEMA", metastore_id, created_at, created_by, updated_at,
//! updated_by}`.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{page, parse_body, ApiError, ApiResult, Params};
use crate::state::{Shared, World};

/// principal → privileges.
pub type Grants = BTreeMap<String, BTreeSet<String>>;

/// Server page size of `max_results=0`.
const SERVER_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

const CATALOG_PRIVILEGES: &[&str] = &[
    "ALL_PRIVILEGES",
    "APPLY_TAG",
    "BROWSE",
    "CREATE_FUNCTION",
    "CREATE_MATERIALIZED_VIEW",
    "CREATE_MODEL",
    "CREATE_SCHEMA",
    "CREATE_TABLE",
    "CREATE_VOLUME",
    "EXECUTE",
    "EXTERNAL_USE_SCHEMA",
    "MANAGE",
    "MODIFY",
    "READ_VOLUME",
    "REFRESH",
    "SELECT",
    "USE_CATALOG",
    "USE_SCHEMA",
    "WRITE_VOLUME",
];
const SCHEMA_PRIVILEGES: &[&str] = &[
    "ALL_PRIVILEGES",
    "APPLY_TAG",
    "CREATE_FUNCTION",
    "CREATE_MATERIALIZED_VIEW",
    "CREATE_MODEL",
    "CREATE_TABLE",
    "CREATE_VOLUME",
    "EXECUTE",
    "EXTERNAL_USE_SCHEMA",
    "MANAGE",
    "MODIFY",
    "READ_VOLUME",
    "REFRESH",
    "SELECT",
    "USE_SCHEMA",
    "WRITE_VOLUME",
];
const TABLE_PRIVILEGES: &[&str] = &["ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "MODIFY", "SELECT"];

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub name: String,
    pub owner: String,
    pub grants: Grants,
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub name: String,
    pub owner: String,
    pub comment: Option<String>,
    pub created_at: i64,
    pub grants: Grants,
    pub tables: BTreeMap<String, Table>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub name: String,
    pub owner: String,
    pub comment: Option<String>,
    pub created_at: i64,
    pub grants: Grants,
    pub schemas: BTreeMap<String, Schema>,
}

/// Builds a grant map from `(principal, privileges)` pairs.
pub fn grants(pairs: &[(&str, &[&str])]) -> Grants {
    pairs
        .iter()
        .map(|(p, privs)| (p.to_string(), privs.iter().map(|x| x.to_string()).collect()))
        .collect()
}

/// This workspace's metastore id (deterministic per workspace id).
fn metastore_id(w: &World) -> String {
    let id = w.workspace_id;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (id >> 32) as u32,
        (id >> 16) as u16,
        (id >> 4) & 0xfff,
        id & 0xfff,
        id & 0xffff_ffff_ffff
    )
}

fn catalog_json(w: &World, c: &Catalog) -> Value {
    let mut v = json!({
        "name": c.name,
        "full_name": c.name,
        "owner": c.owner,
        "catalog_type": "MANAGED_CATALOG",
        "securable_type": "CATALOG",
        "isolation_mode": "OPEN",
        "metastore_id": metastore_id(w),
        "created_at": c.created_at,
        "created_by": crate::scim::ADMIN_USER,
        "updated_at": c.created_at,
        "updated_by": crate::scim::ADMIN_USER,
    });
    if let Some(cm) = &c.comment {
        v["comment"] = json!(cm);
    }
    v
}

fn schema_json(w: &World, c: &Catalog, s: &Schema) -> Value {
    let mut v = json!({
        "name": s.name,
        "catalog_name": c.name,
        "full_name": format!("{}.{}", c.name, s.name),
        "owner": s.owner,
        "catalog_type": "MANAGED_CATALOG",
        "securable_type": "SCHEMA",
        "metastore_id": metastore_id(w),
        "created_at": s.created_at,
        "created_by": crate::scim::ADMIN_USER,
        "updated_at": s.created_at,
        "updated_by": crate::scim::ADMIN_USER,
    });
    if let Some(cm) = &s.comment {
        v["comment"] = json!(cm);
    }
    v
}

fn no_catalog(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "CATALOG_DOES_NOT_EXIST",
        format!("Catalog '{name}' does not exist."),
    )
}

fn no_schema(full: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "SCHEMA_DOES_NOT_EXIST",
        format!("Schema '{full}' does not exist."),
    )
}

fn no_table(full: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "TABLE_DOES_NOT_EXIST",
        format!("Table '{full}' does not exist."),
    )
}

/// The page length for `max_results` (None: everything).
fn page_len(p: &Params) -> ApiResult<Option<usize>> {
    match p.int("max_results")? {
        None => Ok(None),
        Some(n) if n < 0 => Err(ApiError::invalid(format!(
            "max_results must be greater than or equal to 0, got {n}"
        ))),
        Some(0) => Ok(Some(SERVER_PAGE)),
        Some(n) => Ok(Some((n as usize).min(MAX_PAGE))),
    }
}

/// One page of name-ordered items after the token's cursor.
fn name_page<'a, T>(
    items: impl Iterator<Item = (&'a String, T)>,
    p: &Params,
    kind: &str,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let len = page_len(p)?;
    let after = match p.get("page_token") {
        None | Some("") => None,
        Some(t) => Some(page::decode(t, kind)?),
    };
    let mut it = items
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()))
        .peekable();
    let mut out = Vec::new();
    let mut last = None;
    for (k, v) in it.by_ref() {
        out.push(v);
        last = Some(k.clone());
        if len.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    let token = match (it.peek(), last) {
        (Some(_), Some(l)) => Some(page::encode(&format!("{kind}:{l}"))),
        _ => None,
    };
    Ok((out, token))
}

#[tracing::instrument(skip_all)]
async fn list_catalogs(
    State(emu): State<Shared>,
    Query(p): Query<Params>,
) -> ApiResult<Json<Value>> {
    let (w, _) = emu.world();
    let (items, token) = name_page(w.catalogs.iter(), &p, "cat")?;
    let mut out = json!({});
    if !items.is_empty() {
        out["catalogs"] = items.iter().map(|c| catalog_json(&w, c)).collect();
    }
    if let Some(t) = token {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_catalog(
    State(emu): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let (w, _) = emu.world();
    let c = w
        .catalogs
        .get(&name.to_lowercase())
        .ok_or_else(|| no_catalog(&name))?;
    Ok(Json(catalog_json(&w, c)))
}

#[tracing::instrument(skip_all)]
async fn list_schemas(
    State(emu): State<Shared>,
    Query(p): Query<Params>,
) -> ApiResult<Json<Value>> {
    let cat = p.required("catalog_name")?.to_lowercase();
    let (w, _) = emu.world();
    let c = w.catalogs.get(&cat).ok_or_else(|| no_catalog(&cat))?;
    let (items, token) = name_page(c.schemas.iter(), &p, "sch")?;
    let mut out = json!({});
    if !items.is_empty() {
        out["schemas"] = items.iter().map(|s| schema_json(&w, c, s)).collect();
    }
    if let Some(t) = token {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_schema(State(emu): State<Shared>, Path(full): Path<String>) -> ApiResult<Json<Value>> {
    let full = full.to_lowercase();
    let (cat, sch) = full
        .split_once('.')
        .filter(|(_, s)| !s.contains('.'))
        .ok_or_else(|| ApiError::invalid(format!("Invalid schema full name: {full}")))?;
    let (w, _) = emu.world();
    let c = w.catalogs.get(cat).ok_or_else(|| no_catalog(cat))?;
    let s = c.schemas.get(sch).ok_or_else(|| no_schema(&full))?;
    Ok(Json(schema_json(&w, c, s)))
}

/// The securable's grants, its applicable privileges and its `[name:TYPE]` label.
fn securable<'a>(
    w: &'a mut World,
    securable_type: &str,
    full_name: &str,
) -> ApiResult<(&'a mut Grants, &'static [&'static str], String)> {
    let kind = securable_type.to_uppercase();
    let full = full_name.to_lowercase();
    let parts: Vec<&str> = full.split('.').collect();
    let want = match kind.as_str() {
        "CATALOG" => 1,
        "SCHEMA" => 2,
        "TABLE" => 3,
        _ => {
            return Err(ApiError::invalid(format!(
                "Unsupported securable type: {securable_type}"
            )))
        }
    };
    if parts.len() != want || parts.iter().any(|p| p.is_empty()) {
        return Err(ApiError::invalid(format!(
            "Invalid {} full name: {full_name}",
            kind.to_lowercase()
        )));
    }
    let label = format!("[{full}:{kind}]");
    let c = w
        .catalogs
        .get_mut(parts[0])
        .ok_or_else(|| no_catalog(parts[0]))?;
    if want == 1 {
        return Ok((&mut c.grants, CATALOG_PRIVILEGES, label));
    }
    let schema_name = format!("{}.{}", parts[0], parts[1]);
    let s = c
        .schemas
        .get_mut(parts[1])
        .ok_or_else(|| no_schema(&schema_name))?;
    if want == 2 {
        return Ok((&mut s.grants, SCHEMA_PRIVILEGES, label));
    }
    let t = s.tables.get_mut(parts[2]).ok_or_else(|| no_table(&full))?;
    Ok((&mut t.grants, TABLE_PRIVILEGES, label))
}

fn assignments<'a>(g: &'a Grants, principal: Option<&str>) -> Vec<(&'a String, Value)> {
    g.iter()
        .filter(|(p, privs)| !privs.is_empty() && principal.is_none_or(|x| x == p.as_str()))
        .map(|(p, privs)| (p, json!({"principal": p, "privileges": privs})))
        .collect()
}

#[tracing::instrument(skip_all)]
async fn get_grants(
    State(emu): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> ApiResult<Json<Value>> {
    let len = match p.int("max_results")? {
        Some(n) if n < 0 => {
            return Err(ApiError::invalid(format!(
                "max_results must be greater than or equal to 0, got {n}"
            )))
        }
        None | Some(0) => usize::MAX,
        Some(n) => n as usize,
    };
    let offset = page::decode_offset(p.get("page_token"), "gr")?;
    let (mut w, _) = emu.world();
    let (g, _, _) = securable(&mut w, &t, &name)?;
    let all = assignments(g, p.get("principal"));
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(len)
        .map(|(_, v)| v.clone())
        .collect();
    let end = offset.saturating_add(items.len());
    let mut out = json!({});
    if !items.is_empty() {
        out["privilege_assignments"] = Value::Array(items);
    }
    if end < all.len() {
        out["next_page_token"] = json!(page::encode_offset("gr", end));
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct Change {
    principal: Option<String>,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    changes: Vec<Change>,
    #[serde(default)]
    omit_permissions_in_response: bool,
}

#[tracing::instrument(skip_all)]
async fn update_grants(
    State(emu): State<Shared>,
    Path((t, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: UpdateBody = parse_body(&body)?;
    let (mut w, _) = emu.world();
    let (g, applicable, label) = securable(&mut w, &t, &name)?;
    for ch in &b.changes {
        if ch.principal.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                "Invalid principal: every change needs a non-empty principal",
            ));
        }
        for x in ch.add.iter().chain(&ch.remove) {
            if !applicable.contains(&x.as_str()) {
                return Err(ApiError::invalid(format!(
                    "Privilege {x} is not applicable to this entity {label}."
                )));
            }
        }
    }
    for ch in b.changes {
        let Some(principal) = ch.principal else {
            continue;
        };
        let set = g.entry(principal.clone()).or_default();
        for x in &ch.remove {
            if x == "ALL_PRIVILEGES" {
                set.clear();
            } else {
                set.remove(x);
            }
        }
        set.extend(ch.add);
        if set.is_empty() {
            g.remove(&principal);
        }
    }
    let mut out = json!({});
    if !b.omit_permissions_in_response {
        let items: Vec<Value> = assignments(g, None).into_iter().map(|(_, v)| v).collect();
        if !items.is_empty() {
            out["privilege_assignments"] = Value::Array(items);
        }
    }
    Ok(Json(out))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.1/unity-catalog/catalogs", get(list_catalogs))
        .route("/api/2.1/unity-catalog/catalogs/{name}", get(get_catalog))
        .route("/api/2.1/unity-catalog/schemas", get(list_schemas))
        .route(
            "/api/2.1/unity-catalog/schemas/{full_name}",
            get(get_schema),
        )
        .route(
            "/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}",
            get(get_grants).patch(update_grants),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_sets_are_sorted_and_nested() {
        for set in [CATALOG_PRIVILEGES, SCHEMA_PRIVILEGES, TABLE_PRIVILEGES] {
            assert!(set.windows(2).all(|w| w[0] < w[1]));
        }
        assert!(SCHEMA_PRIVILEGES
            .iter()
            .all(|p| CATALOG_PRIVILEGES.contains(p)));
        assert!(TABLE_PRIVILEGES
            .iter()
            .all(|p| SCHEMA_PRIVILEGES.contains(p)));
        assert!(!SCHEMA_PRIVILEGES.contains(&"USE_CATALOG"));
    }
}
