//! Deterministic, seeded workspace content.
//!
//! - `demo`: the objects named in [`DEMO_CLUSTERS`], [`DEMO_POOLS`], [`DEMO_JOBS`],
//!   [`DEMO_WAREHOUSES`], [`DEMO_PIPELINES`]; three running job clusters belonging to active
//!   runs; a pipeline cluster; 30 finished runs; notebooks and directories with ACLs.
//! - `large`: 10,000 jobs (~30 % unscheduled, ~20 % paused cron, ~45 % unpaused cron over the
//!   day in six time zones, ~3 % continuous of which a third unpaused, ~2 % file-arrival
//!   triggers), 1,000 all-purpose clusters (~30 % running), 100 pools (~60 % min_idle > 0),
//!   50 warehouses (~40 % running), 200 pipelines (~30 % running), ~100 active runs.
//! - `empty`: nothing but the SCIM identities, the SQL tables and the workspace folders `/Repos`,
//!   `/Shared`, `/Users/dr-admin@example.com`.
//!
//! ## Configuration objects (`demo` and `large`)
//! - Job notebooks: a job's task `t` runs notebook `/Repos/{team}/pipelines/{slug}/{t}` (team =
//!   the job's `team` tag, `data` when it has none; slug = the lower-cased name with every
//!   non-alphanumeric character as `_`). Each team has one Git folder (repo)
//!   `/Repos/{team}/pipelines` (url `https://github.com/acme/{team}-pipelines`, provider
//!   `gitHub`, branch `main`, [`crate::repos::commit_id`] head) holding a `README.md` file, one
//!   folder per job with its notebooks (PYTHON) and `dlt/{pipeline slug}` notebooks (SQL) of the
//!   team's pipelines. Also `/Shared/dr/validation` (notebook) and `/Shared/dr/README.md`.
//! - Cluster policies: `demo` [`DEMO_POLICIES`] ("Shared Compute Policy", "Job Compute
//!   Policy"); `large` `policy-0`..`policy-4`. Jobs using one (`new_cluster.policy_id`): `demo`
//!   "Nightly Sales ETL" (Job Compute Policy); `large` every 7th job (`i % 7 == 0`, policy
//!   `(i / 7) % 5`).
//! - Secret scopes: `demo` `etl` (keys `api-token`, `db-password`; ACLs admins MANAGE,
//!   data-engineers READ) and `ml` (key `mlflow-token`; admins MANAGE, data-engineers WRITE);
//!   `large` `scope-00`..`scope-19`, keys [`LARGE_SECRET_KEYS`], ACLs admins MANAGE,
//!   data-engineers READ. Values are [`secret_value`]. Jobs reading one
//!   (`new_cluster.spark_env_vars`): `demo` "Partner File Loader" (`PARTNER_API_TOKEN` =
//!   `{{secrets/etl/api-token}}`); `large` every 11th job (`DB_PASSWORD` =
//!   `{{secrets/scope-NN/db-password}}`, NN = `(i / 11) % 20`).
//! - Unity Catalog: catalogs `main` (schemas `default`, `finance`, `information_schema`, `ops`,
//!   `sales`; tables `sales.orders`, `sales.customers`, `ops.heartbeat`) and `dr_meta` (schemas
//!   `default`, `information_schema`), with grants (see `unity_catalog()` below).
//! - Pipelines: a spec with one notebook library (the team repo's `dlt/` notebook), a
//!   `configuration` and one `default` cluster.
//!
//! Both roles hold the same configuration objects (names, definitions, keys, ACLs, repo heads,
//! grants, workspace paths); only ids differ (policy ids, workspace object / repo ids).
//!
//! Role `dr`: the same objects and names with different ids, dormant — every schedule,
//! continuous and trigger PAUSED, clusters TERMINATED, pools min_idle 0, warehouses STOPPED,
//! pipelines IDLE, no active runs. SQL tables and their data are the same for both roles
//! (`main.sales.orders` 50 rows, `main.sales.customers` 10 rows, `main.ops.heartbeat` 1 row
//! whose `last_beat` is the emulator's start time).
//!
//! ## The `large` DR twin and its drift
//! For the same seed, the `large` DR twin is generated from the primary's content: every job
//! has the same name, tags, tasks, job clusters (pointing at the DR pool of the same name),
//! `max_concurrent_runs` and the same schedule / trigger / continuous *definition* (cron
//! expression, time zone, trigger type, periodic interval, file-arrival URL), only PAUSED; the
//! pools, clusters, warehouses and pipelines have the same names and specs, dormant. Ids
//! differ (they come from a salted stream; job ids start at 7×10¹⁴ instead of 10¹⁴).
//!
//! Unless [`EmulatorConfig::dr_drift`] is false (CLI `--no-drift`), the twin also carries a
//! deliberate, seeded drift among the primary jobs that have an unpaused schedule, continuous
//! or trigger (an *activation*), as a real DR workspace that fell behind would:
//! - [`LARGE_DR_DRIFT_MISSING_JOBS`] (10) such jobs are absent at DR;
//! - [`LARGE_DR_DRIFT_NO_SCHEDULE`] (10) other such jobs exist at DR without any schedule,
//!   continuous or trigger (the activation was removed, not just paused).
//!
//! [`large_dr_drift`] returns exactly which job names those are for a seed. Every other
//! object is an exact (dormant) mirror. The `demo` DR twin has no drift.

use std::collections::BTreeMap;

use rand::distr::uniform::{SampleRange, SampleUniform};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::clock::Now;
use crate::clusters::{Cluster, ClusterSource, ClusterState};
use crate::config::{EmulatorConfig, Fixture, Role};
use crate::jobs::{
    active_kinds, Continuous, CronSchedule, Job, JobSettings, LifeCycleState, PauseStatus,
    Periodic, PeriodicUnit, ResultState, Run, TriggerSettings, TriggerType,
};
use crate::pipelines::{uuid_from, Pipeline, PipelineState};
use crate::policies::Policy;
use crate::pools::Pool;
use crate::secrets::{Secret, SecretScope};
use crate::state::World;
use crate::timeline::EventKind;
use crate::unity_catalog::{grants, Catalog, Grants, Schema, Table};
use crate::warehouses::Warehouse;
use crate::workspace::{Language, ObjectType, WorkspaceTree};

/// Tag pairs.
pub type Tags = &'static [(&'static str, &'static str)];

/// (name, source, running, custom tags)
pub const DEMO_CLUSTERS: &[(&str, &str, bool, Tags)] = &[
    ("Shared Analytics", "UI", true, &[("team", "analytics")]),
    (
        "Data Science Interactive",
        "UI",
        false,
        &[("team", "data-science")],
    ),
    ("ETL Development", "API", false, &[("team", "data-eng")]),
    ("ML Training GPU", "API", false, &[("team", "ml")]),
    (
        "Ops Break-Glass",
        "UI",
        true,
        &[("lifeboat", "exclude"), ("team", "sre")],
    ),
];

