//! Reading one site's configuration into its normal form.
//!
//! Listings are cheap (one request per page, each family with its own rate limit, all at
//! once); per-object reads are not (one request each: an ACL per object, a pipeline's spec, a
//! catalog's grants — 10,000 jobs are 10,000 permission requests, 11 minutes at 15 req/s).
//! So per-object reads go into a [`DetailCache`] kept in the ledger beside the snapshot: each
//! read refreshes the stalest entries after its listings until its deadline (a failover's check
//! `drift.detail_seconds` from its start, so at 10,000 jobs the listings use it all; each
//! scheduled snapshot 30 s), and the comparison uses what both sites have, saying how much that
//! is and how old.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    normalize::{self, Names, RegionMap},
    workspace_home, ObjectRef, Objects,
};
use crate::databricks::{
    clusters::{Cluster, ClusterFilter, ClusterSource},
    jobs::Job,
    pipelines::Pipeline,
    pools::InstancePool,
    warehouses::Warehouse,
    ApiError, WorkspaceClient,
};
use crate::plan::ObjectKind;

/// What a per-object read fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    /// The object's ACL (Permissions API).
    Acl,
    /// A pipeline's spec (libraries, target, configuration, clusters).
    Spec,
}

impl Detail {
    /// The key the detail is kept under in the object's normal form.
    pub fn key(self) -> &'static str {
        match self {
            Detail::Acl => "acl",
            Detail::Spec => "spec",
        }
    }
}

/// One cached per-object read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cached {
    /// The object's id when read (a recreated object's entry is stale).
    pub id: String,
    /// When read.
    pub at: DateTime<Utc>,
    /// The normal form of what was read.
    pub value: Value,
}

/// Per-object reads of one site, by `kind/detail/name`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailCache {
    /// The entries.
    pub entries: BTreeMap<String, Cached>,
}

fn cache_key(object: &ObjectRef, detail: Detail) -> String {
    format!("{}/{}/{}", object.kind.name(), detail.key(), object.name)
}

/// How much of the per-object configuration a read has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Per-object reads the site's objects need.
    pub needed: usize,
    /// Of those, known (read now or earlier).
    pub known: usize,
    /// Read by this read.
    pub read_now: usize,
    /// Age of the oldest known entry, seconds.
    pub oldest_seconds: Option<i64>,
}

/// A site's configuration as read.
#[derive(Debug, Clone, Default)]
pub struct SiteConfig {
    /// Jobs as listed (with tasks).
    pub jobs: Vec<Job>,
    /// Pools.
    pub pools: Vec<InstancePool>,
    /// Warehouses.
    pub warehouses: Vec<Warehouse>,
    /// All-purpose clusters (UI and API).
    pub clusters: Vec<Cluster>,
    /// Everything in normal form (region values not yet mapped: that depends on the direction).
    pub objects: Objects,
    /// The per-object cache, refreshed.
    pub details: DetailCache,
    /// Per-object coverage.
    pub coverage: Coverage,
    /// What could not be read, and so is not compared (by kind).
    pub not_compared: BTreeMap<ObjectKind, String>,
}

