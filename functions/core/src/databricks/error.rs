//! Typed Databricks API errors.
//!
//! Wire format: `{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}`. A bad PAT answers
//! 403 with a *numeric* `error_code` (`{"error_code": 403, ...}`); both are parsed. A missing
//! cluster or job answers 400 `INVALID_PARAMETER_VALUE` "... does not exist", which callers want
//! as [`ErrorKind::NotFound`], so it is mapped like the official SDK does.

use std::time::Duration;

/// What went wrong, in the terms a DR step decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object does not exist (404, or 400 "does not exist").
    NotFound,
    /// A parameter was refused (400 INVALID_PARAMETER_VALUE / MALFORMED_REQUEST).
    InvalidParameter,
    /// The object is in a state that does not allow the call (400 INVALID_STATE).
    InvalidState,
    /// 401: missing or expired credentials.
    Unauthenticated,
    /// 403: the token is bad or lacks the permission.
    PermissionDenied,
    /// 409: a conflicting change (e.g. racing the scheduler).
    Conflict,
    /// 429 REQUEST_LIMIT_EXCEEDED after all retries.
    RateLimited,
    /// 5xx after all retries.
    Unavailable,
    /// No HTTP answer at all (connection refused/reset, timeout): the workspace is unreachable.
    Unreachable,
    /// The caller's deadline would pass before the next attempt.
    DeadlineExceeded,
    /// The answer could not be decoded.
    Decode,
    /// Anything else.
    Unexpected,
}

impl ErrorKind {
    /// Whether the failure says nothing about the request itself, so trying again later may work.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Unavailable
                | ErrorKind::Unreachable
                | ErrorKind::DeadlineExceeded
        )
    }
}

/// An error from one Databricks API call, with the endpoint it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{endpoint}: {kind:?}{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct ApiError {
    /// Classified kind.
    pub kind: ErrorKind,
    /// `METHOD /path` of the call.
    pub endpoint: String,
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The `error_code` from the body, as a string (numeric codes are stringified).
    pub code: Option<String>,
    /// Human-readable detail.
    pub message: String,
    /// `Retry-After` the server asked for, if any.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, endpoint: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            endpoint: endpoint.to_string(),
            status: None,
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Builds the error for a non-success answer from its status and body.
    pub(crate) fn from_response(
        endpoint: &str,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Self {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let code = parsed
            .as_ref()
            .and_then(|v| v.get("error_code"))
            .and_then(|c| match c {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("message").or_else(|| v.get("error_description")))
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
        let kind = classify(status, code.as_deref(), &message);
        Self {
            kind,
            endpoint: endpoint.to_string(),
            status: Some(status),
            code,
            message,
            retry_after,
        }
    }

    /// True for [`ErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

fn classify(status: u16, code: Option<&str>, message: &str) -> ErrorKind {
    match (status, code) {
        (400, Some("INVALID_PARAMETER_VALUE"))
            if message.contains("does not exist") || message.starts_with("Can't find") =>
        {
            ErrorKind::NotFound
        }
        (400, Some("INVALID_STATE")) => ErrorKind::InvalidState,
        (400, _) => ErrorKind::InvalidParameter,
        (401, _) => ErrorKind::Unauthenticated,
        (403, _) => ErrorKind::PermissionDenied,
        (404, _) => ErrorKind::NotFound,
        (409, _) => ErrorKind::Conflict,
        (429, _) => ErrorKind::RateLimited,
        (500..=599, _) => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_error_code_is_parsed() {
        let e = ApiError::from_response(
            "GET /x",
            403,
            br#"{"error_code": 403, "message": "Invalid access token."}"#,
            None,
        );
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(e.code.as_deref(), Some("403"));
        assert_eq!(e.message, "Invalid access token.");
    }

    #[test]
    fn missing_cluster_is_not_found() {
        let e = ApiError::from_response(
            "GET /api/2.1/clusters/get",
            400,
            br#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Cluster abc does not exist"}"#,
            None,
        );
        assert!(e.is_not_found());
        let e = ApiError::from_response(
            "POST /x",
            400,
            br#"{"error_code":"INVALID_PARAMETER_VALUE","message":"bad"}"#,
            None,
        );
        assert_eq!(e.kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn non_json_body_is_kept_short() {
        let e = ApiError::from_response("GET /x", 502, &[b'x'; 1000], None);
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(e.message.len(), 200);
    }
}
