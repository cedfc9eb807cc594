#![allow(dead_code)]
//! Test helpers: start an emulator and talk to it with reqwest.

use std::time::Duration;

use databricks_emulator::{start, EmulatorConfig, Fixture, RateLimits, RunningEmulator};
use serde_json::{json, Value};

pub const TOKEN: &str = "dapi-test-token";

pub struct H {
    pub emu: RunningEmulator,
    pub c: reqwest::Client,
}

pub fn cfg(fixture: Fixture) -> EmulatorConfig {
    EmulatorConfig::new(fixture, TOKEN)
        .lifecycle_delay(Duration::from_millis(100))
        .rate_limits(RateLimits::unlimited())
}

pub async fn up(config: EmulatorConfig) -> H {
    let emu = start(config).await.expect("emulator starts");
    // reqwest is built without a default crypto provider (see lifeboat_core::http).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    H { emu, c }
}

pub async fn demo() -> H {
    up(cfg(Fixture::Demo)).await
}

impl H {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.emu.url(), path)
    }
    async fn decode(r: reqwest::Response) -> (u16, Value) {
        let s = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .c
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send");
        Self::decode(r).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .c
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("send");
        Self::decode(r).await
    }
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .c
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("send");
        Self::decode(r).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, body).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }
    /// GET that must answer 200.
    pub async fn ok(&self, path: &str) -> Value {
        let (s, v) = self.get(path).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }
    pub async fn admin(&self, path: &str) -> Value {
        let r = self.c.get(self.url(path)).send().await.expect("send");
        Self::decode(r).await.1
    }
    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .c
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("send");
        Self::decode(r).await.1
    }
    pub async fn state(&self) -> Value {
        self.admin("/__emulator/state").await
    }
    /// Id of the first object in `state[key]` whose `name_key` equals `name`.
    pub async fn id_of(&self, key: &str, name_key: &str, id_key: &str, name: &str) -> Value {
        let st = self.state().await;
        st[key]
            .as_array()
            .and_then(|a| a.iter().find(|x| x[name_key] == json!(name)))
            .map(|x| x[id_key].clone())
            .unwrap_or(Value::Null)
    }
    pub async fn job_id(&self, name: &str) -> u64 {
        self.id_of("jobs", "name", "job_id", name)
            .await
            .as_u64()
            .expect("job exists")
    }
    /// Polls `f` until it returns true or the timeout passes.
    pub async fn wait_for<F, Fut>(&self, timeout_ms: u64, mut f: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms);
        while std::time::Instant::now() < deadline {
            if f().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}
