//! Secrets API 2.0: scopes, secrets and scope ACLs. Secret values are stored but no endpoint
//! ever returns them (there is no `secrets/get`; the real one only serves notebooks' clusters
//! in practice).
//!
//! - `GET /api/2.0/secrets/scopes/list` → `{scopes?: [{name, backend_type: "DATABRICKS"}]}`,
//!   ordered by name.
//! - `POST /api/2.0/secrets/scopes/create {scope, initial_manage_principal?,
//!   scope_backend_type?}` → `{}`: the name must be 1–128 of `[A-Za-z0-9_.-]` (else 400
//!   INVALID_PARAMETER_VALUE); an existing scope → 400 RESOURCE_ALREADY_EXISTS
//!   `Scope <name> already exists!`; `AZURE_KEYVAULT` → 400 INVALID_PARAMETER_VALUE (AWS). The
//!   creator (or `initial_manage_principal`) gets MANAGE.
//! - `POST /api/2.0/secrets/scopes/delete {scope}` → `{}`.
//! - `GET /api/2.0/secrets/list?scope=` → `{secrets?: [{key, last_updated_timestamp}]}`, ordered
//!   by key.
//! - `POST /api/2.0/secrets/put {scope, key, string_value | bytes_value}` → `{}` (creates or
//!   overwrites; `last_updated_timestamp` = now on the emulated clock). Key rules as scope
//!   names; neither or both values → 400 INVALID_PARAMETER_VALUE; over 128 KiB → 400
//!   INVALID_PARAMETER_VALUE.
//! - `POST /api/2.0/secrets/delete {scope, key}` → `{}`; unknown key → 404
//!   RESOURCE_DOES_NOT_EXIST.
//! - `GET /api/2.0/secrets/acls/list?scope=` → `{items?: [{principal, permission}]}`, ordered by
//!   principal; `GET /api/2.0/secrets/acls/get?scope=&principal=` → `{principal, permission}`.
//! - `POST /api/2.0/secrets/acls/put {scope, principal, permission}` → `{}`: creates or
//!   overwrites; `permission` not `READ`|`WRITE`|`MANAGE` → 400 INVALID_PARAMETER_VALUE naming
//!   it. `POST /api/2.0/secrets/acls/delete {scope, principal}` → `{}`; no such ACL → 404
//!   RESOURCE_DOES_NOT_EXIST.
//!
//! Every call on an unknown scope → 404 RESOURCE_DOES_NOT_EXIST `Scope <name> does not exist!`;
//! a missing required field → 400 INVALID_PARAMETER_VALUE.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{parse_body, ApiError, ApiResult, Params};
use crate::scim::ADMIN_USER;
use crate::state::{Shared, World};

/// The ACL permissions of a secret scope, weakest first.
pub const PERMISSIONS: [&str; 3] = ["READ", "WRITE", "MANAGE"];

/// Largest secret value accepted (bytes).
const MAX_VALUE_BYTES: usize = 128 * 1024;

/// A secret: its value never leaves the emulator (no `Serialize`).
#[derive(Clone)]
pub struct Secret {
    value: String,
    pub last_updated_timestamp: i64,
}

impl Secret {
    pub fn new(value: impl Into<String>, last_updated_timestamp: i64) -> Self {
        Secret {
            value: value.into(),
            last_updated_timestamp,
        }
    }

    /// The stored value, for in-process assertions only (no endpoint reads it).
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("value", &"<redacted>")
            .field("last_updated_timestamp", &self.last_updated_timestamp)
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct SecretScope {
    pub name: String,
    pub secrets: BTreeMap<String, Secret>,
    /// principal → READ | WRITE | MANAGE.
    pub acls: BTreeMap<String, &'static str>,
}

impl SecretScope {
    pub fn new(name: &str) -> Self {
        SecretScope {
            name: name.to_string(),
            ..SecretScope::default()
        }
    }
}

fn missing_scope(scope: &str) -> ApiError {
    ApiError::not_found(format!("Scope {scope} does not exist!"))
}

/// A valid scope or key name: 1–128 of `[A-Za-z0-9_.-]`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The canonical permission for `p` (case-sensitive, as the real enum).
pub fn permission(p: &str) -> ApiResult<&'static str> {
    PERMISSIONS
        .iter()
        .copied()
        .find(|x| *x == p)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid permission {p}: must be one of READ, WRITE, MANAGE"
            ))
        })
}

