//! The HTTP front: a hyper accept loop on 127.0.0.1 with a per-request gate in front of the
//! axum router. The gate implements, for `/api/` (and `/oidc/`, `/.well-known/`), in order:
//! outage (drop the connection), fault rules, bearer auth (403 numeric quirk), per-family rate
//! limits (429 + `Retry-After: 1`), then the handler; every `/api/` request is logged (secret
//! values of `secrets/put` redacted).
//! Dropping a connection means abandoning the hyper connection future, so the socket closes
//! without any response bytes — clients see a connection error, as in a regional outage.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::auth::{bearer, Auth};
use crate::config::EmulatorConfig;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::ratelimit::{family_of, RateLimiter};
use crate::state::{lock, Emulator, RequestLog, RequestRecord, Shared};

/// A running emulator; dropping it without [`RunningEmulator::shutdown`] leaves it serving
/// until the runtime ends.
pub struct RunningEmulator {
    url: String,
    port: u16,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    ticker: JoinHandle<()>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting, closes open connections and stops the ticker.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        self.ticker.abort();
    }
}

/// Starts an emulator on an ephemeral port of 127.0.0.1, on the current tokio runtime.
pub async fn start(config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
    serve(config, 0).await
}

/// Starts an emulator on `port` of 127.0.0.1 (0 = ephemeral).
pub async fn serve(config: EmulatorConfig, port: u16) -> std::io::Result<RunningEmulator> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}");
    let (world, conn) = crate::fixtures::build(&config, &url)
        .map_err(|e| std::io::Error::other(format!("fixture: {e}")))?;
    let emu: Shared = Arc::new(Emulator {
        world: Mutex::new(world),
        sql: Mutex::new(conn),
        auth: Mutex::new(Auth::default()),
        limiter: Mutex::new(RateLimiter::new(config.rate_limits.clone())),
        faults: Mutex::new(Faults::new(config.seed)),
        outage: AtomicBool::new(false),
        log: Mutex::new(RequestLog::default()),
        config,
    });
    let router = router(emu.clone());
    let (tx, rx) = watch::channel(false);

    let arm_emu = emu.clone();
    tokio::spawn(async move {
        while !lock(&arm_emu.world).arm_schedules(200) {
            tokio::task::yield_now().await;
        }
    });
    let tick_emu = emu.clone();
    let ticker = tokio::spawn(async move {
        let mut iv = tokio::time::interval(Duration::from_millis(50));
        loop {
            iv.tick().await;
            drop(tick_emu.world());
        }
    });

    let server = tokio::spawn(accept_loop(listener, emu, router, rx));
    Ok(RunningEmulator {
        url,
        port,
        shutdown: tx,
        server,
        ticker,
    })
}

fn router(emu: Shared) -> Router {
    Router::new()
        .merge(crate::auth::routes())
        .merge(crate::clusters::routes())
        .merge(crate::pools::routes())
        .merge(crate::jobs::routes())
        .merge(crate::warehouses::routes())
        .merge(crate::pipelines::routes())
        .merge(crate::permissions::routes())
        .merge(crate::policies::routes())
        .merge(crate::secrets::routes())
        .merge(crate::repos::routes())
        .merge(crate::workspace::routes())
        .merge(crate::unity_catalog::routes())
        .merge(crate::scim::routes())
        .merge(crate::sql::routes())
        .merge(crate::admin::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(emu)
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::endpoint_not_found(method.as_str(), uri.path())
}

async fn accept_loop(
    listener: TcpListener,
    emu: Shared,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (emu, router, mut sd) = (emu.clone(), router.clone(), shutdown.clone());
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let k = kill.clone();
            let svc = hyper::service::service_fn(move |req| {
                gate(emu.clone(), router.clone(), k.clone(), req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
                _ = sd.changed() => {}
            }
        });
    }
}

/// Closes the connection without answering; never returns.
async fn drop_connection(kill: &Notify) -> Result<Response<Body>, Infallible> {
    kill.notify_one();
    std::future::pending().await
}

fn log_request(
    emu: &Emulator,
    method: &str,
    path: &str,
    query: &str,
    status: u16,
    family: &'static str,
    body: Value,
) {
    let mut log = lock(&emu.log);
    log.next_seq += 1;
    log.total += 1;
    *log.by_family.entry(family).or_insert(0) += 1;
    let seq = log.next_seq;
    log.records.push(RequestRecord {
        seq,
        wall_ms: crate::clock::wall_ms(),
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        status,
        family,
        body,
    });
}

/// Secret values never reach the request log (`/__emulator/requests`): a `secrets/put` body
/// keeps its scope and key only.
fn redact(path: &str, body: &mut Value) {
    if !path.ends_with("/secrets/put") {
        return;
    }
    match body.as_object_mut() {
        Some(o) => {
            for k in ["string_value", "bytes_value"] {
                if let Some(v) = o.get_mut(k) {
                    *v = json!("[REDACTED]");
                }
            }
        }
        None => *body = json!("[REDACTED]"),
    }
}

async fn gate(
    emu: Shared,
    router: Router,
    kill: Arc<Notify>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let req = req.map(Body::new);
    let path = req.uri().path().to_string();
    let is_api = path.starts_with("/api/");
    let gated = is_api || path.starts_with("/oidc/") || path.starts_with("/.well-known/");
    if !gated {
        return router.oneshot(req).await;
    }
    let method = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let family = family_of(&method, &path);
    let log = |status: u16, body: Value| {
        if is_api {
            log_request(&emu, &method, &path, &query, status, family, body);
        }
    };
    if emu.outage.load(Ordering::SeqCst) {
        log(0, Value::Null);
        return drop_connection(&kill).await;
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            log(400, Value::Null);
            return Ok(
                ApiError::malformed(format!("Could not read request body: {e}")).into_response(),
            );
        }
    };
    let mut body_json: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    redact(&path, &mut body_json);

    let fault = lock(&emu.faults).check(&method, &path);
    if let Some(f) = fault {
        if f.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
        }
        if f.drop_connection {
            lock(&emu.log).faults_injected_total += 1;
            log(0, body_json);
            return drop_connection(&kill).await;
        }
        if let Some(status) = f.status {
            lock(&emu.log).faults_injected_total += 1;
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let body = f.body.unwrap_or_else(|| {
                json!({"error_code": "TEMPORARILY_UNAVAILABLE",
                       "message": "The service is temporarily unavailable (injected fault)."})
            });
            let mut resp = (status, axum::Json(body)).into_response();
            if let Some(ra) = f.retry_after {
                if let Ok(v) = HeaderValue::from_str(&ra.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            log(status.as_u16(), body_json);
            return Ok(resp);
        }
    }

    if is_api {
        let caller =
            bearer(&parts.headers).and_then(|t| lock(&emu.auth).check(&emu.config.token, t));
        let Some(caller) = caller else {
            log(403, body_json);
            return Ok(ApiError::invalid_token().into_response());
        };
        let ok = lock(&emu.limiter).try_acquire(family, std::time::Instant::now());
        if !ok {
            lock(&emu.log).rate_limited_total += 1;
            log(429, body_json);
            return Ok(ApiError::rate_limited(family).into_response());
        }
        parts.extensions.insert(caller);
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    let resp = router.oneshot(req).await?;
    log(resp.status().as_u16(), body_json);
    Ok(resp)
}