/// (name, node type, min idle, max capacity)
pub const DEMO_POOLS: &[(&str, &str, u32, u32)] = &[
    ("General Purpose Pool", "i3.xlarge", 2, 20),
    ("Memory Optimized Pool", "r5.2xlarge", 1, 10),
    ("GPU Pool", "g4dn.xlarge", 0, 4),
];

/// How a demo job is triggered.
#[derive(Clone, Copy)]
pub enum DemoTrigger {
    None,
    Cron(&'static str, &'static str, bool),
    Continuous(bool),
    FileArrival(bool),
    TableUpdate(bool),
    Periodic(u32, bool),
}

/// (name, trigger, tags)
pub const DEMO_JOBS: &[(&str, DemoTrigger, Tags)] = &[
    (
        "Nightly Sales ETL",
        DemoTrigger::Cron("0 0 2 * * ?", "UTC", true),
        &[("team", "sales")],
    ),
    (
        "Hourly Inventory Sync",
        DemoTrigger::Cron("0 0 * * * ?", "America/New_York", true),
        &[("team", "supply")],
    ),
    (
        "Heartbeat Writer",
        DemoTrigger::Cron("0 * * * * ?", "UTC", true),
        &[("team", "sre")],
    ),
    (
        "Daily Finance Report",
        DemoTrigger::Cron("0 30 6 ? * MON-FRI", "Europe/Amsterdam", true),
        &[("team", "finance")],
    ),
    (
        "Customer 360 Refresh",
        DemoTrigger::Cron("0 15 */4 * * ?", "UTC", true),
        &[("team", "crm")],
    ),
    (
        "Weekly Model Retrain",
        DemoTrigger::Cron("0 0 3 ? * SUN", "America/New_York", true),
        &[("team", "ml")],
    ),
    (
        "DR Canary Monitor",
        DemoTrigger::Cron("0 */5 * * * ?", "UTC", true),
        &[("lifeboat", "exclude"), ("team", "sre")],
    ),
    (
        "Legacy Ingest",
        DemoTrigger::Cron("0 0 1 * * ?", "UTC", false),
        &[("team", "data-eng")],
    ),
    (
        "Quarterly Audit Export",
        DemoTrigger::Cron("0 0 0 1 1,4,7,10 ?", "UTC", false),
        &[("team", "finance")],
    ),
    (
        "Marketing Attribution",
        DemoTrigger::Cron("0 0 5 * * ?", "Europe/Amsterdam", false),
        &[("team", "marketing")],
    ),
    (
        "Clickstream Streaming",
        DemoTrigger::Continuous(true),
        &[("team", "web")],
    ),
    (
        "IoT Telemetry Stream",
        DemoTrigger::Continuous(false),
        &[("team", "iot")],
    ),
    (
        "Partner File Loader",
        DemoTrigger::FileArrival(true),
        &[("team", "partners")],
    ),
    (
        "Gold Table Refresh",
        DemoTrigger::TableUpdate(false),
        &[("team", "data-eng")],
    ),
    (
        "Feature Store Backfill",
        DemoTrigger::Periodic(6, true),
        &[("team", "ml")],
    ),
    (
        "Ad-hoc Backfill",
        DemoTrigger::None,
        &[("team", "data-eng")],
    ),
    (
        "Data Quality Checks",
        DemoTrigger::None,
        &[("team", "data-eng")],
    ),
    (
        "ML Feature Engineering",
        DemoTrigger::None,
        &[("team", "ml")],
    ),
    (
        "Reprocess Late Events",
        DemoTrigger::None,
        &[("team", "web")],
    ),
    (
        "Schema Migration",
        DemoTrigger::None,
        &[("team", "platform")],
    ),
    (
        "GDPR Deletion Requests",
        DemoTrigger::None,
        &[("team", "legal")],
    ),
    ("Onboarding Demo", DemoTrigger::None, &[]),
    ("Sandbox Notebook Job", DemoTrigger::None, &[]),
];

/// (name, size, running, serverless)
pub const DEMO_WAREHOUSES: &[(&str, &str, bool, bool)] = &[
    ("Shared BI", "Medium", true, false),
    ("ETL Serving", "Small", false, false),
    ("Analysts", "Small", false, true),
];

/// (name, running, continuous, team: its notebook is in that team's repo)
pub const DEMO_PIPELINES: &[(&str, bool, bool, &str)] = &[
    ("Orders Bronze-Silver", true, true, "sales"),
    ("Customer CDC", false, false, "crm"),
];

const TIMEZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/Amsterdam",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Europe/London",
];

/// Jobs at the primary with an unpaused activation that the `large` DR twin lacks (drift).
pub const LARGE_DR_DRIFT_MISSING_JOBS: usize = 10;
/// Jobs at the `large` DR twin whose schedule/continuous/trigger was removed while the primary
/// has it unpaused (drift).
pub const LARGE_DR_DRIFT_NO_SCHEDULE: usize = 10;
/// Salt of the DR role's id stream (and world RNG).
const DR_SALT: u64 = 0x9E37_79B9_7F4A_7C15;
/// Salt of the RNG that picks the drifted jobs.
const DRIFT_SALT: u64 = 0xD21F_7A11_0000_0001;

/// The deliberate drift of the `large` DR twin for one seed (job names, sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LargeDrift {
    /// [`LARGE_DR_DRIFT_MISSING_JOBS`] names of primary jobs with an unpaused activation that
    /// do not exist at DR.
    pub missing_jobs: Vec<String>,
    /// [`LARGE_DR_DRIFT_NO_SCHEDULE`] names of primary jobs with an unpaused activation whose
    /// DR twin has no `schedule`, `continuous` or `trigger` at all. Disjoint from
    /// `missing_jobs`.
    pub without_activation: Vec<String>,
}

impl LargeDrift {
    /// Whether `name` is one of the drifted jobs.
    pub fn contains(&self, name: &str) -> bool {
        self.missing_jobs.iter().any(|n| n == name)
            || self.without_activation.iter().any(|n| n == name)
    }
}

/// The drift the `large` DR twin started with `seed` carries (unless `dr_drift` is off). It
/// regenerates the primary's jobs, so it costs about one `large` fixture build.
pub fn large_dr_drift(seed: u64) -> LargeDrift {
    let config = EmulatorConfig::new(Fixture::Large, "").seed(seed);
    let mut w = World::new(&config, ChaCha8Rng::seed_from_u64(seed));
    let mut ids = Ids::new(seed, Role::Primary);
    let t0 = w.clock.now().emu_ms;
    let activated = large(&mut w, &mut ids, true, t0, None);
    pick_drift(seed, &activated)
}

