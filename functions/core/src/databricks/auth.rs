//! Workspace credentials: a personal access token, or OAuth M2M for a service principal.
//!
//! OAuth M2M: `POST /oidc/v1/token` with form `grant_type=client_credentials&scope=all-apis`
//! and HTTP Basic `client_id:client_secret` → `{access_token, token_type, expires_in}`. The
//! token is cached and refreshed a minute (or a tenth of its lifetime) before it expires.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::{ApiError, ErrorKind};
use crate::secret::Secret;

/// How the client authenticates. Secrets are wrapped so they never print.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Personal access token, sent as `Authorization: Bearer`.
    Pat(Secret),
    /// OAuth machine-to-machine for a service principal.
    OAuthM2m {
        /// The service principal's application id.
        client_id: String,
        /// Its OAuth secret.
        client_secret: Secret,
    },
}

#[derive(Debug)]
struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

/// Hands out a bearer token, fetching and caching OAuth tokens as needed.
#[derive(Debug)]
pub(crate) struct TokenSource {
    credentials: Credentials,
    cache: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenSource {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            cache: Mutex::new(None),
        }
    }

    /// Forgets a cached OAuth token (after a 401), so the next call fetches a new one.
    pub(crate) async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    pub(crate) fn is_oauth(&self) -> bool {
        matches!(self.credentials, Credentials::OAuthM2m { .. })
    }

    /// The bearer token for the next request.
    pub(crate) async fn bearer(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<Secret, ApiError> {
        let (client_id, client_secret) = match &self.credentials {
            Credentials::Pat(token) => return Ok(token.clone()),
            Credentials::OAuthM2m {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            if Instant::now() < cached.refresh_at {
                return Ok(cached.token.clone());
            }
        }
        let endpoint = "POST /oidc/v1/token";
        let response = http
            .post(format!("{base}/oidc/v1/token"))
            .basic_auth(client_id, Some(client_secret.expose()))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            .send()
            .await
            .map_err(|e| ApiError::new(ErrorKind::Unreachable, endpoint, transport_message(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| ApiError::new(ErrorKind::Unreachable, endpoint, transport_message(&e)))?;
        if !(200..300).contains(&status) {
            return Err(ApiError::from_response(endpoint, status, &body, None));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorKind::Decode, endpoint, e.to_string()))?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        let margin = std::cmp::min(Duration::from_secs(60), lifetime / 10);
        let token = Secret::new(parsed.access_token);
        *cache = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }
}

/// A transport error's message without the URL's query (which never holds secrets here, but
/// keep error text short and stable).
pub(crate) fn transport_message(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() || e.is_body() {
        "connection closed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}