fn required(v: Option<String>, field: &str) -> ApiResult<String> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("Missing required field: {field}")))
}

impl World {
    fn scope_mut(&mut self, scope: &str) -> ApiResult<&mut SecretScope> {
        self.secret_scopes
            .get_mut(scope)
            .ok_or_else(|| missing_scope(scope))
    }
}

#[tracing::instrument(skip_all)]
async fn list_scopes(State(emu): State<Shared>) -> ApiResult<Json<Value>> {
    let (w, _) = emu.world();
    let scopes: Vec<Value> = w
        .secret_scopes
        .keys()
        .map(|n| json!({"name": n, "backend_type": "DATABRICKS"}))
        .collect();
    let mut out = json!({});
    if !scopes.is_empty() {
        out["scopes"] = Value::Array(scopes);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct CreateScopeBody {
    scope: Option<String>,
    initial_manage_principal: Option<String>,
    scope_backend_type: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn create_scope(
    State(emu): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: CreateScopeBody = parse_body(&body)?;
    let name = required(b.scope, "scope")?;
    if !valid_name(&name) {
        return Err(ApiError::invalid(format!(
            "Invalid scope name {name}: must consist of alphanumeric characters, dashes, underscores and periods, and may not exceed 128 characters"
        )));
    }
    match b.scope_backend_type.as_deref() {
        None | Some("") | Some("DATABRICKS") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Unsupported scope_backend_type {other} on this workspace: only DATABRICKS"
            )))
        }
    }
    let manager = match b.initial_manage_principal.filter(|s| !s.is_empty()) {
        Some(p) => p,
        None => match caller {
            Caller::Pat => ADMIN_USER.to_string(),
            Caller::ServicePrincipal(id) => id,
        },
    };
    let (mut w, _) = emu.world();
    if w.secret_scopes.contains_key(&name) {
        return Err(ApiError::already_exists(format!(
            "Scope {name} already exists!"
        )));
    }
    let mut scope = SecretScope::new(&name);
    scope.acls.insert(manager, "MANAGE");
    w.secret_scopes.insert(name, scope);
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct ScopeBody {
    scope: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn delete_scope(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: ScopeBody = parse_body(&body)?;
    let name = required(b.scope, "scope")?;
    let (mut w, _) = emu.world();
    w.secret_scopes
        .remove(&name)
        .ok_or_else(|| missing_scope(&name))?;
    Ok(Json(json!({})))
}

#[tracing::instrument(skip_all)]
async fn list_secrets(
    State(emu): State<Shared>,
    Query(p): Query<Params>,
) -> ApiResult<Json<Value>> {
    let scope = p.required("scope")?;
    let (w, _) = emu.world();
    let s = w
        .secret_scopes
        .get(scope)
        .ok_or_else(|| missing_scope(scope))?;
    let secrets: Vec<Value> = s
        .secrets
        .iter()
        .map(|(k, v)| json!({"key": k, "last_updated_timestamp": v.last_updated_timestamp}))
        .collect();
    let mut out = json!({});
    if !secrets.is_empty() {
        out["secrets"] = Value::Array(secrets);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct PutSecretBody {
    scope: Option<String>,
    key: Option<String>,
    string_value: Option<String>,
    bytes_value: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn put_secret(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: PutSecretBody = parse_body(&body)?;
    let scope = required(b.scope, "scope")?;
    let key = required(b.key, "key")?;
    if !valid_name(&key) {
        return Err(ApiError::invalid(format!(
            "Invalid secret key {key}: must consist of alphanumeric characters, dashes, underscores and periods, and may not exceed 128 characters"
        )));
    }
    let value = match (b.string_value, b.bytes_value) {
        (Some(v), None) | (None, Some(v)) => v,
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Only one of string_value and bytes_value can be specified",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "One of string_value and bytes_value must be specified",
            ))
        }
    };
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::invalid(format!(
            "Secret value exceeds the maximum size of {MAX_VALUE_BYTES} bytes"
        )));
    }
    let (mut w, now) = emu.world();
    w.scope_mut(&scope)?
        .secrets
        .insert(key, Secret::new(value, now.emu_ms));
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct DeleteSecretBody {
    scope: Option<String>,
    key: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn delete_secret(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: DeleteSecretBody = parse_body(&body)?;
    let scope = required(b.scope, "scope")?;
    let key = required(b.key, "key")?;
    let (mut w, _) = emu.world();
    w.scope_mut(&scope)?.secrets.remove(&key).ok_or_else(|| {
        ApiError::not_found(format!("Secret {key} does not exist in scope {scope}"))
    })?;
    Ok(Json(json!({})))
}

#[tracing::instrument(skip_all)]
async fn list_acls(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let scope = p.required("scope")?;
    let (w, _) = emu.world();
    let s = w
        .secret_scopes
        .get(scope)
        .ok_or_else(|| missing_scope(scope))?;
    let items: Vec<Value> = s
        .acls
        .iter()
        .map(|(p, perm)| json!({"principal": p, "permission": perm}))
        .collect();
    let mut out = json!({});
    if !items.is_empty() {
        out["items"] = Value::Array(items);
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_acl(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let scope = p.required("scope")?;
    let principal = p.required("principal")?;
    let (w, _) = emu.world();
    let s = w
        .secret_scopes
        .get(scope)
        .ok_or_else(|| missing_scope(scope))?;
    let perm = s.acls.get(principal).ok_or_else(|| {
        ApiError::not_found(format!("No ACL for principal {principal} in scope {scope}"))
    })?;
    Ok(Json(json!({"principal": principal, "permission": perm})))
}

#[derive(Deserialize)]
struct PutAclBody {
    scope: Option<String>,
    principal: Option<String>,
    permission: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn put_acl(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: PutAclBody = parse_body(&body)?;
    let scope = required(b.scope, "scope")?;
    let principal = required(b.principal, "principal")?;
    let perm = permission(&required(b.permission, "permission")?)?;
    let (mut w, _) = emu.world();
    w.scope_mut(&scope)?.acls.insert(principal, perm);
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct DeleteAclBody {
    scope: Option<String>,
    principal: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn delete_acl(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: DeleteAclBody = parse_body(&body)?;
    let scope = required(b.scope, "scope")?;
    let principal = required(b.principal, "principal")?;
    let (mut w, _) = emu.world();
    w.scope_mut(&scope)?
        .acls
        .remove(&principal)
        .ok_or_else(|| {
            ApiError::not_found(format!("No ACL for principal {principal} in scope {scope}"))
        })?;
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/secrets/scopes/list", get(list_scopes))
        .route("/api/2.0/secrets/scopes/create", post(create_scope))
        .route("/api/2.0/secrets/scopes/delete", post(delete_scope))
        .route("/api/2.0/secrets/list", get(list_secrets))
        .route("/api/2.0/secrets/put", post(put_secret))
        .route("/api/2.0/secrets/delete", post(delete_secret))
        .route("/api/2.0/secrets/acls/list", get(list_acls))
        .route("/api/2.0/secrets/acls/get", get(get_acl))
        .route("/api/2.0/secrets/acls/put", post(put_acl))
        .route("/api/2.0/secrets/acls/delete", post(delete_acl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_permissions() {
        assert!(valid_name("scope-00"));
        assert!(valid_name("db.password_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(129)));
        assert_eq!(permission("WRITE").unwrap(), "WRITE");
        let e = permission("OWN").unwrap_err();
        assert_eq!(e.code, json!("INVALID_PARAMETER_VALUE"));
        assert!(e.message.contains("OWN"));
        assert!(!format!("{:?}", Secret::new("hunter2", 1)).contains("hunter2"));
    }
}
