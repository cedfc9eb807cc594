//! The shared state of one emulator: the [`World`] (every resource, the timeline and the
//! pending transitions) behind one mutex, plus the request-level machinery (auth tokens, rate
//! limiter, faults, outage switch, request log, SQL connection).
//!
//! Lifecycles: a call moves a resource to its intermediate state at once and queues the final
//! transition. How much later depends on the [`LifecycleProfile`]: `uniform` waits
//! `lifecycle_delay` (real time) for every [`Transition`]; `realistic` draws an emulated
//! duration from [`Transition::realistic_range_ms`] and waits that divided by the clock speed.
//! The due instant is fixed when the transition starts (a later clock-speed change does not
//! move it). [`World::advance`] applies what is due; it runs on every request (lazy evaluation)
//! and from a 50 ms ticker.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;

use crate::auth::Auth;
use crate::clock::{Clock, Now};
use crate::clusters::Cluster;
use crate::config::{EmulatorConfig, LifecycleProfile, Role};
use crate::faults::Faults;
use crate::jobs::{Job, Run};
use crate::permissions::AclEntry;
use crate::pipelines::Pipeline;
use crate::policies::Policy;
use crate::pools::Pool;
use crate::ratelimit::RateLimiter;
use crate::repos::Repo;
use crate::secrets::SecretScope;
use crate::sql::Statement;
use crate::timeline::Timeline;
use crate::unity_catalog::Catalog;
use crate::warehouses::Warehouse;
use crate::workspace::WorkspaceTree;

/// A queued lifecycle transition, applied when due if the resource still expects it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pending {
    Cluster(String),
    Pool(String),
    Warehouse(String),
    Pipeline(String),
    Run(u64),
}

/// Which lifecycle transition is being queued; under the realistic profile it picks the
/// duration range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Cluster PENDING → RUNNING (`clusters/start`, a job or pipeline starting its cluster) and
    /// RESTARTING → RUNNING (`clusters/edit` of a running cluster).
    ClusterStart,
    /// Cluster TERMINATING → TERMINATED.
    ClusterTerminate,
    /// Warehouse STARTING → RUNNING.
    WarehouseStart,
    /// Warehouse STOPPING → STOPPED.
    WarehouseStop,
    /// Pipeline STARTING → RUNNING (a new update).
    PipelineStart,
    /// Pipeline STOPPING → IDLE.
    PipelineStop,
    /// Job run PENDING → RUNNING.
    RunStart,
    /// Cancelled job run TERMINATING → TERMINATED (result CANCELED).
    RunCancel,
    /// Pool idle instances converging to `min_idle_instances`.
    PoolResize,
}

impl Transition {
    /// Inclusive range, in emulated milliseconds, the realistic profile draws this transition's
    /// duration from (uniformly). Run start and pool resize are not Databricks-documented
    /// figures but plausible ones (serverless/pool-backed task start-up; EC2 launch).
    pub const fn realistic_range_ms(self) -> (u64, u64) {
        match self {
            Transition::ClusterStart => (180_000, 300_000),
            Transition::ClusterTerminate => (30_000, 120_000),
            Transition::WarehouseStart => (60_000, 180_000),
            Transition::WarehouseStop => (30_000, 60_000),
            Transition::PipelineStart => (60_000, 180_000),
            Transition::PipelineStop => (10_000, 60_000),
            Transition::RunStart => (10_000, 60_000),
            Transition::RunCancel => (5_000, 30_000),
            Transition::PoolResize => (60_000, 180_000),
        }
    }
}

/// Longest real wait one transition may be given (keeps `Instant` arithmetic in range at
/// absurdly slow clock speeds).
const MAX_TRANSITION_WAIT: Duration = Duration::from_secs(365 * 86_400);

/// Every resource of the workspace.
pub struct World {
    pub url: String,
    pub workspace_id: u64,
    pub role: Role,
    pub clock: Clock,
    /// Real time of every transition under [`LifecycleProfile::Uniform`].
    pub lifecycle_delay: Duration,
    pub lifecycle_profile: LifecycleProfile,
    /// Draws realistic transition durations; separate from `rng` so switching profiles does not
    /// change generated ids.
    pub lifecycle_rng: ChaCha8Rng,
    /// Emulated ms a non-continuous run lasts.
    pub run_duration_ms: i64,
    /// Fault switch (`POST /__emulator/config {"fail_runs": true}`): runs that complete by
    /// themselves end FAILED instead of SUCCESS, as on a platform that breaks every job.
    pub fail_runs: bool,
    pub clusters: BTreeMap<String, Cluster>,
    pub pools: BTreeMap<String, Pool>,
    /// Cluster policies by id.
    pub policies: BTreeMap<String, Policy>,
    pub jobs: BTreeMap<u64, Job>,
    pub runs: BTreeMap<u64, Run>,
    pub active_runs: BTreeSet<u64>,
    pub idempotency: HashMap<String, u64>,
    pub next_run_id: u64,
    pub warehouses: BTreeMap<String, Warehouse>,
    pub pipelines: BTreeMap<String, Pipeline>,
    /// The workspace file tree (notebooks, directories, files, Git folders).
    pub workspace: WorkspaceTree,
    /// Git folders by id (= their workspace object id).
    pub repos: BTreeMap<i64, Repo>,
    /// Secret scopes by name.
    pub secret_scopes: BTreeMap<String, SecretScope>,
    /// Unity Catalog catalogs by (lower-case) name.
    pub catalogs: BTreeMap<String, Catalog>,
    /// Per-object direct ACLs written through PATCH/PUT permissions, by (canonical type, id);
    /// objects without one carry the default ACL (see [`crate::permissions`]).
    pub acl_overrides: HashMap<(String, String), Vec<AclEntry>>,
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
    /// A full regional outage (`POST /__emulator/outage {"region_down": true}`): the control
    /// plane's scheduler is down too, so due schedule fires are skipped, not queued.
    pub region_down: bool,
}

