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
    /// Where OAuth tokens come from: `/oidc/v1/token` at a workspace,
    /// `/oidc/accounts/{account_id}/v1/token` at the account host.
    token_path: String,
    cache: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenSource {
    pub(crate) fn new(credentials: Credentials, token_path: &str) -> Self {
        Self {
            credentials,
            token_path: token_path.to_string(),
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
        let endpoint = format!("POST {}", self.token_path);
        let endpoint = endpoint.as_str();
        let response = http
            .post(format!("{base}{}", self.token_path))
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
        let token = Secret::new(parsed.access_token);
        *cache = Some(CachedToken {
            token: token.clone(),
            refresh_at: refresh_at(Instant::now(), parsed.expires_in),
        });
        Ok(token)
    }
}

/// A workspace's OAuth token endpoint.
pub const WORKSPACE_TOKEN_PATH: &str = "/oidc/v1/token";

/// The account host's OAuth token endpoint for `account_id` (the account API takes no PATs).
pub fn account_token_path(account_id: &str) -> String {
    format!("/oidc/accounts/{account_id}/v1/token")
}

/// Lifetime assumed when the server announces none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Longest lifetime believed: a huge `expires_in` (a bug, a proxy) must neither keep a token
/// for ever nor overflow `Instant` arithmetic, which panics.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// When to fetch a new token: a minute (or a tenth of the lifetime) before it expires. A zero
/// lifetime yields `now`: the token serves the request that fetched it and is never reused.
fn refresh_at(now: Instant, expires_in: Option<u64>) -> Instant {
    let lifetime = expires_in
        .map_or(DEFAULT_LIFETIME, Duration::from_secs)
        .min(MAX_LIFETIME);
    let margin = std::cmp::min(Duration::from_secs(60), lifetime / 10);
    now.checked_add(lifetime.saturating_sub(margin))
        .unwrap_or(now)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::AsyncWriteExt;

    use super::*;

    #[test]
    fn lifetimes_are_clamped() {
        let now = Instant::now();
        let ahead = |expires_in| refresh_at(now, expires_in).duration_since(now);
        assert_eq!(
            ahead(Some(u64::MAX)),
            MAX_LIFETIME - Duration::from_secs(60)
        );
        assert_eq!(ahead(Some(86_401)), MAX_LIFETIME - Duration::from_secs(60));
        assert_eq!(ahead(None), Duration::from_secs(3540));
        assert_eq!(ahead(Some(100)), Duration::from_secs(90));
        assert_eq!(ahead(Some(0)), Duration::ZERO);
    }

    /// A token endpoint answering every request with `body`; counts the requests.
    async fn token_server(body: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                // Read the head and the form body before answering.
                crate::test_support::read_request(&mut socket).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (base, hits)
    }

    fn oauth() -> TokenSource {
        TokenSource::new(
            Credentials::OAuthM2m {
                client_id: "sp".into(),
                client_secret: Secret::new("s".to_string()),
            },
            WORKSPACE_TOKEN_PATH,
        )
    }

    #[tokio::test]
    async fn huge_expires_in_does_not_panic_and_is_cached() {
        let (base, hits) =
            token_server(r#"{"access_token":"t1","expires_in":18446744073709551615}"#).await;
        let tokens = oauth();
        let http = crate::http::client();
        assert_eq!(tokens.bearer(&http, &base).await.unwrap().expose(), "t1");
        assert_eq!(tokens.bearer(&http, &base).await.unwrap().expose(), "t1");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the second call used the cache"
        );
    }

    #[tokio::test]
    async fn zero_expires_in_is_used_once() {
        let (base, hits) = token_server(r#"{"access_token":"t0","expires_in":0}"#).await;
        let tokens = oauth();
        let http = crate::http::client();
        assert_eq!(tokens.bearer(&http, &base).await.unwrap().expose(), "t0");
        assert_eq!(tokens.bearer(&http, &base).await.unwrap().expose(), "t0");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            2,
            "a zero lifetime is not cached"
        );
    }

    #[tokio::test]
    async fn expires_in_beyond_u64_is_a_decode_error() {
        let (base, _) = token_server(r#"{"access_token":"t","expires_in":1e400}"#).await;
        let err = oauth()
            .bearer(&crate::http::client(), &base)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Decode, "{err}");
    }
}
