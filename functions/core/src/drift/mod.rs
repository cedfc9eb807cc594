//! Drift parity per object: each site's configuration in a normal form ([`normalize`]), a diff
//! that names the field, and the plan's rule of what blocks a failover. The seed's failover
//! step 2 ("confirm the DR configuration is up to date") as data: a DR workspace whose pool has
//! another node type, whose repo sits on another commit or whose secret scope lacks a key would
//! start the jobs a failover activates — and fail them.
//!
//! What blocks by default is what a job to be activated (live at the source, not excluded by
//! the plan, or named by the start-up) depends on — the job itself, its pools, policy, cluster,
//! warehouse, pipeline, repo, folder and secret scopes — since activating it on a different
//! configuration runs something other than production ran. Everything else warns. The plan's
//! `[drift]` section moves kinds or fields either way and ignores fields.

pub mod check;
pub mod collect;
pub mod normalize;
pub mod sites;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{DriftRules, ObjectKind};

/// One object: its kind and the name (or path) it is matched by across sites.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its name (jobs, pools, ...), path (repos, folders) or full name (schemas).
    pub name: String,
}

impl ObjectRef {
    /// A reference.
    pub fn new(kind: ObjectKind, name: impl Into<String>) -> Self {
        ObjectRef {
            kind,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A name comes from a workspace: bounded and without control characters before it
        // reaches evidence, mails and reports.
        write!(
            f,
            "{} {:?}",
            self.kind.name(),
            crate::identity::bounded(&self.name, 120)
        )
    }
}

/// A site's objects in normal form: kind → name → configuration.
pub type Objects = BTreeMap<ObjectKind, BTreeMap<String, Value>>;

/// Pure: a nested configuration as dotted field paths → leaf values (lists are leaves: their
/// items carry no key, and order was normalised away).
pub fn flatten(value: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            // An empty section is an absent one.
            Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

/// One field that differs: its path and each side's value (`None`: absent there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDiff {
    /// Dotted path in the normal form (`tasks.extract.notebook_task.notebook_path`).
    pub field: String,
    /// At the source.
    pub source: Option<Value>,
    /// At the target.
    pub target: Option<Value>,
}

/// Pure: the fields of one object that differ, in path order, leaving out `ignored` paths (and
/// everything under them).
pub fn diff(source: &Value, target: &Value, ignored: &[String]) -> Vec<FieldDiff> {
    let s = flatten(source);
    let t = flatten(target);
    let keys: BTreeSet<&String> = s.keys().chain(t.keys()).collect();
    keys.into_iter()
        .filter(|k| !ignored.iter().any(|i| under(k, i)))
        .filter_map(|k| {
            let (a, b) = (s.get(k), t.get(k));
            (a != b).then(|| FieldDiff {
                field: k.clone(),
                source: a.cloned(),
                target: b.cloned(),
            })
        })
        .collect()
}

/// Whether dotted `path` is `prefix` or lies under it.
fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'.'))
}

/// Pure: what a job's normal form points to — the objects it cannot run without at the site
/// that activates it.
pub fn dependencies(job: &Value) -> BTreeSet<ObjectRef> {
    fn walk(key: &str, v: &Value, out: &mut BTreeSet<ObjectRef>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(k, v, out);
                }
            }
            Value::Array(items) => {
                for i in items {
                    walk(key, i, out);
                }
            }
            Value::String(s) => {
                let kind = match key {
                    "instance_pool" | "driver_instance_pool" => Some(ObjectKind::Pool),
                    "policy" => Some(ObjectKind::ClusterPolicy),
                    "existing_cluster" => Some(ObjectKind::Cluster),
                    "warehouse" => Some(ObjectKind::Warehouse),
                    "pipeline" => Some(ObjectKind::Pipeline),
                    _ => None,
                };
                if let Some(kind) = kind {
                    if !s.starts_with("(unknown ") {
                        out.insert(ObjectRef::new(kind, s.clone()));
                    }
                }
                if matches!(key, "notebook_path" | "python_file" | "path" | "file") {
                    if let Some(r) = workspace_home(s) {
                        out.insert(r);
                    }
                }
                for scope in secret_scopes(s) {
                    out.insert(ObjectRef::new(ObjectKind::SecretScope, scope));
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk("", job, &mut out);
    out
}

/// The repo (`/Repos/<folder>/<repo>`) or folder a workspace path lives in; `None` for paths
/// that are not in the workspace tree (cloud storage, relative paths of a Git source).
pub fn workspace_home(path: &str) -> Option<ObjectRef> {
    let p = path.strip_prefix("/Workspace").unwrap_or(path);
    if !p.starts_with('/') || p.contains("://") {
        return None;
    }
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    if parts.first() == Some(&"Repos") {
        return (parts.len() >= 3).then(|| {
            ObjectRef::new(
                ObjectKind::Repo,
                format!("/Repos/{}/{}", parts[1], parts[2]),
            )
        });
    }
    (parts.len() >= 2).then(|| {
        ObjectRef::new(
            ObjectKind::Folder,
            format!("/{}", parts[..parts.len() - 1].join("/")),
        )
    })
}

/// The scopes of `{{secrets/<scope>/<key>}}` references in a value.
pub fn secret_scopes(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{secrets/") {
        rest = &rest[i + "{{secrets/".len()..];
        if let Some((scope, _)) = rest.split_once('/') {
            if !scope.is_empty() && !scope.contains('}') {
                out.push(scope.to_string());
            }
        }
    }
    out
}

/// Why a drift item blocks or only warns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Rule {
    /// A job to be activated is it, or depends on it (the default: blocks).
    Activated {
        /// The first such job.
        job: String,
        /// How many depend on it.
        jobs: usize,
    },
    /// Nothing activated depends on it (the default: warns).
    Unused,
    /// An ACL difference: who may see or manage the object, not how it runs (the default:
    /// warns; `[drift] block = ["job.acl"]` makes it block).
    Acl,
    /// A field only the target has (an extra tag, key or principal): what the source runs
    /// does not need it (the default: warns).
    OnlyAtTarget,
    /// The plan's `[drift] block` selector.
    PlanBlock {
        /// The selector.
        selector: String,
    },
    /// The plan's `[drift] warn` selector.
    PlanWarn {
        /// The selector.
        selector: String,
    },
}

