//! The workspace client: one HTTP connection pool, authentication, the per-family limiter,
//! retries and the caller's deadline. API families add their typed calls in their own modules.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crate::retry::RetryPolicy;
use reqwest::Method;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use super::{
    auth::{transport_message, Credentials, TokenSource},
    error::{ApiError, ErrorKind},
    limiter::{Family, FamilyLimiter, RateLimits},
};

/// The longest wait a `Retry-After` may ask for: a larger one (even one too large for a
/// `Duration`) waits this long. The caller's deadline bounds every wait anyway.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `Retry-After` in seconds (Databricks sends an integer; fractions are accepted). A date, a
/// negative or a non-number is ignored (the default backoff applies).
pub(crate) fn parse_retry_after(header: &str) -> Option<Duration> {
    let secs = header
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)?;
    Some(
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_RETRY_AFTER)
            .min(MAX_RETRY_AFTER),
    )
}

/// Everything needed to build a [`WorkspaceClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Workspace URL, e.g. `https://dbc-123.cloud.databricks.com` (no trailing slash needed).
    pub host: String,
    /// PAT or OAuth M2M.
    pub credentials: Credentials,
    /// Per-family client-side limits.
    pub rate_limits: RateLimits,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Path of the OAuth token endpoint on `host` (see [`super::auth::account_token_path`]).
    pub token_path: String,
}

impl ClientConfig {
    /// Defaults: published rate limits, 8 attempts, 5 s connect and 30 s request timeouts.
    pub fn new(host: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            host: host.into().trim_end_matches('/').to_string(),
            credentials,
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            token_path: super::auth::WORKSPACE_TOKEN_PATH.to_string(),
        }
    }
}

/// Counters a benchmark or a step report reads.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// HTTP requests sent (retries included).
    pub requests: AtomicU64,
    /// Answers with status 429.
    pub rate_limited: AtomicU64,
    /// Answers with a 5xx status.
    pub server_errors: AtomicU64,
    /// Requests that got no HTTP answer.
    pub transport_errors: AtomicU64,
}

/// A point-in-time copy of [`ClientStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// HTTP requests sent.
    pub requests: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// No answer.
    pub transport_errors: u64,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    host: String,
    tokens: TokenSource,
    limiter: FamilyLimiter,
    retry: RetryPolicy,
    stats: ClientStats,
}

/// A Databricks workspace REST client. Cheap to clone; clones share the connection pool, the
/// token cache, the limiter and the counters.
#[derive(Debug, Clone)]
pub struct WorkspaceClient {
    inner: Arc<Inner>,
    deadline: Option<Instant>,
}