impl World {
    pub fn new(config: &EmulatorConfig, rng: ChaCha8Rng) -> Self {
        World {
            url: String::new(),
            workspace_id: config.workspace_id,
            role: config.role,
            clock: Clock::new(config.clock_speed),
            lifecycle_delay: config.lifecycle_delay,
            lifecycle_profile: config.lifecycle_profile,
            lifecycle_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x71FE_C7C1_E5D0_0A11),
            run_duration_ms: config.run_duration.as_millis() as i64,
            fail_runs: false,
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
            workspace: WorkspaceTree::new(0),
            repos: BTreeMap::new(),
            secret_scopes: BTreeMap::new(),
            catalogs: BTreeMap::new(),
            acl_overrides: HashMap::new(),
            statements: HashMap::new(),
            timeline: Timeline::default(),
            pending: BinaryHeap::new(),
            run_timers: BTreeSet::new(),
            schedule_queue: BTreeSet::new(),
            cron_cache: HashMap::new(),
            rng,
            t0_ms: 0,
            arm_cursor: None,
            region_down: false,
        }
    }

    /// Real time `kind` takes if it starts now: `lifecycle_delay` under the uniform profile;
    /// under the realistic one a fresh draw from [`Transition::realistic_range_ms`] (emulated)
    /// divided by the current clock speed.
    pub fn transition_delay(&mut self, kind: Transition) -> Duration {
        match self.lifecycle_profile {
            LifecycleProfile::Uniform => self.lifecycle_delay,
            LifecycleProfile::Realistic => {
                let (lo, hi) = kind.realistic_range_ms();
                let emulated_ms = self.lifecycle_rng.random_range(lo..=hi) as f64;
                // The clock sanitizes its speed to a finite positive number.
                let real_secs = emulated_ms / 1000.0 / self.clock.speed();
                Duration::try_from_secs_f64(real_secs)
                    .unwrap_or(MAX_TRANSITION_WAIT)
                    .min(MAX_TRANSITION_WAIT)
            }
        }
    }

    /// Queues transition `kind` of resource `key` after [`World::transition_delay`]; returns
    /// its due instant, which the resource stores so stale entries are ignored.
    pub fn schedule_transition(&mut self, now: &Now, key: Pending, kind: Transition) -> Instant {
        let delay = self.transition_delay(kind);
        let at = now.instant.checked_add(delay).unwrap_or(now.instant);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Fixture;

    const ALL: [Transition; 9] = [
        Transition::ClusterStart,
        Transition::ClusterTerminate,
        Transition::WarehouseStart,
        Transition::WarehouseStop,
        Transition::PipelineStart,
        Transition::PipelineStop,
        Transition::RunStart,
        Transition::RunCancel,
        Transition::PoolResize,
    ];

    fn world(seed: u64, profile: LifecycleProfile, speed: f64) -> World {
        let config = EmulatorConfig::new(Fixture::Empty, "t")
            .seed(seed)
            .clock_speed(speed)
            .lifecycle_profile(profile)
            .lifecycle_delay(Duration::from_millis(250));
        World::new(&config, ChaCha8Rng::seed_from_u64(seed))
    }

    fn draws(w: &mut World) -> Vec<Duration> {
        (0..5)
            .flat_map(|_| ALL)
            .map(|t| w.transition_delay(t))
            .collect()
    }

    #[test]
    fn uniform_is_the_default_and_uses_lifecycle_delay() {
        assert_eq!(LifecycleProfile::default(), LifecycleProfile::Uniform);
        let mut w = world(1, LifecycleProfile::Uniform, 600.0);
        assert!(draws(&mut w)
            .iter()
            .all(|d| *d == Duration::from_millis(250)));
    }

    #[test]
    fn realistic_draws_are_in_range_scaled_and_seeded() {
        let mut w = world(7, LifecycleProfile::Realistic, 600.0);
        for t in ALL {
            let (lo, hi) = t.realistic_range_ms();
            for _ in 0..50 {
                let real_ms = w.transition_delay(t).as_secs_f64() * 1000.0;
                let emulated = real_ms * 600.0;
                assert!(
                    emulated >= lo as f64 - 1.0 && emulated <= hi as f64 + 1.0,
                    "{t:?}: {emulated}"
                );
            }
        }
        assert_eq!(
            Transition::ClusterStart.realistic_range_ms(),
            (180_000, 300_000)
        );
        let a = draws(&mut world(7, LifecycleProfile::Realistic, 600.0));
        let b = draws(&mut world(7, LifecycleProfile::Realistic, 600.0));
        let c = draws(&mut world(8, LifecycleProfile::Realistic, 600.0));
        assert_eq!(a, b, "same seed, same durations");
        assert_ne!(a, c, "another seed, other durations");
        // At 1x a cluster start takes 3–5 real minutes.
        let mut slow = world(7, LifecycleProfile::Realistic, 1.0);
        let d = slow.transition_delay(Transition::ClusterStart);
        assert!((Duration::from_secs(180)..=Duration::from_secs(300)).contains(&d));
    }
}
