//! The Databricks error wire format: `{"error_code": "...", "message": "..."}` with an HTTP
//! status. The bad-token quirk uses a *numeric* `error_code` (403).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An API error as the real service encodes it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    /// Usually a string code; the invalid-token quirk uses the number 403.
    pub code: Value,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: Value::String(code.to_string()),
            message: message.into(),
        }
    }
    /// 400 INVALID_PARAMETER_VALUE (also what a missing cluster or job answers).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }
    /// 400 INVALID_STATE.
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_STATE", message)
    }
    /// 404 RESOURCE_DOES_NOT_EXIST.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST", message)
    }
    /// 400 MALFORMED_REQUEST.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", message)
    }
    /// 400 RESOURCE_ALREADY_EXISTS (secret scopes, workspace paths: the real services answer
    /// 400, not 409, with this code).
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS", message)
    }
    /// 409 RESOURCE_CONFLICT.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "RESOURCE_CONFLICT", message)
    }
    /// 404 ENDPOINT_NOT_FOUND: `No API found for 'METHOD /path'`.
    pub fn endpoint_not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
            format!("No API found for '{method} {path}'"),
        )
    }
    /// 403 with the numeric error code quirk.
    pub fn invalid_token() -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: json!(403),
            message: "Invalid access token.".to_string(),
        }
    }
    /// 429 REQUEST_LIMIT_EXCEEDED (the response carries `Retry-After: 1`).
    pub fn rate_limited(family: &str) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "REQUEST_LIMIT_EXCEEDED",
            format!("Too many requests for {family}. Please retry after some time."),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.code, "message": self.message});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        resp
    }
}

/// Parses a JSON request body; bad JSON (or the wrong shape) is 400 MALFORMED_REQUEST.
/// An empty body parses as `{}`.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body: &[u8] = if body.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("Could not parse request object: {e}")))
}

/// Query string as ordered pairs; supports repeated keys (`filter_by.cluster_states=A&...=B`).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn required(&self, key: &str) -> ApiResult<&str> {
        self.get(key)
            .ok_or_else(|| ApiError::invalid(format!("Missing required field: {key}")))
    }
    pub fn bool(&self, key: &str) -> bool {
        self.get(key)
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false)
    }
    /// An optional integer parameter; a non-number is 400 INVALID_PARAMETER_VALUE.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(format!("Invalid value for {key}: {v}"))),
        }
    }
}

/// Opaque page tokens: URL-safe base64 of an internal cursor string.
pub mod page {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::{ApiError, ApiResult};

    pub fn encode(cursor: &str) -> String {
        URL_SAFE_NO_PAD.encode(cursor.as_bytes())
    }

    /// Decodes a token produced by [`encode`] (with its `kind:` prefix checked).
    pub fn decode(token: &str, kind: &str) -> ApiResult<String> {
        let bad = || ApiError::invalid(format!("Invalid page token: {token}"));
        let raw = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| bad())?;
        let s = String::from_utf8(raw).map_err(|_| bad())?;
        s.strip_prefix(kind)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::to_string)
            .ok_or_else(bad)
    }

    /// Offset-based cursor helpers.
    pub fn encode_offset(kind: &str, offset: usize) -> String {
        encode(&format!("{kind}:{offset}"))
    }
    pub fn decode_offset(token: Option<&str>, kind: &str) -> ApiResult<usize> {
        match token {
            None | Some("") => Ok(0),
            Some(t) => decode(t, kind)?
                .parse()
                .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}"))),
        }
    }
}
