//! The shared state of one emulator: the [`World`] (every resource, the timeline and the
//! pending transitions) behind one mutex, plus the request-level machinery (auth tokens, rate
//! limiter, faults, outage switch, request log, SQL connection).
//!
//! Lifecycles: a call moves a resource to its intermediate state at once and queues the final
//! transition `lifecycle_delay` later (real time). [`World::advance`] applies what is due; it
//! runs on every request (lazy evaluation) and from a 50 ms ticker.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;

use crate::auth::Auth;
use crate::clock::{Clock, Now};
use crate::clusters::Cluster;
use crate::config::{EmulatorConfig, Role};
use crate::faults::Faults;
use crate::jobs::{Job, Run};
use crate::pipelines::Pipeline;
use crate::pools::Pool;
use crate::ratelimit::RateLimiter;
use crate::sql::Statement;
use crate::timeline::Timeline;
use crate::warehouses::Warehouse;

/// A queued lifecycle transition, applied when due if the resource still expects it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pending {
    Cluster(String),
    Pool(String),
    Warehouse(String),
    Pipeline(String),
    Run(u64),
}

/// Every resource of the workspace.
pub struct World {
    pub url: String,
    pub workspace_id: u64,
    pub role: Role,
    pub clock: Clock,
    pub lifecycle_delay: Duration,
    /// Emulated ms a non-continuous run lasts.
    pub run_duration_ms: i64,
    pub clusters: BTreeMap<String, Cluster>,
    pub pools: BTreeMap<String, Pool>,
    pub policies: BTreeMap<String, String>,
    pub jobs: BTreeMap<u64, Job>,
    pub runs: BTreeMap<u64, Run>,
    pub active_runs: BTreeSet<u64>,
    pub idempotency: HashMap<String, u64>,
    pub next_run_id: u64,
    pub warehouses: BTreeMap<String, Warehouse>,
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Workspace objects with ACLs: (`notebooks`|`directories`, id) → path.
    pub workspace_objects: BTreeMap<(String, String), String>,
    pub statements: HashMap<String, Statement>,
    pub timeline: Timeline,
    pub pending: BinaryHeap<Reverse<(Instant, Pending)>>,
    /// (emulated ms, run id): when a RUNNING run finishes by itself.
    pub run_timers: BTreeSet<(i64, u64)>,
    /// (emulated ms, job id): next schedule/periodic fire time.
    pub schedule_queue: BTreeSet<(i64, u64)>,
    pub cron_cache: HashMap<String, Option<croner::Cron>>,
    pub rng: ChaCha8Rng,
    /// Emulated start time; first fires are computed after it.
    pub t0_ms: i64,
    /// Next job id to arm (None: all armed).
    pub arm_cursor: Option<u64>,
}

impl World {
    pub fn new(config: &EmulatorConfig, rng: ChaCha8Rng) -> Self {
        World {
            url: String::new(),
            workspace_id: config.workspace_id,
            role: config.role,
            clock: Clock::new(config.clock_speed),
            lifecycle_delay: config.lifecycle_delay,
            run_duration_ms: config.run_duration.as_millis() as i64,
            clusters: BTreeMap::new(),
            pools: BTreeMap::new(),
            policies: BTreeMap::new(),
            jobs: BTreeMap::new(),
            runs: BTreeMap::new(),
            active_runs: BTreeSet::new(),
            idempotency: HashMap::new(),
            next_run_id: 0,
            warehouses: BTreeMap::new(),
            pipelines: BTreeMap::new(),
            workspace_objects: BTreeMap::new(),
            statements: HashMap::new(),
            timeline: Timeline::default(),
            pending: BinaryHeap::new(),
            run_timers: BTreeSet::new(),
            schedule_queue: BTreeSet::new(),
            cron_cache: HashMap::new(),
            rng,
            t0_ms: 0,
            arm_cursor: None,
        }
    }

    /// Queues a transition `lifecycle_delay` after `now`; returns its due instant, which the
    /// resource stores so stale entries are ignored.
    pub fn schedule_transition(&mut self, now: &Now, key: Pending) -> Instant {
        let at = now.instant + self.lifecycle_delay;
        self.pending.push(Reverse((at, key)));
        at
    }

    /// Applies every transition, run completion and schedule fire that is due.
    pub fn advance(&mut self, now: &Now) {
        while let Some(Reverse((at, _))) = self.pending.peek() {
            if *at > now.instant {
                break;
            }
            let Some(Reverse((at, key))) = self.pending.pop() else {
                break;
            };
            match key {
                Pending::Cluster(id) => self.cluster_transition(&id, at, now),
                Pending::Pool(id) => self.pool_transition(&id, at),
                Pending::Warehouse(id) => self.warehouse_transition(&id, at, now),
                Pending::Pipeline(id) => self.pipeline_transition(&id, at, now),
                Pending::Run(id) => self.run_transition(id, at, now),
            }
        }
        self.advance_runs(now);
        self.advance_schedules(now);
    }
}

/// One logged `/api/` request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub seq: u64,
    pub wall_ms: i64,
    pub method: String,
    pub path: String,
    pub query: String,
    /// HTTP status; 0 when the connection was dropped (fault or outage).
    pub status: u16,
    pub family: &'static str,
    pub body: Value,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    pub records: Vec<RequestRecord>,
    pub next_seq: u64,
    pub total: u64,
    pub by_family: BTreeMap<&'static str, u64>,
    pub rate_limited_total: u64,
    pub faults_injected_total: u64,
}

/// One running emulator's state, shared by the handlers.
pub struct Emulator {
    pub config: EmulatorConfig,
    pub world: Mutex<World>,
    pub sql: Mutex<rusqlite::Connection>,
    pub auth: Mutex<Auth>,
    pub limiter: Mutex<RateLimiter>,
    pub faults: Mutex<Faults>,
    pub outage: AtomicBool,
    pub log: Mutex<RequestLog>,
}

pub type Shared = Arc<Emulator>;

/// Locks ignoring poisoning (a panicked handler must not wedge the emulator).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Emulator {
    /// Locks the world, brings it up to date and returns it with the current time.
    pub fn world(&self) -> (MutexGuard<'_, World>, Now) {
        let mut w = lock(&self.world);
        let now = w.clock.now();
        w.advance(&now);
        (w, now)
    }
}