/// One difference between the sites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftItem {
    /// The object.
    pub object: ObjectRef,
    /// The field (`None`: the object is missing at the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<FieldDiff>,
    /// Whether it blocks the run.
    pub blocking: bool,
    /// Why.
    pub rule: Rule,
}

fn shown(v: &Option<Value>) -> String {
    match v {
        None => "absent".to_string(),
        Some(v) => crate::identity::bounded(&v.to_string(), 80),
    }
}

impl DriftItem {
    /// One line for evidence and reports: what, which field, both values, why it matters.
    pub fn line(&self) -> String {
        let what = match &self.field {
            None => format!("{}: missing at the target", self.object),
            Some(f) => format!(
                "{}: {} is {} at the source, {} at the target",
                self.object,
                crate::identity::bounded(&f.field, 160),
                shown(&f.source),
                shown(&f.target)
            ),
        };
        let why = match &self.rule {
            Rule::Activated { job, jobs } if *jobs > 1 => format!(
                "job {:?} and {} more to be activated use it",
                crate::identity::bounded(job, 120),
                jobs - 1
            ),
            Rule::Activated { job, .. } if self.object.kind == ObjectKind::Job => format!(
                "job {:?} is to be activated",
                crate::identity::bounded(job, 120)
            ),
            Rule::Activated { job, .. } => format!(
                "job {:?} to be activated uses it",
                crate::identity::bounded(job, 120)
            ),
            Rule::Unused => "nothing to be activated uses it".to_string(),
            Rule::Acl => "an ACL: warns unless the plan blocks it".to_string(),
            Rule::OnlyAtTarget => "only the target has it".to_string(),
            Rule::PlanBlock { selector } => format!("drift.block {selector:?}"),
            Rule::PlanWarn { selector } => format!("drift.warn {selector:?}"),
        };
        format!("{what} ({why})")
    }

    /// The dotted selector path of this item: `kind` or `kind.field`.
    fn path(&self) -> String {
        match &self.field {
            None => self.object.kind.name().to_string(),
            Some(f) => format!("{}.{}", self.object.kind.name(), f.field),
        }
    }
}

/// The jobs to be activated and what each depends on: object → the jobs that need it.
pub fn needed_by(
    source: &Objects,
    activated: &BTreeSet<String>,
) -> BTreeMap<ObjectRef, Vec<String>> {
    let mut out: BTreeMap<ObjectRef, Vec<String>> = BTreeMap::new();
    let jobs = source.get(&ObjectKind::Job);
    for name in activated {
        out.entry(ObjectRef::new(ObjectKind::Job, name.clone()))
            .or_default()
            .push(name.clone());
        let Some(job) = jobs.and_then(|j| j.get(name)) else {
            continue;
        };
        for dep in dependencies(job) {
            out.entry(dep).or_default().push(name.clone());
        }
    }
    out
}