/// Reads a site: every listing, then per-object reads until `detail_deadline`.
pub async fn read(
    client: &WorkspaceClient,
    cache: DetailCache,
    detail_deadline: Instant,
) -> Result<SiteConfig, ApiError> {
    let clusters = client.all_clusters(ClusterFilter {
        sources: vec![ClusterSource::Ui, ClusterSource::Api],
        ..Default::default()
    });
    let pipelines = client.list_pipelines().try_collect::<Vec<Pipeline>>();
    let detail_client = client.with_deadline(detail_deadline);
    // Every listing at once, each family at its own limit; secret scopes and grants (the
    // `other` family) meanwhile, so they hide behind the job listing. The other listings end
    // long before the jobs' (10,000 jobs are 100 pages at 20 req/s): from then on each page of
    // jobs is normalised while the next one waits for its turn at the rate limit.
    let names_cell = std::sync::OnceLock::new();
    // Pools, warehouses and clusters are what the start-up uses: without them the site is not
    // read. A kind only compared (policies, pipelines, repos) that cannot be listed is named
    // as not compared instead.
    let others = async {
        let (required, pipelines, policies, repos) = futures::join!(
            async { futures::try_join!(client.list_pools(), client.all_warehouses(), clusters) },
            pipelines,
            client.list_cluster_policies(),
            client.all_repos(),
        );
        let (pools, warehouses, clusters) = required?;
        let failed = [
            (ObjectKind::Pipeline, error_of(&pipelines)),
            (ObjectKind::ClusterPolicy, error_of(&policies)),
            (ObjectKind::Repo, error_of(&repos)),
        ];
        let (pipelines, policies, repos) = (
            pipelines.unwrap_or_default(),
            policies.unwrap_or_default(),
            repos.unwrap_or_default(),
        );
        let _ = names_cell.set(names_of(
            &pools,
            &warehouses,
            &clusters,
            &pipelines,
            &policies,
        ));
        Ok::<_, ApiError>((
            pools, warehouses, clusters, pipelines, policies, repos, failed,
        ))
    };
    let jobs = async {
        let mut stream = client.list_jobs(true);
        let mut jobs = Vec::new();
        let mut normal = Vec::new();
        while let Some(j) = stream.try_next().await? {
            jobs.push(j);
            if let Some(names) = names_cell.get() {
                normal.extend(jobs[normal.len()..].iter().map(|j| job_normal(j, names)));
            }
        }
        Ok::<_, ApiError>((jobs, normal))
    };
    let ((jobs, others), scopes, uc) = futures::join!(
        async { futures::join!(jobs, others) },
        secret_scopes(client),
        unity_catalog(client)
    );
    let (pools, warehouses, clusters, pipelines, policies, repos, failed) = others?;
    let (jobs, mut normal) = jobs?;
    let names = names_cell
        .get()
        .cloned()
        .unwrap_or_else(|| names_of(&pools, &warehouses, &clusters, &pipelines, &policies));
    normal.extend(jobs[normal.len()..].iter().map(|j| job_normal(j, &names)));
    let none = RegionMap::default();
    let mut objects = Objects::new();
    // (object, id) of everything with an ACL, for the per-object reads.
    let mut acl_ids: Vec<(ObjectRef, String)> = Vec::new();
    let put = |objects: &mut Objects, kind: ObjectKind, name: &str, v: Value| {
        objects.entry(kind).or_default().insert(name.to_string(), v);
    };
    for (j, v) in jobs.iter().zip(normal) {
        put(&mut objects, ObjectKind::Job, &j.settings.name, v);
        acl_ids.push((
            ObjectRef::new(ObjectKind::Job, j.settings.name.clone()),
            j.job_id.0.to_string(),
        ));
    }
    for p in &pools {
        let v = serde_json::to_value(p).unwrap_or(Value::Null);
        put(
            &mut objects,
            ObjectKind::Pool,
            &p.instance_pool_name,
            normalize::allowed(&v, normalize::POOL_KEYS, &names, &none),
        );
        acl_ids.push((
            ObjectRef::new(ObjectKind::Pool, p.instance_pool_name.clone()),
            p.instance_pool_id.0.clone(),
        ));
    }
    for w in &warehouses {
        let v = serde_json::to_value(w).unwrap_or(Value::Null);
        put(
            &mut objects,
            ObjectKind::Warehouse,
            &w.name,
            normalize::allowed(&v, normalize::WAREHOUSE_KEYS, &names, &none),
        );
        acl_ids.push((
            ObjectRef::new(ObjectKind::Warehouse, w.name.clone()),
            w.id.0.clone(),
        ));
    }
    for c in &clusters {
        let v = serde_json::to_value(c).unwrap_or(Value::Null);
        put(
            &mut objects,
            ObjectKind::Cluster,
            &c.cluster_name,
            normalize::allowed(&v, normalize::CLUSTER_KEYS, &names, &none),
        );
        acl_ids.push((
            ObjectRef::new(ObjectKind::Cluster, c.cluster_name.clone()),
            c.cluster_id.0.clone(),
        ));
    }
    for p in &policies {
        put(
            &mut objects,
            ObjectKind::ClusterPolicy,
            &p.name,
            normalize::policy(&p.definition, &p.extra, &names, &none),
        );
        acl_ids.push((
            ObjectRef::new(ObjectKind::ClusterPolicy, p.name.clone()),
            p.policy_id.clone(),
        ));
    }
    for p in &pipelines {
        put(&mut objects, ObjectKind::Pipeline, &p.name, json!({}));
        acl_ids.push((
            ObjectRef::new(ObjectKind::Pipeline, p.name.clone()),
            p.pipeline_id.0.clone(),
        ));
    }
    for r in &repos {
        let v = json!({"url": r.url, "provider": r.provider, "branch": r.branch,
            "head_commit_id": r.head_commit_id});
        put(
            &mut objects,
            ObjectKind::Repo,
            &r.path,
            normalize::configuration(&v, &names, &none),
        );
        acl_ids.push((
            ObjectRef::new(ObjectKind::Repo, r.path.clone()),
            r.id.to_string(),
        ));
    }
    let mut not_compared: BTreeMap<ObjectKind, String> = failed
        .into_iter()
        .filter_map(|(k, e)| e.map(|e| (k, crate::identity::bounded(&e, 300))))
        .collect();
    // Secret scopes: key names and ACL (a handful of requests per scope).
    match scopes {
        Ok(scopes) => {
            for (name, v) in scopes {
                put(&mut objects, ObjectKind::SecretScope, &name, v);
            }
        }
        Err(e) => {
            not_compared.insert(
                ObjectKind::SecretScope,
                crate::identity::bounded(&e.to_string(), 300),
            );
        }
    }
    // Folders the jobs' notebooks and files sit in (outside repos, which are compared by commit):
    // one listing per folder, the entries the jobs name.
    let folders = job_folders(&objects);
    let listed = futures::stream::iter(folders.into_iter().take(MAX_FOLDERS))
        .map(|(folder, wanted)| {
            let c = client.clone();
            async move {
                let r = c.list_workspace(&folder).await;
                (folder, wanted, r)
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    for (folder, wanted, r) in listed {
        match r {
            Ok(children) => {
                // Every entry, not only those this site's jobs name: a job only one site has
                // must not make the other's folder look short. Entries only the target has
                // warn; one the source has and the target lacks blocks if a job uses the folder.
                let _ = wanted;
                let v: serde_json::Map<String, Value> = children
                    .into_iter()
                    .take(MAX_FOLDER_ENTRIES)
                    .map(|o| {
                        let leaf = o.path.rsplit('/').next().unwrap_or(&o.path).to_string();
                        (leaf, Value::String(o.object_type))
                    })
                    .collect();
                put(&mut objects, ObjectKind::Folder, &folder, Value::Object(v));
            }
            Err(e) if e.kind == crate::databricks::ErrorKind::NotFound => {}
            Err(e) => {
                not_compared.insert(
                    ObjectKind::Folder,
                    crate::identity::bounded(&e.to_string(), 300),
                );
            }
        }
    }
    // Unity Catalog grants, within the per-object budget: where they are not all read, they
    // are not compared (a half-read catalog list would look like missing catalogs).
    match uc {
        Ok(uc) => {
            for (kind, name, v) in uc {
                put(&mut objects, kind, &name, v);
            }
        }
        Err(e) => {
            for k in [ObjectKind::Catalog, ObjectKind::Schema] {
                not_compared.insert(k, crate::identity::bounded(&e.to_string(), 300));
            }
        }
    }
    let pipeline_ids: Vec<(ObjectRef, String)> = pipelines
        .iter()
        .map(|p| {
            (
                ObjectRef::new(ObjectKind::Pipeline, p.name.clone()),
                p.pipeline_id.0.clone(),
            )
        })
        .collect();
    let mut wanted: Vec<(ObjectRef, String, Detail)> = pipeline_ids
        .into_iter()
        .map(|(o, id)| (o, id, Detail::Spec))
        .chain(acl_ids.into_iter().map(|(o, id)| (o, id, Detail::Acl)))
        .collect();
    let (details, coverage) =
        refresh_details(&detail_client, cache, &mut wanted, &names, detail_deadline).await;
    for (object, _, detail) in &wanted {
        if let Some(c) = details.entries.get(&cache_key(object, *detail)) {
            if let Some(Value::Object(o)) = objects
                .get_mut(&object.kind)
                .and_then(|m| m.get_mut(&object.name))
            {
                o.insert(detail.key().to_string(), c.value.clone());
            }
        }
    }
    Ok(SiteConfig {
        jobs,
        pools,
        warehouses,
        clusters,
        objects,
        details,
        coverage,
        not_compared,
    })
}

/// A failed listing's error, as text.
fn error_of<T>(r: &Result<T, ApiError>) -> Option<String> {
    r.as_ref().err().map(ToString::to_string)
}

/// A job's settings in normal form.
fn job_normal(job: &Job, names: &Names) -> Value {
    let settings = serde_json::to_value(&job.settings).unwrap_or(Value::Null);
    normalize::configuration(&settings, names, &RegionMap::default())
}

/// Id → name of everything a configuration can point to.
fn names_of(
    pools: &[InstancePool],
    warehouses: &[Warehouse],
    clusters: &[Cluster],
    pipelines: &[Pipeline],
    policies: &[crate::databricks::policies::ClusterPolicy],
) -> Names {
    Names {
        pools: pools
            .iter()
            .map(|p| (p.instance_pool_id.0.clone(), p.instance_pool_name.clone()))
            .collect(),
        policies: policies
            .iter()
            .map(|p| (p.policy_id.clone(), p.name.clone()))
            .collect(),
        clusters: clusters
            .iter()
            .map(|c| (c.cluster_id.0.clone(), c.cluster_name.clone()))
            .collect(),
        warehouses: warehouses
            .iter()
            .map(|w| (w.id.0.clone(), w.name.clone()))
            .collect(),
        pipelines: pipelines
            .iter()
            .map(|p| (p.pipeline_id.0.clone(), p.name.clone()))
            .collect(),
    }
}

/// At most this many folders are listed per read, and entries kept per folder.
const MAX_FOLDERS: usize = 200;
const MAX_FOLDER_ENTRIES: usize = 1000;

/// Folder → the workspace paths in it that jobs name.
fn job_folders(objects: &Objects) -> BTreeMap<String, BTreeSet<String>> {
    fn walk(key: &str, v: &Value, out: &mut BTreeMap<String, BTreeSet<String>>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(k, v, out)),
            Value::Array(a) => a.iter().for_each(|v| walk(key, v, out)),
            Value::String(s)
                if matches!(key, "notebook_path" | "python_file" | "path" | "file") =>
            {
                if let Some(r) = workspace_home(s) {
                    if r.kind == ObjectKind::Folder {
                        let p = s.strip_prefix("/Workspace").unwrap_or(s).to_string();
                        out.entry(r.name).or_default().insert(p);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    if let Some(jobs) = objects.get(&ObjectKind::Job) {
        for j in jobs.values() {
            walk("", j, &mut out);
        }
    }
    out
}

/// Each scope's normal form: `{keys: [...], acl: {principal: permission}}`.
async fn secret_scopes(client: &WorkspaceClient) -> Result<Vec<(String, Value)>, ApiError> {
    let scopes = client.list_secret_scopes().await?;
    futures::stream::iter(scopes)
        .map(|s| async move {
            let (keys, acls) = futures::try_join!(
                client.list_secret_keys(&s.name),
                client.list_secret_acls(&s.name)
            )?;
            // Keys as a set: a key only the target has is no loss (it warns).
            let keys: BTreeMap<String, bool> = keys.into_iter().map(|k| (k, true)).collect();
            let acl: BTreeMap<String, String> = acls
                .into_iter()
                .map(|a| (a.principal, a.permission))
                .collect();
            Ok::<_, ApiError>((s.name, json!({"keys": keys, "acl": acl})))
        })
        .buffer_unordered(4)
        .try_collect()
        .await
}

/// At most this many catalogs (and schemas per catalog) have their grants read.
const MAX_CATALOGS: usize = 20;
const MAX_SCHEMAS: usize = 20;

fn grants_value(list: Vec<crate::databricks::unity_catalog::PrivilegeAssignment>) -> Value {
    let map: BTreeMap<String, Vec<String>> = list
        .into_iter()
        .map(|p| {
            let mut privileges = p.privileges;
            privileges.sort();
            (p.principal, privileges)
        })
        .collect();
    serde_json::to_value(map).unwrap_or(Value::Null)
}

/// Catalogs and their schemas with owner and grants.
async fn unity_catalog(
    client: &WorkspaceClient,
) -> Result<Vec<(ObjectKind, String, Value)>, ApiError> {
    let catalogs: Vec<_> = client
        .list_catalogs()
        .take(MAX_CATALOGS)
        .try_collect()
        .await?;
    let per_catalog = futures::stream::iter(catalogs)
        .map(|c| async move {
            let (grants, schemas) = futures::try_join!(
                client.get_grants("catalog", &c.name),
                client.all_schemas(&c.name)
            )?;
            let mut out = vec![(
                ObjectKind::Catalog,
                c.name.clone(),
                json!({"owner": c.owner, "comment": c.comment, "grants": grants_value(grants)}),
            )];
            for s in schemas.into_iter().take(MAX_SCHEMAS) {
                let full = if s.full_name.is_empty() {
                    format!("{}.{}", c.name, s.name)
                } else {
                    s.full_name.clone()
                };
                let grants = client.get_grants("schema", &full).await?;
                out.push((
                    ObjectKind::Schema,
                    full,
                    json!({"owner": s.owner, "grants": grants_value(grants)}),
                ));
            }
            Ok::<_, ApiError>(out)
        })
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(per_catalog
        .into_iter()
        .flatten()
        .map(|(k, n, v)| {
            (
                k,
                n,
                normalize::configuration(&v, &Names::default(), &RegionMap::default()),
            )
        })
        .collect())
}

/// Pure: the order per-object reads are made in — never read (or read for another id) first,
/// then the stalest; within each, kinds other than jobs first (few, and what jobs depend on).
pub fn read_order(cache: &DetailCache, wanted: &[(ObjectRef, String, Detail)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by_key(|&i| {
        let (object, id, detail) = &wanted[i];
        let cached = cache
            .entries
            .get(&cache_key(object, *detail))
            .filter(|c| &c.id == id);
        (
            cached.is_some(),
            cached.map(|c| c.at),
            object.kind == ObjectKind::Job,
            i,
        )
    });
    order
}

/// Reads the stalest per-object details until the deadline; returns the refreshed cache
/// (entries of objects that no longer exist dropped) and the coverage.
async fn refresh_details(
    client: &WorkspaceClient,
    mut cache: DetailCache,
    wanted: &mut [(ObjectRef, String, Detail)],
    names: &Names,
    deadline: Instant,
) -> (DetailCache, Coverage) {
    let order = read_order(&cache, wanted);
    let wanted_ref: &[(ObjectRef, String, Detail)] = wanted;
    let reads = futures::stream::iter(order)
        .take_while(|_| futures::future::ready(Instant::now() < deadline))
        .map(|i| {
            let (object, id, detail) = &wanted_ref[i];
            async move {
                let value = match detail {
                    Detail::Acl => {
                        let t = permissions_type(object.kind)?;
                        client
                            .get_permissions(t, id)
                            .await
                            .ok()
                            .map(|p| normalize::acl(&p.access_control_list))
                    }
                    Detail::Spec => client
                        .get_pipeline(&crate::databricks::pipelines::PipelineId(id.clone()))
                        .await
                        .ok()
                        .and_then(|p| p.extra.get("spec").cloned())
                        .map(|spec| normalize::configuration(&spec, names, &RegionMap::default())),
                };
                value.map(|v| (cache_key(object, *detail), id.clone(), v))
            }
        })
        .buffer_unordered(16)
        .filter_map(futures::future::ready)
        .collect::<Vec<_>>()
        .await;
    let now = Utc::now();
    let read_now = reads.len();
    for (key, id, value) in reads {
        cache.entries.insert(key, Cached { id, at: now, value });
    }
    let live: BTreeMap<String, &String> = wanted_ref
        .iter()
        .map(|(o, id, d)| (cache_key(o, *d), id))
        .collect();
    cache
        .entries
        .retain(|k, c| live.get(k).is_some_and(|id| **id == c.id));
    let coverage = Coverage {
        needed: wanted_ref.len(),
        known: cache.entries.len(),
        read_now,
        oldest_seconds: cache
            .entries
            .values()
            .map(|c| c.at)
            .min()
            .map(|t| (now - t).num_seconds().max(0)),
    };
    (cache, coverage)
}

/// The Permissions API's path segment for this kind's ACL (`None`: its ACL comes with the
/// object, or it has none).
pub fn permissions_type(kind: ObjectKind) -> Option<&'static str> {
    Some(match kind {
        ObjectKind::Job => "jobs",
        ObjectKind::ClusterPolicy => "cluster-policies",
        ObjectKind::Pool => "instance-pools",
        ObjectKind::Cluster => "clusters",
        ObjectKind::Warehouse => "warehouses",
        ObjectKind::Pipeline => "pipelines",
        ObjectKind::Repo => "repos",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_object_reads_go_to_the_unknown_then_the_stalest_then_jobs() {
        let now = Utc::now();
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        let o = |k: ObjectKind, n: &str| ObjectRef::new(k, n);
        let wanted = vec![
            (
                o(ObjectKind::Job, "j-known-old"),
                "1".to_string(),
                Detail::Acl,
            ),
            (
                o(ObjectKind::Job, "j-unknown"),
                "2".to_string(),
                Detail::Acl,
            ),
            (
                o(ObjectKind::Pool, "p-unknown"),
                "p".to_string(),
                Detail::Acl,
            ),
            (o(ObjectKind::Pool, "p-fresh"), "q".to_string(), Detail::Acl),
            (
                o(ObjectKind::Job, "j-recreated"),
                "new-id".to_string(),
                Detail::Acl,
            ),
            (
                o(ObjectKind::Pipeline, "pl-old"),
                "x".to_string(),
                Detail::Spec,
            ),
        ];
        let entry = |id: &str, at| Cached {
            id: id.to_string(),
            at,
            value: Value::Null,
        };
        let mut cache = DetailCache::default();
        cache
            .entries
            .insert(cache_key(&wanted[0].0, Detail::Acl), entry("1", ago(3600)));
        cache
            .entries
            .insert(cache_key(&wanted[3].0, Detail::Acl), entry("q", ago(10)));
        // Read for an object of the same name that was deleted and recreated: stale.
        cache.entries.insert(
            cache_key(&wanted[4].0, Detail::Acl),
            entry("old-id", ago(5)),
        );
        cache
            .entries
            .insert(cache_key(&wanted[5].0, Detail::Spec), entry("x", ago(7200)));
        let order: Vec<&str> = read_order(&cache, &wanted)
            .into_iter()
            .map(|i| wanted[i].0.name.as_str())
            .collect();
        assert_eq!(
            order,
            vec![
                "p-unknown",
                "j-unknown",
                "j-recreated",
                "pl-old",
                "j-known-old",
                "p-fresh"
            ]
        );
    }
}
