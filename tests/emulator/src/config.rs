//! Emulator configuration: which fixture, which role, credentials, timing and rate limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which deterministic workspace content to load (see [`crate::fixtures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fixture {
    /// A small, realistic workspace (≈ 20 jobs, a few clusters, pools, warehouses, pipelines).
    Demo,
    /// 10,000 jobs, 1,000 clusters, 100 pools, 50 warehouses, 200 pipelines.
    Large,
    /// Only the SCIM user and the SQL tables.
    Empty,
}

/// Primary sites are live; DR sites hold the same objects, dormant (everything paused/stopped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Primary,
    Dr,
}

/// How long transitional states (PENDING, STARTING, RESTARTING, STOPPING, TERMINATING, a
/// cancelled run's TERMINATING) last before the final state shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleProfile {
    /// Every transition takes [`EmulatorConfig::lifecycle_delay`] of real time, whatever the
    /// clock speed (fast, predictable tests; the default).
    #[default]
    Uniform,
    /// Every transition takes a duration drawn per transition, uniformly, from the range of
    /// [`crate::state::Transition::realistic_range_ms`] (cluster start 180–300 s, cluster
    /// terminate 30–120 s, warehouse start 60–180 s, warehouse stop 30–60 s, pipeline start
    /// 60–180 s, pipeline stop 10–60 s, run cancel 5–30 s, ...). The durations are *emulated*
    /// time: the real wait is the draw divided by the clock speed in force when the transition
    /// starts (at clock speed 600 a 3-minute cluster start takes 0.3 s). Draws come from an RNG
    /// seeded by [`EmulatorConfig::seed`], so the same seed and the same sequence of calls give
    /// the same durations. `lifecycle_delay` is ignored.
    Realistic,
}

/// Requests per second per family (see the crate doc for names). A value `<= 0`, NaN or
/// infinite means "unlimited".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    pub jobs_update: f64,
    pub jobs_read: f64,
    pub runs_read: f64,
    pub runs_write: f64,
    pub clusters: f64,
    pub pools: f64,
    pub warehouses: f64,
    pub pipelines: f64,
    pub permissions: f64,
    pub scim: f64,
    pub sql: f64,
    pub other: f64,
}

impl Default for RateLimits {
    /// The published (or assumed) per-workspace limits of the real service.
    fn default() -> Self {
        RateLimits {
            jobs_update: 10.0,
            jobs_read: 20.0,
            runs_read: 100.0,
            runs_write: 15.0,
            clusters: 15.0,
            pools: 15.0,
            warehouses: 15.0,
            pipelines: 15.0,
            permissions: 15.0,
            scim: 255.0 / 60.0,
            sql: 15.0,
            other: 15.0,
        }
    }
}

impl RateLimits {
    /// No limit on any family.
    pub fn unlimited() -> Self {
        RateLimits {
            jobs_update: 0.0,
            jobs_read: 0.0,
            runs_read: 0.0,
            runs_write: 0.0,
            clusters: 0.0,
            pools: 0.0,
            warehouses: 0.0,
            pipelines: 0.0,
            permissions: 0.0,
            scim: 0.0,
            sql: 0.0,
            other: 0.0,
        }
    }

    /// The limit of one family by name (unknown names fall back to `other`).
    pub fn get(&self, family: &str) -> f64 {
        match family {
            "jobs_update" => self.jobs_update,
            "jobs_read" => self.jobs_read,
            "runs_read" => self.runs_read,
            "runs_write" => self.runs_write,
            "clusters" => self.clusters,
            "pools" => self.pools,
            "warehouses" => self.warehouses,
            "pipelines" => self.pipelines,
            "permissions" => self.permissions,
            "scim" => self.scim,
            "sql" => self.sql,
            _ => self.other,
        }
    }