/// Picks the drifted jobs among the primary's activated jobs (names in job order).
fn pick_drift(seed: u64, activated: &[String]) -> LargeDrift {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ DRIFT_SALT);
    let want = (LARGE_DR_DRIFT_MISSING_JOBS + LARGE_DR_DRIFT_NO_SCHEDULE).min(activated.len());
    let picked: Vec<String> = rand::seq::index::sample(&mut rng, activated.len(), want)
        .into_iter()
        .map(|i| activated[i].clone())
        .collect();
    let split = LARGE_DR_DRIFT_MISSING_JOBS.min(picked.len());
    let mut missing_jobs = picked[..split].to_vec();
    let mut without_activation = picked[split..].to_vec();
    missing_jobs.sort();
    without_activation.sort();
    LargeDrift {
        missing_jobs,
        without_activation,
    }
}

/// The fixture's random streams. `rng` drives content *and* ids; it is seeded by the seed
/// alone, so both roles make the same content draws. The DR role takes its ids from `id_rng`
/// (salted) instead, still drawing the same amount from `rng` so the content streams of the
/// two roles stay aligned.
struct Ids {
    rng: ChaCha8Rng,
    id_rng: Option<ChaCha8Rng>,
    job_base: u64,
}

impl Ids {
    fn new(seed: u64, role: Role) -> Self {
        Ids {
            rng: ChaCha8Rng::seed_from_u64(seed),
            id_rng: match role {
                Role::Primary => None,
                Role::Dr => Some(ChaCha8Rng::seed_from_u64(seed ^ DR_SALT)),
            },
            job_base: 0,
        }
    }
    /// One draw that becomes (part of) an id.
    fn draw<T: SampleUniform, R: SampleRange<T> + Clone>(&mut self, range: R) -> T {
        let shared = self.rng.random_range(range.clone());
        match &mut self.id_rng {
            Some(r) => r.random_range(range),
            None => shared,
        }
    }
    fn uuid(&mut self) -> String {
        let shared = uuid_from(&mut self.rng);
        match &mut self.id_rng {
            Some(r) => uuid_from(r),
            None => shared,
        }
    }
    fn alnum(&mut self, n: usize) -> String {
        const CH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| CH[self.draw(0..CH.len())] as char).collect()
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.draw(0..16), 16).unwrap_or('0'))
            .collect()
    }
    fn cluster(&mut self) -> String {
        let md = format!("{:02}{:02}", self.draw(1..13), self.draw(1..29));
        let t = format!(
            "{:02}{:02}{:02}",
            self.draw(0..24),
            self.draw(0..60),
            self.draw(0..60)
        );
        format!("{md}-{t}-{}", self.alnum(8))
    }
    fn pool(&mut self) -> String {
        let c = self.cluster();
        format!("{c}-pool-{}", self.alnum(8))
    }
}

/// A fixture job's name as a path segment and the folder of its task notebooks.
struct JobPaths {
    slug: String,
    dir: String,
}

impl JobPaths {
    fn new(name: &str, tags: &BTreeMap<String, String>) -> Self {
        let slug = slug(name);
        let dir = format!("/Repos/{}/pipelines/{slug}", team_of(tags));
        JobPaths { slug, dir }
    }
}

/// A fixture job's settings; its task notebooks are `{paths.dir}/{task}`.
fn settings(
    name: &str,
    trig: DemoTrigger,
    tags: BTreeMap<String, String>,
    live: bool,
    (paths, tasks): (&JobPaths, &[&str]),
    pool: Option<&str>,
) -> JobSettings {
    let pause = |on: bool| {
        if on && live {
            PauseStatus::Unpaused
        } else {
            PauseStatus::Paused
        }
    };
    let (slug, dir) = (&paths.slug, &paths.dir);
    let mut other = Map::new();
    let task_list: Vec<Value> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = json!({
                "task_key": t,
                "notebook_task": {"notebook_path": format!("{dir}/{t}"), "source": "WORKSPACE"},
                "job_cluster_key": "main_cluster",
                "timeout_seconds": 0,
                "email_notifications": {},
            });
            if i > 0 {
                v["depends_on"] = json!([{"task_key": tasks[i - 1]}]);
            }
            v
        })
        .collect();
    let mut new_cluster = json!({
        "spark_version": "15.4.x-scala2.12",
        "num_workers": 2,
        "data_security_mode": "SINGLE_USER",
        "custom_tags": {"job": slug},
    });
    match pool {
        Some(p) => new_cluster["instance_pool_id"] = json!(p),
        None => new_cluster["node_type_id"] = json!("i3.xlarge"),
    }
    other.insert("tasks".into(), Value::Array(task_list));
    other.insert(
        "job_clusters".into(),
        json!([{"job_cluster_key": "main_cluster", "new_cluster": new_cluster}]),
    );
    other.insert(
        "email_notifications".into(),
        json!({"on_failure": ["oncall@example.com"]}),
    );
    other.insert("webhook_notifications".into(), json!({}));
    other.insert("timeout_seconds".into(), json!(0));
    other.insert("format".into(), json!("MULTI_TASK"));
    other.insert("queue".into(), json!({"enabled": true}));
    other.insert(
        "run_as".into(),
        json!({"user_name": "dr-admin@example.com"}),
    );
    let mut s = JobSettings {
        name: name.to_string(),
        schedule: None,
        trigger: None,
        continuous: None,
        max_concurrent_runs: 1,
        tags,
        other,
    };
    match trig {
        DemoTrigger::None => {}
        DemoTrigger::Cron(expr, tz, on) => {
            s.schedule = Some(CronSchedule {
                quartz_cron_expression: expr.to_string(),
                timezone_id: tz.to_string(),
                pause_status: pause(on),
            })
        }
        DemoTrigger::Continuous(on) => {
            s.continuous = Some(Continuous {
                pause_status: pause(on),
                other: Map::new(),
            })
        }
        DemoTrigger::FileArrival(on) => {
            let mut o = Map::new();
            o.insert(
                "file_arrival".into(),
                json!({"url": format!("s3://acme-landing/{slug}/"), "min_time_between_triggers_seconds": 60}),
            );
            s.trigger = Some(TriggerSettings {
                pause_status: pause(on),
                periodic: None,
                other: o,
            })
        }
        DemoTrigger::TableUpdate(on) => {
            let mut o = Map::new();
            o.insert(
                "table_update".into(),
                json!({"table_names": ["main.sales.orders"], "condition": "ANY_UPDATED"}),
            );
            s.trigger = Some(TriggerSettings {
                pause_status: pause(on),
                periodic: None,
                other: o,
            })
        }
        DemoTrigger::Periodic(hours, on) => {
            s.trigger = Some(TriggerSettings {
                pause_status: pause(on),
                periodic: Some(Periodic {
                    interval: hours,
                    unit: PeriodicUnit::Hours,
                }),
                other: Map::new(),
            })
        }
    }
    s
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A job or pipeline name as a path segment: lower-case, non-alphanumerics → `_`.
pub fn slug(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The team owning a job: its `team` tag, else `data`.
pub fn team_of(tags: &BTreeMap<String, String>) -> &str {
    tags.get("team").map(String::as_str).unwrap_or("data")
}

/// The team's Git folder, which holds its jobs' notebooks
/// (`/Repos/{team}/pipelines/{job slug}/{task}`) and its pipelines' (`.../dlt/{slug}`).
pub fn repo_path(team: &str) -> String {
    format!("/Repos/{team}/pipelines")
}

/// The Git remote of a team's repo.
pub fn repo_url(team: &str) -> String {
    format!("https://github.com/acme/{team}-pipelines")
}

/// When the fixture's configuration objects (policies, secrets, repos, notebooks, catalogs)
/// were created or last updated: a fixed instant (2025-01-01T00:00:00Z), not the emulator's
/// start, so the two roles — started at different times — carry identical timestamps.
pub const CONFIG_EPOCH_MS: i64 = 1_735_689_600_000;
const DAY_MS: i64 = 86_400_000;

/// Creates each team's Git folder (branch `main`) with a `README.md`, in the given order.
fn team_repos<'a>(w: &mut World, teams: impl IntoIterator<Item = &'a str>) {
    let ts = CONFIG_EPOCH_MS;
    for team in teams {
        let path = repo_path(team);
        if w.workspace.get(&path).is_some() {
            continue;
        }
        let _ = w.create_repo(&repo_url(team), "gitHub", &path, "main", ts);
        let _ = w
            .workspace
            .insert(&format!("{path}/README.md"), ObjectType::File, None, ts);
    }
}

