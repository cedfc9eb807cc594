//! The `large` DR twin mirrors the primary's configuration, dormant, except for the documented
//! seeded drift (which `dr_drift(false)` / `--no-drift` turns off).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use databricks_emulator::fixtures::{
    build, LARGE_DR_DRIFT_MISSING_JOBS, LARGE_DR_DRIFT_NO_SCHEDULE,
};
use databricks_emulator::jobs::{active_kinds, JobSettings};
use databricks_emulator::state::World;
use databricks_emulator::{large_dr_drift, EmulatorConfig, Fixture, LargeDrift, Role};
use serde_json::{json, Value};

fn world(seed: u64, role: Role, drift: bool) -> World {
    let config = EmulatorConfig::new(Fixture::Large, TOKEN)
        .seed(seed)
        .role(role)
        .dr_drift(drift);
    build(&config, "http://127.0.0.1:1")
        .expect("fixture builds")
        .0
}

fn activated(s: &JobSettings) -> bool {
    active_kinds(s).iter().any(|(_, on)| *on)
}

/// A job's settings as JSON with every pause status PAUSED and pool and policy ids replaced by
/// names, so a primary job and its DR twin compare equal when they mirror each other.
fn normalized(w: &World, s: &JobSettings) -> Value {
    let mut v = serde_json::to_value(s).unwrap();
    for k in ["schedule", "continuous", "trigger"] {
        if let Some(x) = v.get_mut(k).and_then(Value::as_object_mut) {
            x.insert("pause_status".into(), json!("PAUSED"));
        }
    }
    if let Some(jcs) = v.get_mut("job_clusters").and_then(Value::as_array_mut) {
        for jc in jcs {
            let nc = &mut jc["new_cluster"];
            if let Some(pid) = nc.get("instance_pool_id").and_then(Value::as_str) {
                let name = w.pools[pid].instance_pool_name.clone();
                nc["instance_pool_id"] = json!(format!("pool:{name}"));
            }
            if let Some(pid) = nc.get("policy_id").and_then(Value::as_str) {
                let name = w.policies[pid].name.clone();
                nc["policy_id"] = json!(format!("policy:{name}"));
            }
        }
    }
    v
}

fn jobs_by_name(w: &World) -> BTreeMap<String, &JobSettings> {
    w.jobs
        .values()
        .map(|j| (j.settings.name.clone(), &j.settings))
        .collect()
}

/// Checks the mirror; returns (missing at DR, present without any activation) among the
/// primary's activated jobs.
fn compare(p: &World, d: &World) -> (BTreeSet<String>, BTreeSet<String>) {
    let (pj, dj) = (jobs_by_name(p), jobs_by_name(d));
    assert_eq!(pj.len(), 10_000, "job names are unique");
    let (mut missing, mut stripped) = (BTreeSet::new(), BTreeSet::new());
    for (name, ps) in &pj {
        let Some(ds) = dj.get(name) else {
            assert!(activated(ps), "{name}: only activated jobs may be missing");
            missing.insert(name.clone());
            continue;
        };
        assert!(!activated(ds), "{name} is active at DR");
        if ds.schedule.is_none() && ds.continuous.is_none() && ds.trigger.is_none() && activated(ps)
        {
            stripped.insert(name.clone());
            continue;
        }
        assert_eq!(normalized(p, ps), normalized(d, ds), "{name} differs");
    }
    assert!(dj.keys().all(|n| pj.contains_key(n)), "no extra DR jobs");
    (missing, stripped)
}