/// Pure: every difference between the source's and the target's objects, classified. Objects
/// only at the target are not drift (nothing at the source needs them); fields the plan itself
/// sets at a site (`set_by_plan`: a start-up's job concurrency) differ by design.
pub fn compare(
    source: &Objects,
    target: &Objects,
    activated: &BTreeSet<String>,
    rules: &DriftRules,
    skip: &BTreeSet<ObjectKind>,
    set_by_plan: &BTreeMap<ObjectRef, Vec<String>>,
) -> Vec<DriftItem> {
    let needs = needed_by(source, activated);
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for kind in ObjectKind::ALL {
        let ignored = rules.ignore_for(kind);
        if skip.contains(&kind) || ignored.iter().any(String::is_empty) {
            continue;
        }
        let theirs = target.get(&kind).unwrap_or(&empty);
        for (name, config) in source.get(&kind).unwrap_or(&empty) {
            let object = ObjectRef::new(kind, name.clone());
            let fields: Vec<Option<FieldDiff>> = match theirs.get(name) {
                None => vec![None],
                // Most objects are equal: no flattening for them.
                Some(t) if t == config => Vec::new(),
                Some(t) => {
                    let (a, b) = comparable(config, t);
                    let mut ignored = ignored.clone();
                    ignored.extend(set_by_plan.get(&object).into_iter().flatten().cloned());
                    diff(&a, &b, &ignored).into_iter().map(Some).collect()
                }
            };
            for field in fields {
                let mut item = DriftItem {
                    object: object.clone(),
                    field,
                    blocking: false,
                    rule: Rule::Unused,
                };
                let (blocking, rule) = classify(&item, needs.get(&object), rules);
                item.blocking = blocking;
                item.rule = rule;
                out.push(item);
            }
        }
    }
    // Objects a job to be activated needs that the source does not have either (e.g. a
    // secret scope a job names that exists nowhere) are not drift: both sites fail alike.
    out
}

/// Per-object reads kept in a normal form when known (ACL, pipeline spec).
pub const DETAIL_KEYS: [&str; 2] = ["acl", "spec"];

/// Pure: both copies with the per-object reads only one side has left out — an ACL not yet
/// read at one site is unknown there, not empty.
pub fn comparable(source: &Value, target: &Value) -> (Value, Value) {
    let (mut a, mut b) = (source.clone(), target.clone());
    for key in DETAIL_KEYS {
        if a.get(key).is_some() != b.get(key).is_some() {
            for v in [&mut a, &mut b] {
                if let Some(o) = v.as_object_mut() {
                    o.remove(key);
                }
            }
        }
    }
    (a, b)
}

/// Pure: the source's objects with its region-specific values mapped to the target's.
pub fn remap<'a>(
    objects: &'a Objects,
    region: &normalize::RegionMap,
) -> std::borrow::Cow<'a, Objects> {
    if region.exact.is_empty() && region.prefixes.is_empty() {
        return std::borrow::Cow::Borrowed(objects);
    }
    std::borrow::Cow::Owned(
        objects
            .iter()
            .map(|(k, m)| {
                (
                    *k,
                    m.iter()
                        .map(|(n, v)| (n.clone(), normalize::map_strings(v, region)))
                        .collect(),
                )
            })
            .collect(),
    )
}

/// Pure: whether an item blocks. The plan's most specific selector wins; without one, it
/// blocks when a job to be activated is it or uses it — unless it is an ACL difference or a
/// field only the target has, which warn.
pub fn classify(
    item: &DriftItem,
    needed_by: Option<&Vec<String>>,
    rules: &DriftRules,
) -> (bool, Rule) {
    let path = item.path();
    let best = |list: &[String]| {
        list.iter()
            .filter(|s| under(&path, s))
            .max_by_key(|s| s.len())
            .cloned()
    };
    match (best(&rules.block), best(&rules.warn)) {
        (Some(b), Some(w)) if w.len() > b.len() => (false, Rule::PlanWarn { selector: w }),
        (Some(b), _) => (true, Rule::PlanBlock { selector: b }),
        (None, Some(w)) => (false, Rule::PlanWarn { selector: w }),
        (None, None) if item.field.as_ref().is_some_and(|f| f.source.is_none()) => {
            (false, Rule::OnlyAtTarget)
        }
        (None, None)
            if item
                .field
                .as_ref()
                .is_some_and(|f| f.field == "acl" || f.field.starts_with("acl.")) =>
        {
            (false, Rule::Acl)
        }
        (None, None) => match needed_by.and_then(|jobs| jobs.first().map(|j| (j, jobs.len()))) {
            Some((job, jobs)) => (
                true,
                Rule::Activated {
                    job: job.clone(),
                    jobs,
                },
            ),
            None => (false, Rule::Unused),
        },
    }
}

#[cfg(test)]
mod tests;