/// Records a job's task notebooks (`{dir}/{task}`) in the workspace tree (created lazily,
/// see [`crate::workspace`]).
fn job_notebooks(w: &mut World, dir: String, tasks: &'static [&'static str]) {
    w.workspace.defer_many(
        dir,
        tasks,
        ObjectType::Notebook,
        Some(Language::Python),
        CONFIG_EPOCH_MS,
    );
}

/// The `new_cluster` of a fixture job's (single) job cluster.
fn new_cluster(s: &mut JobSettings) -> Option<&mut Map<String, Value>> {
    s.other
        .get_mut("job_clusters")?
        .get_mut(0)?
        .get_mut("new_cluster")?
        .as_object_mut()
}

/// Puts a job's cluster under a cluster policy.
fn use_policy(s: &mut JobSettings, policy_id: &str) {
    if let Some(nc) = new_cluster(s) {
        nc.insert("policy_id".into(), json!(policy_id));
    }
}

/// Gives a job's cluster an environment variable read from a secret.
fn use_secret(s: &mut JobSettings, var: &str, scope: &str, key: &str) {
    if let Some(nc) = new_cluster(s) {
        nc.insert(
            "spark_env_vars".into(),
            json!({ var: format!("{{{{secrets/{scope}/{key}}}}}") }),
        );
    }
}

/// A pipeline's spec: its notebook (created in the team's repo), configuration and cluster.
fn pipeline_spec(w: &mut World, p: &mut Pipeline, team: &str, workers: Option<u32>) {
    let path = format!("{}/dlt/{}", repo_path(team), slug(&p.name));
    w.workspace.defer(
        path.clone(),
        ObjectType::Notebook,
        Some(Language::Sql),
        CONFIG_EPOCH_MS,
    );
    p.libraries = vec![json!({"notebook": {"path": path}})];
    p.configuration = tags(&[
        ("pipelines.applyChangesPreviewEnabled", "true"),
        (
            "source_path",
            &format!("s3://acme-landing/{team}/{}/", slug(&p.name)),
        ),
    ]);
    p.clusters = vec![match workers {
        Some(n) => json!({"label": "default", "num_workers": n, "node_type_id": "i3.xlarge"}),
        None => json!({"label": "default", "node_type_id": "i3.xlarge",
            "autoscale": {"min_workers": 1, "max_workers": 4, "mode": "ENHANCED"}}),
    }];
}