/// Pools, clusters, warehouses, pipelines: same names and specs, all dormant, other ids; no
/// active runs.
fn assert_dormant_mirror(p: &World, d: &World) {
    assert!(d.active_runs.is_empty());
    assert!(d.runs.values().all(|r| !r.life_cycle.is_active()));
    let pool_names = |w: &World| -> BTreeMap<String, (String, Option<u32>)> {
        w.pools
            .values()
            .map(|x| {
                (
                    x.instance_pool_name.clone(),
                    (x.node_type_id.clone(), x.max_capacity),
                )
            })
            .collect()
    };
    assert_eq!(pool_names(p), pool_names(d));
    assert!(d.pools.values().all(|x| x.min_idle_instances == 0));
    assert!(p.pools.values().any(|x| x.min_idle_instances > 0));
    let clusters = |w: &World| -> BTreeMap<String, Value> {
        w.clusters
            .values()
            .map(|c| {
                let pool = c
                    .instance_pool_id
                    .as_ref()
                    .map(|id| w.pools[id].instance_pool_name.clone());
                (
                    c.cluster_name.clone(),
                    json!([
                        c.cluster_source,
                        c.node_type_id,
                        c.spark_version,
                        c.num_workers,
                        c.custom_tags,
                        c.is_pinned,
                        pool
                    ]),
                )
            })
            .collect()
    };
    assert_eq!(clusters(p), clusters(d));
    assert!(d
        .clusters
        .values()
        .all(|c| format!("{:?}", c.state) == "Terminated"));
    let warehouses = |w: &World| -> BTreeMap<String, Value> {
        w.warehouses
            .values()
            .map(|x| {
                (
                    x.name.clone(),
                    json!([
                        x.cluster_size,
                        x.enable_serverless_compute,
                        x.auto_stop_mins
                    ]),
                )
            })
            .collect()
    };
    assert_eq!(warehouses(p), warehouses(d));
    assert!(d
        .warehouses
        .values()
        .all(|x| json!(x.state) == json!("STOPPED")));
    let pipelines = |w: &World| -> BTreeMap<String, Value> {
        w.pipelines
            .values()
            .map(|x| {
                let mut spec = x.spec_json();
                spec["id"] = Value::Null;
                (x.name.clone(), spec)
            })
            .collect()
    };
    assert_eq!(pipelines(p), pipelines(d));
    assert!(d
        .pipelines
        .values()
        .all(|x| format!("{:?}", x.state) == "Idle"));
    let policies = |w: &World| -> BTreeMap<String, Value> {
        w.policies
            .values()
            .map(|p| {
                (
                    p.name.clone(),
                    json!([p.definition, p.description, p.max_clusters_per_user]),
                )
            })
            .collect()
    };
    assert_eq!(policies(p), policies(d));
    let scopes = |w: &World| -> BTreeMap<String, Value> {
        w.secret_scopes
            .values()
            .map(|s| {
                (
                    s.name.clone(),
                    json!([s.secrets.keys().collect::<Vec<_>>(), s.acls]),
                )
            })
            .collect()
    };
    assert_eq!(scopes(p), scopes(d));
    let repos = |w: &World| -> BTreeMap<String, Value> {
        w.repos
            .values()
            .map(|r| {
                (
                    r.path.clone(),
                    json!([r.url, r.provider, r.branch, r.head_commit_id]),
                )
            })
            .collect()
    };
    assert_eq!(repos(p), repos(d));
    assert_eq!(
        p.catalogs.keys().collect::<Vec<_>>(),
        d.catalogs.keys().collect::<Vec<_>>()
    );
    let ids = |w: &World| -> BTreeSet<String> {
        w.jobs
            .keys()
            .map(u64::to_string)
            .chain(w.clusters.keys().cloned())
            .chain(w.pools.keys().cloned())
            .chain(w.warehouses.keys().cloned())
            .chain(w.pipelines.keys().cloned())
            .collect()
    };
    assert!(
        ids(p).is_disjoint(&ids(d)),
        "DR ids differ from the primary's"
    );
}

/// The workspace trees: the same paths and object types, other object ids.
fn assert_same_tree(p: &mut World, d: &mut World) {
    let tree = |w: &mut World| -> (BTreeMap<String, String>, BTreeSet<i64>) {
        let all = w.workspace.iter();
        (
            all.iter()
                .map(|(k, o)| (k.clone(), format!("{:?}", o.object_type)))
                .collect(),
            all.iter()
                .map(|(_, o)| o.object_id)
                .filter(|id| *id != 0)
                .collect(),
        )
    };
    let ((pt, pids), (dt, dids)) = (tree(p), tree(d));
    assert_eq!(pt, dt);
    assert!(pids.is_disjoint(&dids));
}

