//! Authentication: the PAT, OAuth M2M (client credentials) and the discovery documents.
//!
//! - Every `/api/` request needs `Authorization: Bearer <PAT or issued access token>`; anything
//!   else → 403 `{"error_code": 403, "message": "Invalid access token."}` (numeric code quirk).
//!   Expired OAuth tokens are refused the same way.
//! - `GET /.well-known/databricks-config` (no auth) → `{oidc_endpoint: "<url>/oidc",
//!   workspace_id: "<id>", cloud: "aws"}`.
//! - `GET /oidc/.well-known/oauth-authorization-server` → `{issuer, authorization_endpoint,
//!   token_endpoint, ...}`.
//! - `POST /oidc/v1/token` (form `grant_type=client_credentials&scope=all-apis`, HTTP Basic
//!   `client_id:client_secret` or the same as form fields) → `{access_token, token_type:
//!   "Bearer", expires_in, scope}`; bad credentials → 401 `{"error": "invalid_client",
//!   "error_description": ...}`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::state::{lock, Shared};

/// Who is calling (inserted into request extensions by the gate).
#[derive(Debug, Clone)]
pub enum Caller {
    Pat,
    ServicePrincipal(String),
}

/// Issued OAuth tokens: token → (expiry, client id).
#[derive(Debug, Default)]
pub struct Auth {
    tokens: HashMap<String, (Instant, String)>,
}

impl Auth {
    pub fn issue(&mut self, client_id: &str, ttl: Duration) -> String {
        let token = format!("dapi-oauth-{}", uuid::Uuid::new_v4().simple());
        self.tokens
            .insert(token.clone(), (Instant::now() + ttl, client_id.to_string()));
        token
    }

    /// Resolves a bearer token; None when unknown or expired.
    pub fn check(&self, pat: &str, token: &str) -> Option<Caller> {
        if !pat.is_empty() && token == pat {
            return Some(Caller::Pat);
        }
        match self.tokens.get(token) {
            Some((exp, client)) if *exp > Instant::now() => {
                Some(Caller::ServicePrincipal(client.clone()))
            }
            _ => None,
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[tracing::instrument(skip_all)]
async fn databricks_config(State(emu): State<Shared>) -> Json<Value> {
    let url = lock(&emu.world).url.clone();
    Json(json!({
        "oidc_endpoint": format!("{url}/oidc"),
        "workspace_id": emu.config.workspace_id.to_string(),
        "cloud": "aws",
    }))
}

#[tracing::instrument(skip_all)]
async fn oauth_server(State(emu): State<Shared>) -> Json<Value> {
    let url = lock(&emu.world).url.clone();
    Json(json!({
        "issuer": format!("{url}/oidc"),
        "authorization_endpoint": format!("{url}/oidc/v1/authorize"),
        "token_endpoint": format!("{url}/oidc/v1/token"),
        "jwks_uri": format!("{url}/oidc/jwks.json"),
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["all-apis", "offline_access", "openid", "profile", "email"],
    }))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, desc: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": desc})),
    )
        .into_response()
}

#[tracing::instrument(skip_all)]
async fn token(
    State(emu): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (id, secret) = match (basic, f.client_id, f.client_secret) {
        (Some((i, s)), _, _) => (i, s),
        (None, Some(i), Some(s)) => (i, s),
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            )
        }
    };
    if f.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only client_credentials is supported",
        );
    }
    let cfg = &emu.config;
    if id != cfg.oauth_client_id || secret != cfg.oauth_client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let ttl = cfg.oauth_token_ttl_secs;
    let access = lock(&emu.auth).issue(&id, Duration::from_secs(ttl));
    Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": f.scope.unwrap_or_else(|| "all-apis".into()),
    }))
    .into_response()
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/.well-known/databricks-config", get(databricks_config))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(oauth_server),
        )
        .route("/oidc/v1/token", post(token))
}