/// A secret scope with `keys` (name, value) updated at `ts` and the given ACLs.
fn secret_scope(
    w: &mut World,
    name: &str,
    keys: &[(&str, String)],
    acls: &[(&str, &'static str)],
    ts: i64,
) {
    let mut scope = SecretScope::new(name);
    for (k, v) in keys {
        scope
            .secrets
            .insert(k.to_string(), Secret::new(v.clone(), ts));
    }
    for (p, perm) in acls {
        scope.acls.insert(p.to_string(), perm);
    }
    w.secret_scopes.insert(name.to_string(), scope);
}

/// The fixture value of a secret (tests check no endpoint ever returns one).
pub fn secret_value(scope: &str, key: &str) -> String {
    format!("s3cr3t-value::{scope}/{key}")
}

/// Demo cluster policies: (name, description, max clusters per user, definition).
pub const DEMO_POLICIES: &[(&str, &str, Option<i64>, &str)] = &[
    (
        "Shared Compute Policy",
        "Shared all-purpose compute for analysts",
        Some(2),
        r#"{"spark_version":{"type":"fixed","value":"15.4.x-scala2.12"},"autotermination_minutes":{"type":"range","maxValue":120,"defaultValue":60},"data_security_mode":{"type":"fixed","value":"USER_ISOLATION"}}"#,
    ),
    (
        "Job Compute Policy",
        "Job clusters: fixed runtime, approved node types",
        None,
        r#"{"cluster_type":{"type":"fixed","value":"job"},"spark_version":{"type":"fixed","value":"15.4.x-scala2.12"},"node_type_id":{"type":"allowlist","values":["i3.xlarge","r5.2xlarge"],"defaultValue":"i3.xlarge"}}"#,
    ),
];

/// The definition of `large` policy `i`.
fn large_policy_definition(i: usize) -> String {
    format!(
        r#"{{"spark_version":{{"type":"fixed","value":"15.4.x-scala2.12"}},"autotermination_minutes":{{"type":"range","maxValue":{}}},"custom_tags.cost_center":{{"type":"fixed","value":"cc-{i}"}}}}"#,
        60 + 30 * i
    )
}

/// Keys of every `large` secret scope.
pub const LARGE_SECRET_KEYS: [&str; 3] = ["db-password", "api-token", "storage-key"];

/// Unity Catalog content, the same for both roles of `demo` and `large`.
fn unity_catalog(w: &mut World) {
    let created = CONFIG_EPOCH_MS - 365 * DAY_MS;
    let owner = crate::scim::ADMIN_USER.to_string();
    let schema = |name: &str, comment: Option<&str>, g: Grants| Schema {
        name: name.into(),
        owner: owner.clone(),
        comment: comment.map(str::to_string),
        created_at: created,
        grants: g,
        tables: BTreeMap::new(),
    };
    let table = |name: &str, g: Grants| {
        (
            name.to_string(),
            Table {
                name: name.into(),
                owner: owner.clone(),
                grants: g,
            },
        )
    };
    let mut sales = schema(
        "sales",
        Some("Orders and customers"),
        grants(&[("analysts", &["SELECT", "USE_SCHEMA"])]),
    );
    sales.tables = [
        table("customers", Grants::new()),
        table("orders", grants(&[("analysts", &["SELECT"])])),
    ]
    .into_iter()
    .collect();
    let mut ops = schema("ops", Some("Operational tables"), Grants::new());
    ops.tables = [table(
        "heartbeat",
        grants(&[("lifeboat-sp", &["MODIFY", "SELECT"])]),
    )]
    .into_iter()
    .collect();
    let main = Catalog {
        name: "main".into(),
        owner: owner.clone(),
        comment: Some("Main catalog".into()),
        created_at: created,
        grants: grants(&[
            ("analysts", &["USE_CATALOG"]),
            ("data-engineers", &["SELECT", "USE_CATALOG", "USE_SCHEMA"]),
        ]),
        schemas: [
            schema(
                "default",
                Some("Default schema (auto-created)"),
                Grants::new(),
            ),
            schema(
                "finance",
                Some("Finance marts"),
                grants(&[("data-engineers", &["MODIFY", "SELECT", "USE_SCHEMA"])]),
            ),
            schema(
                "information_schema",
                Some("Information schema (auto-created)"),
                Grants::new(),
            ),
            ops,
            sales,
        ]
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect(),
    };
    let dr_meta = Catalog {
        name: "dr_meta".into(),
        owner: owner.clone(),
        comment: Some("Lifeboat DR metadata".into()),
        created_at: created,
        grants: grants(&[(
            "lifeboat-sp",
            &[
                "CREATE_TABLE",
                "MODIFY",
                "SELECT",
                "USE_CATALOG",
                "USE_SCHEMA",
            ],
        )]),
        schemas: [
            schema(
                "default",
                Some("Default schema (auto-created)"),
                Grants::new(),
            ),
            schema(
                "information_schema",
                Some("Information schema (auto-created)"),
                Grants::new(),
            ),
        ]
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect(),
    };
    w.catalogs.insert(main.name.clone(), main);
    w.catalogs.insert(dr_meta.name.clone(), dr_meta);
}

/// The workspace folders every fixture has, plus (`demo`, `large`) the shared DR notebook.
fn workspace_skeleton(w: &mut World, full: bool) {
    let ts = CONFIG_EPOCH_MS;
    for d in ["/Repos", "/Shared", "/Users/dr-admin@example.com"] {
        let _ = w.workspace.mkdirs(d, ts);
    }
    if full {
        let _ = w.workspace.insert(
            "/Shared/dr/validation",
            ObjectType::Notebook,
            Some(Language::Python),
            ts,
        );
        let _ = w
            .workspace
            .insert("/Shared/dr/README.md", ObjectType::File, None, ts);
    }
}

/// Inserts a fixture run directly (no timeline; initial events are recorded afterwards).
#[allow(clippy::too_many_arguments)]
fn fixture_run(
    w: &mut World,
    job_id: u64,
    trigger: TriggerType,
    start: i64,
    end: Option<i64>,
    life: LifeCycleState,
    result: Option<ResultState>,
    cluster: Option<String>,
) -> u64 {
    let run_id = w.alloc_run_id();
    let (name, keys) = match w.jobs.get(&job_id) {
        Some(j) => (j.settings.name.clone(), j.settings.task_keys()),
        None => return 0,
    };
    let active = life.is_active();
    let run = Run {
        run_id,
        job_id,
        run_name: name,
        life_cycle: life,
        result,
        state_message: if active {
            "In run".into()
        } else {
            String::new()
        },
        trigger,
        start_time: start,
        end_time: if active { 0 } else { end.unwrap_or(start) },
        cluster_id: cluster,
        task_keys: keys,
        job_parameters: Map::new(),
        transition_at: None,
        ends_at: if active { end } else { None },
        user_cancelled: false,
    };
    if active {
        w.active_runs.insert(run_id);
        if let Some(e) = end {
            w.run_timers.insert((e, run_id));
        }
    }
    w.runs.insert(run_id, run);
    run_id
}

fn add_job(w: &mut World, job_id: u64, settings: JobSettings, t0: i64) {
    w.jobs.insert(
        job_id,
        Job {
            job_id,
            creator_user_name: "dr-admin@example.com".into(),
            created_time: t0 - 90 * 86_400_000,
            settings,
            next_fire_ms: None,
            periodic_anchor_ms: t0,
            armed: false,
        },
    );
}

fn job_cluster(w: &mut World, ids: &mut Ids, job_id: u64, run_id: u64, t0: i64) -> String {
    let id = ids.cluster();
    let mut c = Cluster::new(
        id.clone(),
        &format!("job-{job_id}-run-{run_id}"),
        ClusterSource::Job,
        ClusterState::Running,
        t0,
    );
    c.start_time = t0 - 600_000;
    w.clusters.insert(id.clone(), c);
    if let Some(r) = w.runs.get_mut(&run_id) {
        r.cluster_id = Some(id.clone());
    }
    id
}

fn demo(w: &mut World, ids: &mut Ids, live: bool, t0: i64) {
    let mut pool_ids = Vec::new();
    for (name, node, min_idle, max) in DEMO_POOLS {
        let id = ids.pool();
        let mut p = Pool::new(
            id.clone(),
            name,
            node,
            if live { *min_idle } else { 0 },
            *max,
        );
        p.custom_tags = tags(&[("team", "platform")]);
        w.pools.insert(id.clone(), p);
        pool_ids.push(id);
    }
    let mut policy_ids = Vec::new();
    for (i, (name, description, max, definition)) in DEMO_POLICIES.iter().enumerate() {
        let id = ids.hex(16).to_uppercase();
        let mut p = Policy::new(
            id.clone(),
            name,
            definition,
            CONFIG_EPOCH_MS - (200 - i as i64) * DAY_MS,
        );
        p.description = Some(description.to_string());
        p.max_clusters_per_user = *max;
        w.policies.insert(id.clone(), p);
        policy_ids.push(id);
    }
    let mut teams: Vec<&str> = DEMO_JOBS
        .iter()
        .map(|(_, _, t)| {
            t.iter()
                .find(|(k, _)| *k == "team")
                .map_or("data", |kv| kv.1)
        })
        .collect();
    teams.sort_unstable();
    teams.dedup();
    team_repos(w, teams);
    let ts = CONFIG_EPOCH_MS + 30 * DAY_MS;
    let keys = |scope: &str, names: &[&'static str]| -> Vec<(&'static str, String)> {
        names.iter().map(|k| (*k, secret_value(scope, k))).collect()
    };
    secret_scope(
        w,
        "etl",
        &keys("etl", &["db-password", "api-token"]),
        &[("admins", "MANAGE"), ("data-engineers", "READ")],
        ts,
    );
    secret_scope(
        w,
        "ml",
        &keys("ml", &["mlflow-token"]),
        &[("admins", "MANAGE"), ("data-engineers", "WRITE")],
        ts,
    );
    unity_catalog(w);
    for (i, (name, source, running, ctags)) in DEMO_CLUSTERS.iter().enumerate() {
        let id = ids.cluster();
        let src = if *source == "UI" {
            ClusterSource::Ui
        } else {
            ClusterSource::Api
        };
        let state = if *running && live {
            ClusterState::Running
        } else {
            ClusterState::Terminated
        };
        let mut c = Cluster::new(id.clone(), name, src, state, t0);
        c.custom_tags = tags(ctags);
        c.is_pinned = i < 2;
        c.policy_id = Some(policy_ids[0].clone());
        if i % 2 == 0 {
            c.instance_pool_id = Some(pool_ids[0].clone());
            c.driver_instance_pool_id = Some(pool_ids[0].clone());
        }
        if *name == "ML Training GPU" {
            c.node_type_id = "g4dn.xlarge".into();
            c.driver_node_type_id = "g4dn.xlarge".into();
            c.num_workers = None;
            c.autoscale = Some(crate::clusters::Autoscale {
                min_workers: 1,
                max_workers: 4,
            });
        }
        w.clusters.insert(id, c);
    }
    let mut job_ids = Vec::new();
    for (i, (name, trig, jtags)) in DEMO_JOBS.iter().enumerate() {
        let job_id = ids.job_base + (i as u64) * 1013;
        let tasks: &'static [&'static str] = match i % 3 {
            0 => &["ingest", "transform", "publish"],
            1 => &["extract", "load"],
            _ => &["prepare", "compute", "validate"],
        };
        let pool = (i % 2 == 0).then(|| pool_ids[0].as_str());
        let jtags = tags(jtags);
        let paths = JobPaths::new(name, &jtags);
        let mut s = settings(name, *trig, jtags, live, (&paths, tasks), pool);
        if *name == "Ad-hoc Backfill" {
            s.max_concurrent_runs = 3;
        }
        if *name == "Data Quality Checks" {
            s.other.insert("queue".into(), json!({"enabled": false}));
        }
        if *name == "Nightly Sales ETL" {
            use_policy(&mut s, &policy_ids[1]);
        }
        if *name == "Partner File Loader" {
            use_secret(&mut s, "PARTNER_API_TOKEN", "etl", "api-token");
        }
        job_notebooks(w, paths.dir, tasks);
        add_job(w, job_id, s, t0);
        job_ids.push(job_id);
    }
    // 30 finished runs, oldest first, so run ids grow with start time.
    for k in 0..30u64 {
        let job_id = job_ids[(k % 10) as usize];
        let start = t0 - (30 - k as i64) * 3_600_000;
        let result = if k % 7 == 3 {
            ResultState::Failed
        } else {
            ResultState::Success
        };
        let trigger = if k % 5 == 4 {
            TriggerType::OneTime
        } else {
            TriggerType::Periodic
        };
        fixture_run(
            w,
            job_id,
            trigger,
            start,
            Some(start + 1_200_000),
            LifeCycleState::Terminated,
            Some(result),
            None,
        );
    }
    if live {
        let by_name = |n: &str| {
            DEMO_JOBS
                .iter()
                .position(|j| j.0 == n)
                .map(|i| job_ids[i])
                .unwrap_or(0)
        };
        let runs = [
            (
                "Nightly Sales ETL",
                TriggerType::Periodic,
                t0 - 1_200_000,
                Some(t0 + 2_400_000),
            ),
            (
                "Customer 360 Refresh",
                TriggerType::Periodic,
                t0 - 300_000,
                Some(t0 + 1_500_000),
            ),
            (
                "Clickstream Streaming",
                TriggerType::Continuous,
                t0 - 7_200_000,
                None,
            ),
        ];
        for (name, trigger, start, end) in runs {
            let job_id = by_name(name);
            let run_id = fixture_run(
                w,
                job_id,
                trigger,
                start,
                end,
                LifeCycleState::Running,
                None,
                None,
            );
            job_cluster(w, ids, job_id, run_id, t0);
        }
    }
    for (i, (name, size, running, serverless)) in DEMO_WAREHOUSES.iter().enumerate() {
        let id = ids.hex(16);
        let mut wh = Warehouse::new(id.clone(), name, size, *running && live, *serverless);
        if i == 1 {
            wh.warehouse_type = "CLASSIC".into();
            wh.enable_photon = false;
        }
        wh.set_tags(&tags(&[("team", "analytics")]));
        w.warehouses.insert(id, wh);
    }
    for (name, running, continuous, team) in DEMO_PIPELINES {
        let id = ids.uuid();
        let cid = ids.cluster();
        let active = *running && live;
        let state = if active {
            ClusterState::Running
        } else {
            ClusterState::Terminated
        };
        let c = Cluster::new(
            cid.clone(),
            &format!("dlt-execution-{id}"),
            ClusterSource::Pipeline,
            state,
            t0,
        );
        w.clusters.insert(cid.clone(), c);
        let update = ids.uuid();
        let state = if active {
            PipelineState::Running
        } else {
            PipelineState::Idle
        };
        let mut p = Pipeline::new(id.clone(), name, state, *continuous, t0 - 3_600_000);
        p.cluster_id = Some(cid);
        p.updates = vec![(
            update,
            if active { "RUNNING" } else { "COMPLETED" },
            t0 - 3_600_000,
        )];
        let workers = (!*continuous).then_some(2);
        pipeline_spec(w, &mut p, team, workers);
        w.pipelines.insert(id, p);
    }
}

/// Removes every activation (schedule, continuous, trigger) of a job, as a drifted DR twin.
fn strip_activation(s: &mut JobSettings) {
    s.schedule = None;
    s.continuous = None;
    s.trigger = None;
}

/// Pauses every activation of a job, keeping its definition.
fn pause_all(s: &mut JobSettings) {
    if let Some(x) = s.schedule.as_mut() {
        x.pause_status = PauseStatus::Paused;
    }
    if let Some(x) = s.continuous.as_mut() {
        x.pause_status = PauseStatus::Paused;
    }
    if let Some(x) = s.trigger.as_mut() {
        x.pause_status = PauseStatus::Paused;
    }
}

/// Fills the `large` fixture. Content draws never depend on `live`, so a dormant twin (`live`
/// false) built from the same content stream mirrors the primary. `drift_seed`: apply the DR
/// drift picked for that seed. Returns the names, in job order, of the jobs that have an
/// unpaused activation *at the primary* (whatever `live` is).
fn large(
    w: &mut World,
    ids: &mut Ids,
    live: bool,
    t0: i64,
    drift_seed: Option<u64>,
) -> Vec<String> {
    let mut pool_ids = Vec::new();
    for i in 0..100 {
        let id = ids.pool();
        let min_idle = if ids.rng.random_range(0..100) < 60 {
            ids.rng.random_range(1..5)
        } else {
            0
        };
        let min_idle = if live { min_idle } else { 0 };
        let node = ["i3.xlarge", "r5.2xlarge", "m5.xlarge", "c5.2xlarge"][i % 4];
        let p = Pool::new(
            id.clone(),
            &format!("pool-{i:03}-{node}"),
            node,
            min_idle,
            50,
        );
        w.pools.insert(id.clone(), p);
        pool_ids.push(id);
    }
    let mut policy_ids = Vec::new();
    for i in 0..5 {
        let id = ids.hex(16).to_uppercase();
        let mut p = Policy::new(
            id.clone(),
            &format!("policy-{i}"),
            &large_policy_definition(i),
            CONFIG_EPOCH_MS - (300 - i as i64) * DAY_MS,
        );
        p.description = Some(format!("Generated policy {i}"));
        p.max_clusters_per_user = (i % 2 == 0).then_some(i as i64 + 1);
        w.policies.insert(id.clone(), p);
        policy_ids.push(id);
    }
    let teams = [
        "sales", "finance", "ml", "web", "supply", "crm", "iot", "platform",
    ];
    team_repos(w, teams);
    for i in 0..20 {
        let name = format!("scope-{i:02}");
        let keys: Vec<(&str, String)> = LARGE_SECRET_KEYS
            .iter()
            .map(|k| (*k, secret_value(&name, k)))
            .collect();
        secret_scope(
            w,
            &name,
            &keys,
            &[("admins", "MANAGE"), ("data-engineers", "READ")],
            CONFIG_EPOCH_MS + (i + 1) * DAY_MS,
        );
    }
    unity_catalog(w);
    for i in 0..1000 {
        let id = ids.cluster();
        let running = ids.rng.random_range(0..100) < 30 && live;
        let src = if i % 3 == 0 {
            ClusterSource::Api
        } else {
            ClusterSource::Ui
        };
        let state = if running {
            ClusterState::Running
        } else {
            ClusterState::Terminated
        };
        let team = teams[i % teams.len()];
        let mut c = Cluster::new(
            id.clone(),
            &format!("{team}-cluster-{i:04}"),
            src,
            state,
            t0,
        );
        c.custom_tags = tags(&[("team", team)]);
        if i % 4 == 0 {
            c.instance_pool_id = Some(pool_ids[i % pool_ids.len()].clone());
        }
        c.is_pinned = i % 50 == 0;
        w.clusters.insert(id, c);
    }
    let verbs = [
        "ingest",
        "aggregate",
        "export",
        "score",
        "refresh",
        "reconcile",
    ];
    let mut continuous_live = Vec::new();
    let mut activated: Vec<(u64, String)> = Vec::new();
    for i in 0..10_000u64 {
        let team = teams[(i % 8) as usize];
        let verb = verbs[(i / 8 % 6) as usize];
        let name = format!("{team} {verb} {i:05}");
        let r = ids.rng.random_range(0..100);
        let m = ids.rng.random_range(0..60);
        let h = ids.rng.random_range(0..24);
        let tz = TIMEZONES[ids.rng.random_range(0..TIMEZONES.len())];
        let cron = match ids.rng.random_range(0..10) {
            0 => format!("0 {m} * * * ?"),
            1 | 2 => format!("0 {m} {h} ? * MON-FRI"),
            _ => format!("0 {m} {h} * * ?"),
        };
        // Cron jobs get their (generated) schedule after the common settings are built.
        let trig = match r {
            0..95 => DemoTrigger::None,
            95..98 => DemoTrigger::Continuous(i % 3 == 0),
            _ => DemoTrigger::FileArrival(i % 2 == 0),
        };
        let tasks: &'static [&'static str] = match i % 3 {
            0 => &["main"],
            1 => &["extract", "load"],
            _ => &["prepare", "compute", "publish"],
        };
        let pool = (i % 5 == 0).then(|| pool_ids[(i % 100) as usize].as_str());
        let jtags = tags(&[("team", team)]);
        let paths = JobPaths::new(&name, &jtags);
        // Built as the primary's settings; the dormant twin pauses them afterwards.
        let mut s = settings(&name, trig, jtags, true, (&paths, tasks), pool);
        if i % 7 == 0 {
            use_policy(&mut s, &policy_ids[(i / 7 % 5) as usize]);
        }
        if i % 11 == 0 {
            let scope = format!("scope-{:02}", i / 11 % 20);
            use_secret(&mut s, "DB_PASSWORD", &scope, "db-password");
        }
        job_notebooks(w, paths.dir, tasks);
        if (30..95).contains(&r) {
            s.schedule = Some(CronSchedule {
                quartz_cron_expression: cron,
                timezone_id: tz.to_string(),
                pause_status: if r >= 50 {
                    PauseStatus::Unpaused
                } else {
                    PauseStatus::Paused
                },
            });
        }
        let job_id = ids.job_base + i * 1013;
        if active_kinds(&s).iter().any(|(_, on)| *on) {
            activated.push((job_id, name.clone()));
        }
        if !live {
            pause_all(&mut s);
        }
        if s.continuous
            .as_ref()
            .is_some_and(|c| c.pause_status == PauseStatus::Unpaused)
        {
            continuous_live.push(job_id);
        }
        add_job(w, job_id, s, t0);
    }
    if let Some(seed) = drift_seed {
        let names: Vec<String> = activated.iter().map(|(_, n)| n.clone()).collect();
        let drift = pick_drift(seed, &names);
        for (job_id, name) in &activated {
            if drift.missing_jobs.contains(name) {
                w.jobs.remove(job_id);
            } else if drift.without_activation.contains(name) {
                if let Some(j) = w.jobs.get_mut(job_id) {
                    strip_activation(&mut j.settings);
                }
            }
        }
    }
    for job_id in continuous_live {
        fixture_run(
            w,
            job_id,
            TriggerType::Continuous,
            t0 - 3_600_000,
            None,
            LifeCycleState::Running,
            None,
            None,
        );
    }
    for i in 0..50 {
        let id = ids.hex(16);
        let running = ids.rng.random_range(0..100) < 40 && live;
        let size = ["X-Small", "Small", "Medium", "Large"][i % 4];
        let wh = Warehouse::new(
            id.clone(),
            &format!("warehouse-{i:02}"),
            size,
            running,
            i % 3 == 0,
        );
        w.warehouses.insert(id, wh);
    }
    for i in 0..200 {
        let id = ids.uuid();
        let running = ids.rng.random_range(0..100) < 30 && live;
        let state = if running {
            PipelineState::Running
        } else {
            PipelineState::Idle
        };
        let mut p = Pipeline::new(
            id.clone(),
            &format!("pipeline-{i:03}"),
            state,
            i % 2 == 0,
            t0 - 3_600_000,
        );
        p.updates = vec![(
            ids.uuid(),
            if running { "RUNNING" } else { "COMPLETED" },
            t0 - 3_600_000,
        )];
        let workers = (i % 3 != 0).then_some((i % 4 + 1) as u32);
        pipeline_spec(w, &mut p, teams[i % teams.len()], workers);
        w.pipelines.insert(id, p);
    }
    activated.into_iter().map(|(_, n)| n).collect()
}

