//! Fault injection rules (`POST /__emulator/faults`).
//!
//! A rule matches `/api/` requests by optional method and path prefix. A matching request is
//! delayed by `latency_ms`, then either has its connection dropped (`drop_connection`), or gets
//! `status` with `body` (default `{"error_code":"TEMPORARILY_UNAVAILABLE",...}`) and an optional
//! `Retry-After`, or (no status) proceeds normally. `count` limits how many requests the rule
//! hits (then it is removed); `probability` makes each match a seeded coin toss.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub probability: Option<f64>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub drop_connection: bool,
    #[serde(default)]
    pub retry_after: Option<u64>,
}

/// What to do with one request.
#[derive(Debug, Clone, Default)]
pub struct FaultAction {
    pub latency_ms: u64,
    pub drop_connection: bool,
    pub status: Option<u16>,
    pub body: Option<Value>,
    pub retry_after: Option<u64>,
}

#[derive(Debug)]
pub struct Faults {
    rules: Vec<FaultRule>,
    rng: ChaCha8Rng,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            rules: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xFA17),
        }
    }

    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// The first rule that matches and fires, consuming one of its `count`.
    pub fn check(&mut self, method: &str, path: &str) -> Option<FaultAction> {
        let mut hit = None;
        for (i, r) in self.rules.iter_mut().enumerate() {
            if let Some(m) = &r.method {
                if !m.eq_ignore_ascii_case(method) {
                    continue;
                }
            }
            if let Some(p) = &r.path_prefix {
                if !path.starts_with(p.as_str()) {
                    continue;
                }
            }
            if let Some(p) = r.probability {
                if self.rng.random::<f64>() >= p {
                    continue;
                }
            }
            if let Some(c) = r.count.as_mut() {
                if *c == 0 {
                    continue;
                }
                *c -= 1;
            }
            hit = Some((
                i,
                FaultAction {
                    latency_ms: r.latency_ms,
                    drop_connection: r.drop_connection,
                    status: r.status,
                    body: r.body.clone(),
                    retry_after: r.retry_after,
                },
            ));
            break;
        }
        self.rules.retain(|r| r.count != Some(0));
        hit.map(|(_, a)| a)
    }
}