#[test]
fn large_dr_twin_mirrors_the_primary_except_the_documented_drift() {
    let seed = 42;
    let p = world(seed, Role::Primary, true);
    let d = world(seed, Role::Dr, true);
    let drift = large_dr_drift(seed);
    assert_eq!(drift.missing_jobs.len(), LARGE_DR_DRIFT_MISSING_JOBS);
    assert_eq!(drift.without_activation.len(), LARGE_DR_DRIFT_NO_SCHEDULE);
    assert_eq!(drift, large_dr_drift(seed), "deterministic");
    let (missing, stripped) = compare(&p, &d);
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(missing, set(&drift.missing_jobs));
    assert_eq!(stripped, set(&drift.without_activation));
    assert!(missing.is_disjoint(&stripped));
    assert_eq!(d.jobs.len(), 10_000 - LARGE_DR_DRIFT_MISSING_JOBS);
    assert_dormant_mirror(&p, &d);
    // The DR twin keeps every job folder, even the missing jobs' (the tree was replicated).
    let (mut p, mut d) = (p, d);
    assert_same_tree(&mut p, &mut d);
    let primary_activated = p.jobs.values().filter(|j| activated(&j.settings)).count();
    assert!(primary_activated > 4_000, "{primary_activated}");
}

#[test]
fn large_dr_twin_without_drift_is_an_exact_dormant_mirror() {
    let seed = 42;
    let p = world(seed, Role::Primary, true);
    let d = world(seed, Role::Dr, false);
    let (missing, stripped) = compare(&p, &d);
    assert!(
        missing.is_empty() && stripped.is_empty(),
        "{missing:?} {stripped:?}"
    );
    assert_eq!(d.jobs.len(), 10_000);
    assert_dormant_mirror(&p, &d);
}

#[test]
fn drift_follows_the_seed() {
    let seed = 7;
    let drift = large_dr_drift(seed);
    assert_ne!(drift, large_dr_drift(42));
    let (missing, stripped) = compare(
        &world(seed, Role::Primary, true),
        &world(seed, Role::Dr, true),
    );
    assert_eq!(
        LargeDrift {
            missing_jobs: missing.into_iter().collect(),
            without_activation: stripped.into_iter().collect(),
        },
        drift
    );
    assert!(drift.contains(&drift.missing_jobs[0]));
    assert!(!drift.contains("no such job"));
}

#[tokio::test]
async fn large_dr_emulator_over_http_is_dormant_with_the_drift() {
    let d = up(cfg(Fixture::Large).role(Role::Dr)).await;
    let st = d.state().await;
    assert_eq!(st["active_runs"], 0);
    let jobs = st["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 10_000 - LARGE_DR_DRIFT_MISSING_JOBS);
    let names: BTreeSet<&str> = jobs.iter().filter_map(|j| j["name"].as_str()).collect();
    let drift = large_dr_drift(42);
    assert!(drift
        .missing_jobs
        .iter()
        .all(|n| !names.contains(n.as_str())));
    for j in jobs {
        for k in [
            "schedule_pause_status",
            "continuous_pause_status",
            "trigger_pause_status",
        ] {
            assert!(j[k].is_null() || j[k] == "PAUSED", "{j}");
        }
    }
    // The same definition as the primary, paused: compare one drift-free activated job.
    let p = up(cfg(Fixture::Large)).await;
    let ps = p.state().await;
    let pick = ps["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| {
            j["schedule_pause_status"] == "UNPAUSED" && !drift.contains(j["name"].as_str().unwrap())
        })
        .unwrap()
        .clone();
    let name = pick["name"].as_str().unwrap();
    let pid = pick["job_id"].as_u64().unwrap();
    let did = d.job_id(name).await;
    assert_ne!(pid, did);
    let (_, pj) = p.get(&format!("/api/2.2/jobs/get?job_id={pid}")).await;
    let (_, dj) = d.get(&format!("/api/2.2/jobs/get?job_id={did}")).await;
    let (psched, dsched) = (&pj["settings"]["schedule"], &dj["settings"]["schedule"]);
    assert_eq!(
        psched["quartz_cron_expression"],
        dsched["quartz_cron_expression"]
    );
    assert_eq!(psched["timezone_id"], dsched["timezone_id"]);
    assert_eq!(dsched["pause_status"], "PAUSED");
    let c = d
        .get("/api/2.1/clusters/list?filter_by.cluster_states=RUNNING")
        .await
        .1;
    assert!(c["clusters"].is_null() || c["clusters"].as_array().unwrap().is_empty());
}