/// Records the fixture's active state as timeline events at t0 and arms the scheduler.
fn initial_events(w: &mut World, now: &Now) {
    let mut events = Vec::new();
    for j in w.jobs.values() {
        for (kind, on) in active_kinds(&j.settings) {
            if on {
                events.push((
                    EventKind::ScheduleUnpaused,
                    "job",
                    j.job_id.to_string(),
                    j.settings.name.clone(),
                    json!({"kind": kind}),
                ));
            }
        }
    }
    for r in w.runs.values().filter(|r| r.life_cycle.is_active()) {
        events.push((
            EventKind::RunStarted,
            "run",
            r.run_id.to_string(),
            r.run_name.clone(),
            json!({"run_id": r.run_id, "job_id": r.job_id, "trigger": r.trigger}),
        ));
    }
    for c in w
        .clusters
        .values()
        .filter(|c| c.state == ClusterState::Running)
    {
        events.push((
            EventKind::ClusterRunning,
            "cluster",
            c.cluster_id.clone(),
            c.cluster_name.clone(),
            json!({}),
        ));
    }
    for p in w.pools.values().filter(|p| p.min_idle_instances > 0) {
        events.push((
            EventKind::PoolMinIdleChanged,
            "pool",
            p.instance_pool_id.clone(),
            p.instance_pool_name.clone(),
            json!({"from": 0, "to": p.min_idle_instances}),
        ));
    }
    for x in w
        .warehouses
        .values()
        .filter(|x| x.state == crate::warehouses::WarehouseState::Running)
    {
        events.push((
            EventKind::WarehouseRunning,
            "warehouse",
            x.id.clone(),
            x.name.clone(),
            json!({}),
        ));
    }
    for p in w
        .pipelines
        .values()
        .filter(|p| p.state == PipelineState::Running)
    {
        events.push((
            EventKind::PipelineRunning,
            "pipeline",
            p.pipeline_id.clone(),
            p.name.clone(),
            json!({}),
        ));
    }
    for (kind, rt, id, name, detail) in events {
        w.timeline.record(now, kind, rt, id, &name, detail);
    }
    let ids: Vec<u64> = w.jobs.keys().copied().collect();
    for id in ids {
        w.ensure_continuous(id, now);
    }
    w.t0_ms = now.emu_ms;
    w.arm_cursor = Some(0);
}