    /// Set one family's limit; returns false for an unknown family name.
    pub fn set(&mut self, family: &str, rate: f64) -> bool {
        let slot = match family {
            "jobs_update" => &mut self.jobs_update,
            "jobs_read" => &mut self.jobs_read,
            "runs_read" => &mut self.runs_read,
            "runs_write" => &mut self.runs_write,
            "clusters" => &mut self.clusters,
            "pools" => &mut self.pools,
            "warehouses" => &mut self.warehouses,
            "pipelines" => &mut self.pipelines,
            "permissions" => &mut self.permissions,
            "scim" => &mut self.scim,
            "sql" => &mut self.sql,
            "other" => &mut self.other,
            _ => return false,
        };
        *slot = rate;
        true
    }
}

/// Everything that shapes one emulated workspace.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub fixture: Fixture,
    pub role: Role,
    /// The accepted personal access token.
    pub token: String,
    pub oauth_client_id: String,
    pub oauth_client_secret: String,
    pub oauth_token_ttl_secs: u64,
    /// Seed of every generated id and of the fault RNG.
    pub seed: u64,
    /// Real time from an intermediate state (PENDING, STARTING, STOPPING, TERMINATING) to the
    /// final one. `Duration::ZERO`: the final state shows on the next read or tick.
    pub lifecycle_delay: std::time::Duration,
    /// The emulated clock runs this many times faster than real time (schedules, run lengths).
    pub clock_speed: f64,
    pub rate_limits: RateLimits,
    pub workspace_id: u64,
    /// Emulated length of a non-continuous run started by a schedule, trigger or run-now.
    pub run_duration: Duration,
    /// Uniform (`lifecycle_delay` real time for every transition, the default) or realistic
    /// (per-transition emulated durations scaled by `clock_speed`).
    pub lifecycle_profile: LifecycleProfile,
    /// `large` fixture, role `dr` only: apply the deliberate, seeded configuration drift
    /// described in [`crate::fixtures`] (default true). False: the DR twin mirrors the primary
    /// exactly (same names and schedule definitions, all dormant). No effect on other fixtures
    /// or on the primary.
    pub dr_drift: bool,
}

impl EmulatorConfig {
    pub fn new(fixture: Fixture, token: impl Into<String>) -> Self {
        EmulatorConfig {
            fixture,
            role: Role::Primary,
            token: token.into(),
            oauth_client_id: "lifeboat-sp".to_string(),
            oauth_client_secret: "emulator-secret".to_string(),
            oauth_token_ttl_secs: 3600,
            seed: 42,
            lifecycle_delay: Duration::from_secs(1),
            clock_speed: 1.0,
            rate_limits: RateLimits::default(),
            workspace_id: 1234567890123456,
            run_duration: Duration::from_secs(30),
            lifecycle_profile: LifecycleProfile::Uniform,
            dr_drift: true,
        }
    }

    /// Sets the role and the matching default workspace id.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self.workspace_id = match role {
            Role::Primary => 1234567890123456,
            Role::Dr => 6543210987654321,
        };
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn lifecycle_delay(mut self, delay: Duration) -> Self {
        self.lifecycle_delay = delay;
        self
    }

    pub fn clock_speed(mut self, speed: f64) -> Self {
        self.clock_speed = speed;
        self
    }

    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    pub fn oauth(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.oauth_client_id = client_id.into();
        self.oauth_client_secret = secret.into();
        self
    }

    pub fn oauth_token_ttl_secs(mut self, ttl: u64) -> Self {
        self.oauth_token_ttl_secs = ttl;
        self
    }

    pub fn run_duration(mut self, d: Duration) -> Self {
        self.run_duration = d;
        self
    }

    /// Sets how long transitional states last (see [`LifecycleProfile`]).
    pub fn lifecycle_profile(mut self, profile: LifecycleProfile) -> Self {
        self.lifecycle_profile = profile;
        self
    }

    /// `large` fixture, role `dr`: whether the DR twin carries the documented drift
    /// ([`crate::fixtures::large_dr_drift`]); false gives an exact (dormant) mirror.
    pub fn dr_drift(mut self, drift: bool) -> Self {
        self.dr_drift = drift;
        self
    }
}
