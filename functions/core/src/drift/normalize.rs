//! Pure: each object kind's normal form. What makes two sites' copies of one object differ
//! without a real difference is taken out — ids (replaced by the names they point to),
//! timestamps, run state, lifecycle values the start-up sets (a pool's idle instances), the
//! availability zone — and region-specific values are mapped from the source's to the target's
//! by the plan (`[drift] node_types`, `[drift] values`). What stays is configuration, nested as
//! the API nests it, with keyed lists (tasks, job clusters) turned into maps so a difference is
//! named by its key, not its position.

use std::collections::{BTreeMap, HashMap};

use crate::plan::{Direction, DriftRules};
use serde_json::{Map, Value};

/// Id → name of each kind a configuration can point to, at one site.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Pool id → name.
    pub pools: HashMap<String, String>,
    /// Cluster policy id → name.
    pub policies: HashMap<String, String>,
    /// Cluster id → name.
    pub clusters: HashMap<String, String>,
    /// Warehouse id → name.
    pub warehouses: HashMap<String, String>,
    /// Pipeline id → name.
    pub pipelines: HashMap<String, String>,
}

/// Region-specific values of the source and what they are at the target (applied to the
/// source's copy only). Empty for the target's.
#[derive(Debug, Clone, Default)]
pub struct RegionMap {
    /// Exact values (node types, policy values): source → target.
    pub exact: BTreeMap<String, String>,
    /// Prefixes (bucket URLs, instance profile ARNs, paths): source → target.
    pub prefixes: BTreeMap<String, String>,
}

impl RegionMap {
    /// The plan's region values for comparing `direction`'s source with its target (the
    /// plan maps the primary's values to DR's; a failback reads them backwards).
    pub fn for_direction(rules: &DriftRules, direction: Direction) -> RegionMap {
        let flip = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            match direction {
                Direction::Failover => m.clone(),
                Direction::Failback => m.iter().map(|(a, b)| (b.clone(), a.clone())).collect(),
            }
        };
        RegionMap {
            exact: flip(&rules.node_types),
            prefixes: flip(&rules.values),
        }
    }

    fn apply(&self, s: &str) -> String {
        if let Some(t) = self.exact.get(s) {
            return t.clone();
        }
        // The longest matching prefix wins, so a specific mapping beats a general one.
        self.prefixes
            .iter()
            .filter(|(from, _)| !from.is_empty() && s.starts_with(from.as_str()))
            .max_by_key(|(from, _)| from.len())
            .map_or_else(
                || s.to_string(),
                |(from, to)| format!("{to}{}", &s[from.len()..]),
            )
    }
}

/// Keys whose id value is replaced by the name it points to, and the key it is shown under.
const REFERENCES: &[(&str, &str)] = &[
    ("instance_pool_id", "instance_pool"),
    ("driver_instance_pool_id", "driver_instance_pool"),
    ("policy_id", "policy"),
    ("existing_cluster_id", "existing_cluster"),
    ("warehouse_id", "warehouse"),
    ("pipeline_id", "pipeline"),
];

/// Keys that never carry configuration: ids, times, who and when, run state.
const VOLATILE: &[&str] = &[
    "pause_status",
    "zone_id",
    "created_time",
    "creator_user_name",
    "created_at_timestamp",
    "last_updated_timestamp",
    "last_modified",
    "job_id",
    "cluster_id",
    "id",
    "pipeline_id_internal",
    "state",
    "state_message",
    "default_tags",
    // Ids of SQL queries, alerts and dashboards: workspace objects the check does not list, so
    // their ids cannot be matched by name and differ at every site. Not compared.
    "query_id",
    "alert_id",
    "dashboard_id",
];

/// Whether a key names a credential: its value is shown and stored only as a digest (a
/// password pasted into `spark_conf` must not reach the evidence, the ledger or a mail).
fn credential_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "private_key",
        "access_key",
        "apikey",
        "api_key",
    ]
    .iter()
    .any(|c| k.contains(c))
}

/// A credential's stand-in: equal values give equal digests, so drift is still seen.
fn redacted(value: &str) -> Value {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Value::String(format!("(redacted sha256:{hex})"))
}

/// Lists whose items carry their own key: shown as a map by that key.
const KEYED_LISTS: &[(&str, &str)] = &[
    ("tasks", "task_key"),
    ("job_clusters", "job_cluster_key"),
    ("environments", "environment_key"),
    ("parameters", "name"),
    ("clusters", "label"),
];