/// Creates and fills the SQL tables (the same for every fixture and role).
pub fn seed_sql(conn: &rusqlite::Connection, seed: u64, now: &Now) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE main__sales__customers (customer_id BIGINT, name STRING, country STRING, created_at TIMESTAMP);
         CREATE TABLE main__sales__orders (order_id BIGINT, customer_id BIGINT, order_date DATE, amount DECIMAL(10,2), status STRING);
         CREATE TABLE main__ops__heartbeat (id INT, last_beat TIMESTAMP, source STRING);",
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_DA7A);
    let names = [
        ("Acme Corp", "US"),
        ("Globex", "US"),
        ("Initech", "US"),
        ("Umbrella", "GB"),
        ("Hooli", "US"),
        ("Stark Industries", "US"),
        ("Wayne Enterprises", "US"),
        ("Tyrell", "JP"),
        ("Cyberdyne", "DE"),
        ("Soylent", "NL"),
    ];
    for (i, (n, c)) in names.iter().enumerate() {
        conn.execute(
            "INSERT INTO main__sales__customers VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![i as i64 + 1, n, c, format!("2023-{:02}-15 09:00:00", i + 1)],
        )?;
    }
    let statuses = ["COMPLETE", "SHIPPED", "PENDING", "CANCELLED"];
    for i in 0..50i64 {
        let cents: i64 = rng.random_range(1_000..50_000);
        conn.execute(
            "INSERT INTO main__sales__orders VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                i + 1,
                rng.random_range(1..=10i64),
                format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
                cents as f64 / 100.0,
                statuses[rng.random_range(0..statuses.len())],
            ],
        )?;
    }
    let beat = chrono::DateTime::from_timestamp_millis(now.emu_ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default();
    conn.execute(
        "INSERT INTO main__ops__heartbeat VALUES (1, ?1, 'lifeboat-heartbeat')",
        rusqlite::params![beat],
    )?;
    Ok(())
}