impl WorkspaceClient {
    /// Builds a client. Fails only if the TLS/HTTP stack cannot be initialised.
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let http = crate::http::client_builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("lifeboat/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::new(ErrorKind::Unexpected, "client", e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                host: config.host,
                tokens: TokenSource::new(config.credentials, &config.token_path),
                limiter: FamilyLimiter::new(&config.rate_limits),
                retry: config.retry,
                stats: ClientStats::default(),
            }),
            deadline: None,
        })
    }

    /// A handle whose calls give up (with [`ErrorKind::DeadlineExceeded`]) rather than wait
    /// past `deadline` — so a Lambda step returns before its own timeout.
    pub fn with_deadline(&self, deadline: Instant) -> Self {
        Self {
            inner: self.inner.clone(),
            deadline: Some(deadline),
        }
    }

    /// The workspace URL.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// Counters since the client was built.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.inner.stats;
        StatsSnapshot {
            requests: s.requests.load(Ordering::Relaxed),
            rate_limited: s.rate_limited.load(Ordering::Relaxed),
            server_errors: s.server_errors.load(Ordering::Relaxed),
            transport_errors: s.transport_errors.load(Ordering::Relaxed),
        }
    }

    /// GET with query parameters.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        family: Family,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.call(family, Method::GET, path, query, None, true)
            .await
    }

    /// POST with a JSON body.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        family: Family,
        path: &str,
        body: serde_json::Value,
    ) -> Result<T, ApiError> {
        self.call(family, Method::POST, path, &[], Some(body), true)
            .await
    }

    /// POST with a JSON body for a call that is *not* idempotent: a 5xx or a connection lost
    /// after the request was sent is returned, not retried (the caller reads the state and
    /// decides). 429s and token refreshes, where nothing was done, are still retried.
    pub(crate) async fn post_once<T: DeserializeOwned>(
        &self,
        family: Family,
        path: &str,
        body: serde_json::Value,
    ) -> Result<T, ApiError> {
        self.call(family, Method::POST, path, &[], Some(body), false)
            .await
    }

    /// One logical call: limiter, auth, send, classify, retry. All POST endpoints Lifeboat uses
    /// are idempotent (update, edit, start/stop/delete, cancel, run-now with an idempotency
    /// token), so retrying them after an ambiguous failure is safe.
    async fn call<T: DeserializeOwned>(
        &self,
        family: Family,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
        retry_ambiguous: bool,
    ) -> Result<T, ApiError> {
        let endpoint = format!("{method} {path}");
        let url = format!("{}{}", self.inner.host, path);
        let policy = &self.inner.retry;
        let mut attempt: u32 = 0;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            if let Some(deadline) = self.deadline {
                if Instant::now() >= deadline {
                    return Err(ApiError::new(
                        ErrorKind::DeadlineExceeded,
                        &endpoint,
                        "deadline reached before the request could be sent",
                    ));
                }
            }
            self.inner.limiter.acquire(family).await;
            let token = self
                .inner
                .tokens
                .bearer(&self.inner.http, &self.inner.host)
                .await;
            let error = match token {
                Err(e) if !e.kind.is_transient() => return Err(e),
                Err(e) => e,
                Ok(token) => {
                    let mut request = self
                        .inner
                        .http
                        .request(method.clone(), &url)
                        .bearer_auth(token.expose());
                    if !query.is_empty() {
                        request = request.query(query);
                    }
                    // A request in flight must not outlive the caller's deadline either.
                    if let Some(deadline) = self.deadline {
                        request = request.timeout(
                            deadline
                                .saturating_duration_since(Instant::now())
                                .max(Duration::from_millis(1)),
                        );
                    }
                    if let Some(body) = &body {
                        request = request.json(body);
                    }
                    self.inner.stats.requests.fetch_add(1, Ordering::Relaxed);
                    match self.send(request, &endpoint).await {
                        Ok(bytes) => {
                            let bytes = if bytes.is_empty() {
                                &b"{}"[..]
                            } else {
                                &bytes[..]
                            };
                            return serde_json::from_slice(bytes).map_err(|e| {
                                ApiError::new(ErrorKind::Decode, &endpoint, e.to_string())
                            });
                        }
                        Err(e)
                            if !retry_ambiguous
                                && matches!(
                                    e.kind,
                                    ErrorKind::Unavailable | ErrorKind::Unreachable
                                ) =>
                        {
                            return Err(e)
                        }
                        Err(e) => e,
                    }
                }
            };
            // An OAuth token revoked or expired early: 401, or the 403 with the numeric
            // `error_code` a workspace answers for a bad token. Fetch a new one, once.
            let token_refused = error.kind == ErrorKind::Unauthenticated
                || (error.kind == ErrorKind::PermissionDenied
                    && error.code.as_deref() == Some("403"));
            if token_refused && self.inner.tokens.is_oauth() && !reauthenticated {
                self.inner.tokens.invalidate().await;
                reauthenticated = true;
                continue;
            }
            let retryable = error.kind.is_transient() && error.kind != ErrorKind::DeadlineExceeded;
            if !retryable || !policy.may_retry(attempt) {
                return Err(error);
            }
            let wait = self.backoff(&error, attempt);
            if let Some(deadline) = self.deadline {
                if Instant::now() + wait >= deadline {
                    return Err(ApiError {
                        kind: ErrorKind::DeadlineExceeded,
                        message: format!("gave up before the deadline; last error: {error}"),
                        ..error
                    });
                }
            }
            debug!(%endpoint, attempt, wait_ms = wait.as_millis() as u64, kind = ?error.kind, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        endpoint: &str,
    ) -> Result<bytes::Bytes, ApiError> {
        let stats = &self.inner.stats;
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::new(
                    ErrorKind::Unreachable,
                    endpoint,
                    transport_message(&e),
                ));
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::new(
                    ErrorKind::Unreachable,
                    endpoint,
                    transport_message(&e),
                ));
            }
        };
        if (200..300).contains(&status) {
            return Ok(body);
        }
        if status == 429 {
            stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        } else if status >= 500 {
            stats.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let error = ApiError::from_response(endpoint, status, &body, retry_after);
        if status >= 500 {
            warn!(%endpoint, status, "server error");
        }
        Err(error)
    }

    fn backoff(&self, error: &ApiError, attempt: u32) -> Duration {
        let policy = &self.inner.retry;
        let base = match (error.kind, error.status) {
            (ErrorKind::RateLimited, _) | (_, Some(503)) => {
                error.retry_after.unwrap_or(Duration::from_secs(1))
            }
            _ => policy.exponential(attempt),
        };
        base + policy.jitter()
    }
}