fn name_of(names: &Names, reference: &str, id: &str) -> String {
    let map = match reference {
        "instance_pool" | "driver_instance_pool" => &names.pools,
        "policy" => &names.policies,
        "existing_cluster" => &names.clusters,
        "warehouse" => &names.warehouses,
        _ => &names.pipelines,
    };
    map.get(id)
        .cloned()
        .unwrap_or_else(|| format!("(unknown {reference})"))
}

/// Maps the region-specific string values of a normal form (and nothing else: its keys may be
/// data — task keys, parameter names — that a second normalisation would misread).
pub fn map_strings(value: &Value, region: &RegionMap) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), map_strings(v, region)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| map_strings(v, region)).collect()),
        Value::String(s) => Value::String(region.apply(s)),
        other => other.clone(),
    }
}

/// Normalises one configuration document (recursively).
pub fn configuration(value: &Value, names: &Names, region: &RegionMap) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if VOLATILE.contains(&k.as_str()) {
                    continue;
                }
                if let Some((_, shown)) = REFERENCES.iter().find(|(key, _)| key == k) {
                    if let Some(id) = v.as_str() {
                        out.insert(
                            (*shown).to_string(),
                            Value::String(name_of(names, shown, id)),
                        );
                        continue;
                    }
                }
                if let (Some((_, item_key)), Value::Array(items)) =
                    (KEYED_LISTS.iter().find(|(key, _)| key == k), v)
                {
                    if items
                        .iter()
                        .all(|i| i.get(item_key).and_then(Value::as_str).is_some())
                    {
                        let keyed: Map<String, Value> = items
                            .iter()
                            .map(|i| {
                                let key = i[item_key].as_str().unwrap_or_default().to_string();
                                (key, configuration(i, names, region))
                            })
                            .collect();
                        out.insert(k.clone(), Value::Object(keyed));
                        continue;
                    }
                }
                // A credential written as a plain value (a `{{secrets/...}}` reference is fine).
                if let Some(s) = v
                    .as_str()
                    .filter(|s| credential_key(k) && !s.starts_with("{{secrets/"))
                {
                    out.insert(k.clone(), redacted(&region.apply(s)));
                    continue;
                }
                let v = configuration(v, names, region);
                // An empty section or list and an absent one mean the same (tools that create a
                // site's twin differ in which they send).
                if v.is_null()
                    || v.as_object().is_some_and(Map::is_empty)
                    || v.as_array().is_some_and(Vec::is_empty)
                {
                    continue;
                }
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            // Order carries no meaning in these lists (libraries, e-mail addresses, depends_on).
            let mut items: Vec<Value> = items
                .iter()
                .map(|i| configuration(i, names, region))
                .collect();
            items.sort_by_cached_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::String(s) => Value::String(region.apply(s)),
        other => other.clone(),
    }
}

