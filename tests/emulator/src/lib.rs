//! # databricks-emulator
//!
//! A faithful, in-process emulator of one Databricks workspace (REST API on AWS) for Lifeboat's
//! tests and local drills. It serves the API paths, JSON shapes, pagination, error format and
//! authentication of a real workspace (see `shared/reference/databricks-api.md`), with resource
//! lifecycles, an emulated clock that fires Quartz cron schedules, per-family rate limits
//! (429 + `Retry-After`), fault injection, an outage switch and an activity timeline.
//!
//! ## Layout
//! One module per API family, each owning its types, handlers and wire encoding:
//! [`clusters`], [`pools`], [`jobs`] (jobs, runs, scheduler), [`warehouses`], [`pipelines`],
//! [`permissions`], [`policies`] (cluster policies), [`secrets`], [`repos`], [`workspace`] (the
//! workspace file tree), [`unity_catalog`] (catalogs, schemas, grants), [`scim`], [`sql`]
//! (Statement Execution over an embedded SQLite),
//! [`auth`] (PAT, OAuth M2M, well-known), plus [`admin`] (the `/__emulator/` API), [`faults`],
//! [`ratelimit`], [`timeline`], [`fixtures`], [`clock`] and [`error`].
//!
//! ## Rate-limit families
//! Every `/api/` request belongs to one family ([`family_of`]); each family has its own token
//! bucket (burst = one second's worth). Names and default limits (req/s):
//!
//! | family | endpoints | default |
//! | --- | --- | --- |
//! | `jobs_update` | `jobs/update`, `jobs/delete` | 10 |
//! | `jobs_read` | `jobs/get`, `jobs/list`, `jobs/reset`, `jobs/run-now`, `jobs/create` | 20 |
//! | `runs_read` | `jobs/runs/get`, `jobs/runs/list` (and other `runs/*` reads) | 100 |
//! | `runs_write` | `jobs/runs/cancel`, `jobs/runs/cancel-all` | 15 |
//! | `clusters` | `clusters/*` | 15 |
//! | `pools` | `instance-pools/*` | 15 |
//! | `warehouses` | `sql/warehouses*` | 15 |
//! | `pipelines` | `pipelines*` | 15 |
//! | `permissions` | `permissions/*` | 15 |
//! | `scim` | `preview/scim/*` | 4.25 (255/min) |
//! | `sql` | `sql/statements*` | 15 |
//! | `other` | anything else under `/api/` (policies, secrets, repos, workspace, UC) | 15 |
//!
//! The account-level Managed DR API (failover groups, stable URLs) has its own listener:
//! [`account`].
//!
//! ## Admin API
//! `/__emulator/` (no auth, never faulted, limited or cut by the outage switch): `timeline`,
//! `requests` (+ `requests/clear`), `stats`, `faults`, `outage`, `config`, `state`.
//! See [`admin`].

pub mod account;
pub mod admin;
pub mod auth;
pub mod clock;
pub mod clusters;
pub mod config;
pub mod error;
pub mod faults;
pub mod fixtures;
pub mod jobs;
pub mod permissions;
pub mod pipelines;
pub mod policies;
pub mod pools;
pub mod ratelimit;
pub mod repos;
pub mod scim;
pub mod secrets;
pub mod server;
pub mod sql;
pub mod state;
pub mod timeline;
pub mod unity_catalog;
pub mod warehouses;
pub mod workspace;

pub use account::{serve_account, AccountConfig, RunningAccount};
pub use config::{EmulatorConfig, Fixture, LifecycleProfile, RateLimits, Role};
pub use fixtures::{
    large_dr_drift, LargeDrift, LARGE_DR_DRIFT_MISSING_JOBS, LARGE_DR_DRIFT_NO_SCHEDULE,
};
pub use ratelimit::family_of;
pub use server::{serve, start, RunningEmulator};