/// Builds the world and the SQL database of a fresh emulator.
pub fn build(
    config: &EmulatorConfig,
    url: &str,
) -> rusqlite::Result<(World, rusqlite::Connection)> {
    let salt: u64 = match config.role {
        Role::Primary => 0,
        Role::Dr => DR_SALT,
    };
    let live = config.role == Role::Primary;
    let mut w = World::new(
        config,
        ChaCha8Rng::seed_from_u64(config.seed ^ salt ^ 0xA5A5),
    );
    w.url = url.to_string();
    let mut ids = Ids::new(config.seed, config.role);
    ids.job_base = match config.role {
        Role::Primary => 100_000_000_000_000,
        Role::Dr => 700_000_000_000_000,
    } + ids.draw(0..1_000_000u64) * 1_000;
    w.next_run_id = match config.role {
        Role::Primary => 500_000_000_000_000,
        Role::Dr => 900_000_000_000_000,
    };
    let now = w.clock.now();
    // Workspace object (and repo) ids: a range of its own per role.
    w.workspace = WorkspaceTree::new(i64::try_from(ids.job_base.saturating_mul(10)).unwrap_or(0));
    workspace_skeleton(&mut w, config.fixture != Fixture::Empty);
    match config.fixture {
        Fixture::Demo => demo(&mut w, &mut ids, live, now.emu_ms),
        Fixture::Large => {
            let drift = (config.role == Role::Dr && config.dr_drift).then_some(config.seed);
            large(&mut w, &mut ids, live, now.emu_ms, drift);
        }
        Fixture::Empty => {}
    }
    initial_events(&mut w, &now);
    if config.fixture != Fixture::Large {
        while !w.arm_schedules(usize::MAX) {}
    }
    let conn = rusqlite::Connection::open_in_memory()?;
    seed_sql(&conn, config.seed, &now)?;
    Ok((w, conn))
}