/// Keeps only `keys` of an API object, then normalises (for kinds whose answers mix
/// configuration with runtime state: clusters, pools, warehouses).
pub fn allowed(value: &Value, keys: &[&str], names: &Names, region: &RegionMap) -> Value {
    let kept: Map<String, Value> = keys
        .iter()
        .filter_map(|k| value.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    configuration(&Value::Object(kept), names, region)
}

/// Cluster configuration (all-purpose clusters).
pub const CLUSTER_KEYS: &[&str] = &[
    "spark_version",
    "node_type_id",
    "driver_node_type_id",
    "num_workers",
    "autoscale",
    "autotermination_minutes",
    "instance_pool_id",
    "driver_instance_pool_id",
    "policy_id",
    "custom_tags",
    "spark_conf",
    "spark_env_vars",
    "data_security_mode",
    "single_user_name",
    "runtime_engine",
    "aws_attributes",
    "init_scripts",
    "enable_elastic_disk",
];

/// Pool configuration (`min_idle_instances` is left out: the start-up sets it).
pub const POOL_KEYS: &[&str] = &[
    "node_type_id",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "custom_tags",
    "preloaded_spark_versions",
    "enable_elastic_disk",
    "aws_attributes",
];

/// Warehouse configuration.
pub const WAREHOUSE_KEYS: &[&str] = &[
    "cluster_size",
    "min_num_clusters",
    "max_num_clusters",
    "auto_stop_mins",
    "enable_serverless_compute",
    "enable_photon",
    "warehouse_type",
    "spot_instance_policy",
    "channel",
    "tags",
];

/// Cluster policy configuration: the definition (parsed: a JSON document sent as a string)
/// and its limits.
pub fn policy(
    definition: &str,
    extra: &Map<String, Value>,
    names: &Names,
    region: &RegionMap,
) -> Value {
    let mut out = Map::new();
    let mut parsed = serde_json::from_str::<Value>(definition)
        .unwrap_or_else(|_| Value::String(format!("(not JSON) {definition}")));
    // Rules are keyed by a flat attribute path (`"instance_pool_id": {"type": "fixed", "value":
    // "<id>"}`): ids become names, the availability zone is the region's.
    if let Some(rules) = parsed.as_object_mut() {
        rules.retain(|k, _| !k.ends_with("zone_id"));
        for (attribute, rule) in rules.iter_mut() {
            let Some((_, shown)) = REFERENCES
                .iter()
                .find(|(key, _)| attribute.rsplit('.').next() == Some(*key))
            else {
                continue;
            };
            for field in ["value", "defaultValue"] {
                if let Some(id) = rule.get(field).and_then(Value::as_str).map(str::to_string) {
                    rule[field] = Value::String(name_of(names, shown, &id));
                }
            }
            if let Some(list) = rule.get_mut("values").and_then(Value::as_array_mut) {
                for v in list.iter_mut() {
                    if let Some(id) = v.as_str().map(str::to_string) {
                        *v = Value::String(name_of(names, shown, &id));
                    }
                }
            }
        }
    }
    out.insert("definition".into(), parsed);
    for k in [
        "description",
        "max_clusters_per_user",
        "policy_family_id",
        "policy_family_definition_overrides",
    ] {
        if let Some(v) = extra.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    configuration(&Value::Object(out), names, region)
}

/// An ACL as principal → its direct permission levels (inherited ones come from elsewhere and
/// are compared there).
pub fn acl(list: &[crate::databricks::permissions::AccessControl]) -> Value {
    let mut out = BTreeMap::<String, Vec<String>>::new();
    for ac in list {
        // Ownership follows who deployed each site (a CI principal here, Terraform there):
        // not configuration a failover depends on.
        let levels: Vec<String> = ac
            .all_permissions
            .iter()
            .filter(|p| !p.inherited && p.permission_level != "IS_OWNER")
            .map(|p| p.permission_level.clone())
            .collect();
        if !levels.is_empty() {
            out.entry(ac.principal()).or_default().extend(levels);
        }
    }
    for levels in out.values_mut() {
        levels.sort();
        levels.dedup();
    }
    serde_json::to_value(out).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failback_reads_the_region_values_backwards() {
        let rules = DriftRules {
            node_types: [("i3.xlarge".to_string(), "i3en.xlarge".to_string())].into(),
            values: [("s3://p/".to_string(), "s3://d/".to_string())].into(),
            ..DriftRules::default()
        };
        let cases = [
            (
                Direction::Failover,
                "i3.xlarge",
                "i3en.xlarge",
                "s3://p/x",
                "s3://d/x",
            ),
            (
                Direction::Failback,
                "i3en.xlarge",
                "i3.xlarge",
                "s3://d/x",
                "s3://p/x",
            ),
        ];
        for (direction, node, mapped, path, mapped_path) in cases {
            let map = RegionMap::for_direction(&rules, direction);
            assert_eq!(map.apply(node), mapped, "{direction:?}");
            assert_eq!(map.apply(path), mapped_path, "{direction:?}");
            assert_eq!(map.apply("other"), "other", "{direction:?}");
        }
    }
    use serde_json::json;

    #[test]
    fn ids_become_names_and_volatile_keys_go() {
        let names = Names {
            pools: [("p-1".to_string(), "etl-pool".to_string())].into(),
            policies: [("P1".to_string(), "Job Compute".to_string())].into(),
            ..Default::default()
        };
        let region = RegionMap {
            exact: [("i3.xlarge".to_string(), "i3en.xlarge".to_string())].into(),
            prefixes: [("s3://landing/".to_string(), "s3://landing-dr/".to_string())].into(),
        };
        // (case, input, normal form)
        let cases = [
            (
                "pool id to its name",
                json!({"new_cluster": {"instance_pool_id": "p-1"}}),
                json!({"new_cluster": {"instance_pool": "etl-pool"}}),
            ),
            (
                "an id that points nowhere",
                json!({"policy_id": "gone"}),
                json!({"policy": "(unknown policy)"}),
            ),
            (
                "node type mapped, zone dropped",
                json!({"node_type_id": "i3.xlarge", "aws_attributes": {"zone_id": "us-east-1a"}}),
                json!({"node_type_id": "i3en.xlarge"}),
            ),
            (
                "prefix mapped",
                json!({"url": "s3://landing/orders/"}),
                json!({"url": "s3://landing-dr/orders/"}),
            ),
            (
                "pause status is the activation, compared elsewhere",
                json!({"schedule": {"quartz_cron_expression": "0 0 * * * ?", "pause_status": "PAUSED"}}),
                json!({"schedule": {"quartz_cron_expression": "0 0 * * * ?"}}),
            ),
            (
                "tasks keyed by task_key",
                json!({"tasks": [{"task_key": "b", "timeout_seconds": 1}, {"task_key": "a"}]}),
                json!({"tasks": {"a": {"task_key": "a"}, "b": {"task_key": "b", "timeout_seconds": 1}}}),
            ),
            (
                "unkeyed lists are sets",
                json!({"libraries": [{"pypi": {"package": "b"}}, {"pypi": {"package": "a"}}]}),
                json!({"libraries": [{"pypi": {"package": "a"}}, {"pypi": {"package": "b"}}]}),
            ),
            (
                "a credential pasted as a value is a digest, a secret reference is shown",
                json!({"spark_conf": {"fs.s3a.secret.key": "AKIAxyz", "spark.password": "{{secrets/etl/db}}"}}),
                json!({"spark_conf": {"fs.s3a.secret.key": redacted("AKIAxyz"), "spark.password": "{{secrets/etl/db}}"}}),
            ),
            (
                "SQL object ids are not compared",
                json!({"sql_task": {"query": {"query_id": "abc"}, "warehouse_id": "w"}}),
                json!({"sql_task": {"warehouse": "(unknown warehouse)"}}),
            ),
            (
                "an empty section is an absent one",
                json!({"email_notifications": {}, "libraries": [], "timeout_seconds": 0}),
                json!({"timeout_seconds": 0}),
            ),
        ];
        for (case, input, want) in cases {
            assert_eq!(configuration(&input, &names, &region), want, "{case}");
        }
    }

    #[test]
    fn an_acl_is_its_direct_grants_without_the_owner() {
        use crate::databricks::permissions::{AccessControl, Permission};
        let ac = |user: Option<&str>, group: Option<&str>, levels: &[(&str, bool)]| AccessControl {
            user_name: user.map(str::to_string),
            group_name: group.map(str::to_string),
            service_principal_name: None,
            all_permissions: levels
                .iter()
                .map(|(l, inherited)| Permission {
                    permission_level: l.to_string(),
                    inherited: *inherited,
                })
                .collect(),
        };
        // The owner differs by who deployed each site; inherited grants come from elsewhere.
        let primary = acl(&[
            ac(Some("ci@example.com"), None, &[("IS_OWNER", false)]),
            ac(None, Some("analysts"), &[("CAN_VIEW", false)]),
            ac(None, Some("admins"), &[("CAN_MANAGE", true)]),
        ]);
        let dr = acl(&[
            ac(Some("terraform@example.com"), None, &[("IS_OWNER", false)]),
            ac(None, Some("analysts"), &[("CAN_VIEW", false)]),
        ]);
        assert_eq!(primary, dr);
        assert_eq!(primary, json!({"group:analysts": ["CAN_VIEW"]}));
    }

    #[test]
    fn a_policy_definition_names_its_pool_and_drops_the_zone() {
        let names = Names {
            pools: [("p-1".to_string(), "etl-pool".to_string())].into(),
            ..Default::default()
        };
        let def = r#"{"instance_pool_id": {"type": "fixed", "value": "p-1"},
            "driver_instance_pool_id": {"type": "allowlist", "values": ["p-1", "p-2"]},
            "aws_attributes.zone_id": {"type": "fixed", "value": "us-east-1a"}}"#;
        let v = policy(def, &Map::new(), &names, &RegionMap::default());
        assert_eq!(
            v,
            json!({"definition": {
                "instance_pool_id": {"type": "fixed", "value": "etl-pool"},
                "driver_instance_pool_id": {"type": "allowlist", "values": ["(unknown driver_instance_pool)", "etl-pool"]}
            }})
        );
    }

    #[test]
    fn a_longer_prefix_wins() {
        let region = RegionMap {
            prefixes: [
                ("s3://a/".to_string(), "s3://x/".to_string()),
                ("s3://a/b/".to_string(), "s3://y/".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        assert_eq!(region.apply("s3://a/b/c"), "s3://y/c");
        assert_eq!(region.apply("s3://a/c"), "s3://x/c");
        assert_eq!(region.apply("s3://z"), "s3://z");
    }
}
