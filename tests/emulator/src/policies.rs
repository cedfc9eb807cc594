//! Cluster Policies API 2.0.
//!
//! - `GET /api/2.0/policies/clusters/list?sort_column=&sort_order=` → `{policies?: [Policy],
//!   total_count}`: all of them, not paged. Default order: by name, ascending;
//!   `sort_column` `POLICY_NAME` | `POLICY_CREATION_TIME`, `sort_order` `ASC` | `DESC` (other
//!   values → 400 INVALID_PARAMETER_VALUE).
//! - `GET /api/2.0/policies/clusters/get?policy_id=` → `Policy`; unknown → 404
//!   RESOURCE_DOES_NOT_EXIST `Can't find a cluster policy with id: <id>.` (the real wording).
//! - `POST /api/2.0/policies/clusters/edit {policy_id, name, definition?, description?,
//!   max_clusters_per_user?}` → `{}`: replaces the writable fields (an absent `definition` is
//!   `{}`, an absent `description` / `max_clusters_per_user` is cleared). `name` is required,
//!   1–100 characters and unique (400 INVALID_PARAMETER_VALUE otherwise); a `definition` that is
//!   not a JSON object string → 400 INVALID_PARAMETER_VALUE naming `definition`; a negative
//!   `max_clusters_per_user` → 400 INVALID_PARAMETER_VALUE.
//!
//! `Policy` = `{policy_id, name, definition (a JSON document as a *string*), description?,
//! max_clusters_per_user?, creator_user_name, created_at_timestamp, is_default: false}`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{parse_body, ApiError, ApiResult, Params};
use crate::state::Shared;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub policy_id: String,
    pub name: String,
    /// The policy definition document, a JSON object serialized as a string.
    pub definition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_clusters_per_user: Option<i64>,
    pub creator_user_name: String,
    pub created_at_timestamp: i64,
    pub is_default: bool,
}

impl Policy {
    pub fn new(policy_id: String, name: &str, definition: &str, created_at: i64) -> Self {
        Policy {
            policy_id,
            name: name.to_string(),
            definition: definition.to_string(),
            description: None,
            max_clusters_per_user: None,
            creator_user_name: crate::scim::ADMIN_USER.to_string(),
            created_at_timestamp: created_at,
            is_default: false,
        }
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Can't find a cluster policy with id: {id}."))
}

/// Checks that `definition` is a JSON object document.
pub fn check_definition(definition: &str) -> ApiResult<()> {
    match serde_json::from_str::<Value>(definition) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(_) => Err(ApiError::invalid(
            "Invalid policy definition: definition must be a JSON object",
        )),
        Err(e) => Err(ApiError::invalid(format!(
            "Invalid policy definition: definition is not valid JSON ({e})"
        ))),
    }
}

#[tracing::instrument(skip_all)]
async fn list(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let by_time = match p.get("sort_column") {
        None | Some("") | Some("POLICY_NAME") => false,
        Some("POLICY_CREATION_TIME") => true,
        Some(other) => return Err(ApiError::invalid(format!("Invalid sort_column: {other}"))),
    };
    let desc = match p.get("sort_order") {
        None | Some("") | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => return Err(ApiError::invalid(format!("Invalid sort_order: {other}"))),
    };
    let (w, _) = emu.world();
    let mut policies: Vec<&Policy> = w.policies.values().collect();
    policies.sort_by(|a, b| {
        let o = if by_time {
            a.created_at_timestamp.cmp(&b.created_at_timestamp)
        } else {
            a.name.cmp(&b.name)
        };
        o.then_with(|| a.policy_id.cmp(&b.policy_id))
    });
    if desc {
        policies.reverse();
    }
    let mut out = json!({ "total_count": policies.len() });
    if !policies.is_empty() {
        out["policies"] = json!(policies);
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_policy(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let id = p.required("policy_id")?;
    let (w, _) = emu.world();
    let policy = w.policies.get(id).ok_or_else(|| missing(id))?;
    Ok(Json(json!(policy)))
}

#[derive(Deserialize)]
struct EditBody {
    policy_id: Option<String>,
    name: Option<String>,
    definition: Option<String>,
    description: Option<String>,
    max_clusters_per_user: Option<i64>,
}

#[tracing::instrument(skip_all)]
async fn edit(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: EditBody = parse_body(&body)?;
    let id = b
        .policy_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: policy_id"))?;
    let name = b
        .name
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: name"))?;
    if name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "Cluster policy name must be between 1 and 100 characters",
        ));
    }
    let definition = b.definition.unwrap_or_else(|| "{}".to_string());
    check_definition(&definition)?;
    if b.max_clusters_per_user.is_some_and(|m| m < 0) {
        return Err(ApiError::invalid(
            "max_clusters_per_user must be a non-negative number",
        ));
    }
    let (mut w, _) = emu.world();
    if !w.policies.contains_key(&id) {
        return Err(missing(&id));
    }
    if w.policies
        .values()
        .any(|p| p.name == name && p.policy_id != id)
    {
        return Err(ApiError::invalid(format!(
            "Cluster policy with name {name} already exists"
        )));
    }
    if let Some(p) = w.policies.get_mut(&id) {
        p.name = name;
        p.definition = definition;
        p.description = b.description.filter(|d| !d.is_empty());
        p.max_clusters_per_user = b.max_clusters_per_user;
    }
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/policies/clusters/list", get(list))
        .route("/api/2.0/policies/clusters/get", get(get_policy))
        .route("/api/2.0/policies/clusters/edit", post(edit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_must_be_json_objects() {
        assert!(check_definition(r#"{"spark_version":{"type":"fixed","value":"x"}}"#).is_ok());
        assert!(check_definition("{}").is_ok());
        for bad in ["[]", "\"x\"", "{not json", ""] {
            let e = check_definition(bad).unwrap_err();
            assert_eq!(e.code, json!("INVALID_PARAMETER_VALUE"));
            assert!(e.message.contains("definition"), "{bad}: {}", e.message);
        }
    }
}
