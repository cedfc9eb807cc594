//! Table tests of the pure comparison: fields named, dependencies found, rules applied.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::*;
use crate::plan::DriftRules;
use crate::plan::ObjectKind;

fn objects(list: &[(ObjectKind, &str, Value)]) -> Objects {
    let mut out = Objects::new();
    for (k, n, v) in list {
        out.entry(*k).or_default().insert(n.to_string(), v.clone());
    }
    out
}

fn job(pool: &str, notebook: &str) -> Value {
    json!({
        "name": "etl",
        "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"},
        "tasks": {"main": {"task_key": "main", "notebook_task": {"notebook_path": notebook}}},
        "job_clusters": {"c": {"job_cluster_key": "c", "new_cluster": {
            "instance_pool": pool, "policy": "Job Compute",
            "spark_env_vars": {"TOKEN": "{{secrets/etl/api-token}}"}}}},
    })
}

#[test]
fn a_diff_names_each_field_with_both_values() {
    // (case, source, target, ignored, fields that differ)
    type Case = (&'static str, Value, Value, Vec<String>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "identical",
            job("p", "/Repos/a/b/n"),
            job("p", "/Repos/a/b/n"),
            vec![],
            vec![],
        ),
        (
            "one nested field",
            job("p", "/Repos/a/b/n"),
            job("q", "/Repos/a/b/n"),
            vec![],
            vec!["job_clusters.c.new_cluster.instance_pool"],
        ),
        (
            "a field only at the source",
            json!({"a": 1, "b": {"c": 2}}),
            json!({"a": 1}),
            vec![],
            vec!["b.c"],
        ),
        (
            "a field only at the target",
            json!({"a": 1}),
            json!({"a": 1, "tags": {"x": "y"}}),
            vec![],
            vec!["tags.x"],
        ),
        (
            "ignored prefix covers what is under it, not a sibling that shares its start",
            json!({"tags": {"x": 1}, "tagsets": 1}),
            json!({"tags": {"x": 2}, "tagsets": 2}),
            vec!["tags".to_string()],
            vec!["tagsets"],
        ),
        (
            "a list is one value",
            json!({"libraries": [{"pypi": "a"}]}),
            json!({"libraries": [{"pypi": "a"}, {"pypi": "b"}]}),
            vec![],
            vec!["libraries"],
        ),
    ];
    for (case, a, b, ignored, want) in cases {
        let got: Vec<String> = diff(&a, &b, &ignored)
            .into_iter()
            .map(|d| d.field)
            .collect();
        assert_eq!(got, want, "{case}");
    }
    let d = &diff(&json!({"x": "i3.xlarge"}), &json!({}), &[])[0];
    assert_eq!(
        (d.source.clone(), d.target.clone()),
        (Some(json!("i3.xlarge")), None)
    );
}

#[test]
fn dependencies_of_a_job_are_found_by_reference() {
    let deps = dependencies(&job("etl-pool", "/Repos/sales/pipelines/etl/main"));
    let want: BTreeSet<ObjectRef> = [
        ObjectRef::new(ObjectKind::Pool, "etl-pool"),
        ObjectRef::new(ObjectKind::ClusterPolicy, "Job Compute"),
        ObjectRef::new(ObjectKind::SecretScope, "etl"),
        ObjectRef::new(ObjectKind::Repo, "/Repos/sales/pipelines"),
    ]
    .into();
    assert_eq!(deps, want);
    // (path, home)
    let homes = [
        (
            "/Repos/a/b/c/d",
            Some(ObjectRef::new(ObjectKind::Repo, "/Repos/a/b")),
        ),
        (
            "/Workspace/Repos/a/b/c",
            Some(ObjectRef::new(ObjectKind::Repo, "/Repos/a/b")),
        ),
        ("/Repos/a", None),
        (
            "/Shared/etl/ingest",
            Some(ObjectRef::new(ObjectKind::Folder, "/Shared/etl")),
        ),
        (
            "/Workspace/Users/x@y/nb",
            Some(ObjectRef::new(ObjectKind::Folder, "/Users/x@y")),
        ),
        ("s3://bucket/script.py", None),
        ("relative/path.py", None),
        ("/top", None),
    ];
    for (path, home) in homes {
        assert_eq!(workspace_home(path), home, "{path}");
    }
    assert_eq!(
        secret_scopes("a {{secrets/s1/k}} b {{secrets/s2/k2}} {{secrets/}}"),
        vec!["s1", "s2"]
    );
    // A reference to an id that exists nowhere is no dependency to compare.
    assert!(dependencies(&json!({"instance_pool": "(unknown instance_pool)"})).is_empty());
}

fn rules(block: &[&str], warn: &[&str], ignore: &[&str]) -> DriftRules {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    DriftRules {
        block: v(block),
        warn: v(warn),
        ignore: v(ignore),
        detail_seconds: 5,
        ..Default::default()
    }
}

#[test]
fn what_blocks_follows_the_jobs_to_be_activated_and_the_plan() {
    let item = |kind: ObjectKind, field: Option<&str>| DriftItem {
        object: ObjectRef::new(kind, "x"),
        field: field.map(|f| FieldDiff {
            field: f.to_string(),
            source: Some(json!(1)),
            target: Some(json!(2)),
        }),
        blocking: false,
        rule: Rule::Unused,
    };
    let only_at_target = DriftItem {
        field: Some(FieldDiff {
            field: "keys.extra".into(),
            source: None,
            target: Some(json!(true)),
        }),
        ..item(ObjectKind::SecretScope, None)
    };
    let used = vec!["etl".to_string(), "score".to_string()];
    // (case, item, needed by, rules, blocks, rule)
    type Case<'a> = (
        &'a str,
        DriftItem,
        Option<&'a Vec<String>>,
        DriftRules,
        bool,
        Rule,
    );
    let cases: Vec<Case> = vec![
        (
            "used by a job to be activated",
            item(ObjectKind::Pool, Some("node_type_id")),
            Some(&used),
            rules(&[], &[], &[]),
            true,
            Rule::Activated {
                job: "etl".into(),
                jobs: 2,
            },
        ),
        (
            "used by nothing activated",
            item(ObjectKind::Pool, Some("node_type_id")),
            None,
            rules(&[], &[], &[]),
            false,
            Rule::Unused,
        ),
        (
            "the plan blocks the kind",
            item(ObjectKind::Warehouse, None),
            None,
            rules(&["warehouse"], &[], &[]),
            true,
            Rule::PlanBlock {
                selector: "warehouse".into(),
            },
        ),
        (
            "the plan lets a field only warn",
            item(ObjectKind::Job, Some("tags.owner")),
            Some(&used),
            rules(&[], &["job.tags"], &[]),
            false,
            Rule::PlanWarn {
                selector: "job.tags".into(),
            },
        ),
        (
            "the more specific selector wins (block inside warn)",
            item(ObjectKind::Job, Some("tags.cost_center")),
            None,
            rules(&["job.tags.cost_center"], &["job"], &[]),
            true,
            Rule::PlanBlock {
                selector: "job.tags.cost_center".into(),
            },
        ),
        (
            "the more specific selector wins (warn inside block)",
            item(ObjectKind::Job, Some("tags.owner")),
            None,
            rules(&["job"], &["job.tags"], &[]),
            false,
            Rule::PlanWarn {
                selector: "job.tags".into(),
            },
        ),
        (
            "a field only the target has warns",
            only_at_target,
            Some(&used),
            rules(&[], &[], &[]),
            false,
            Rule::OnlyAtTarget,
        ),
        (
            "an ACL difference warns even where a job to be activated uses the object",
            item(ObjectKind::Job, Some("acl.group:auditors")),
            Some(&used),
            rules(&[], &[], &[]),
            false,
            Rule::Acl,
        ),
        (
            "the plan can make an ACL block",
            item(ObjectKind::Job, Some("acl.group:auditors")),
            Some(&used),
            rules(&["job.acl"], &[], &[]),
            true,
            Rule::PlanBlock {
                selector: "job.acl".into(),
            },
        ),
        (
            "a selector is a path, not a string prefix",
            item(ObjectKind::Job, Some("tagsets")),
            None,
            rules(&["job.tags"], &[], &[]),
            false,
            Rule::Unused,
        ),
    ];
    for (case, item, needed, r, blocks, rule) in cases {
        assert_eq!(classify(&item, needed, &r), (blocks, rule), "{case}");
    }
}

#[test]
fn the_comparison_classifies_every_difference() {
    let source = objects(&[
        (
            ObjectKind::Job,
            "etl",
            job("etl-pool", "/Repos/sales/pipelines/etl/main"),
        ),
        (
            ObjectKind::Job,
            "adhoc",
            json!({"name": "adhoc", "max_concurrent_runs": 1}),
        ),
        (
            ObjectKind::Pool,
            "etl-pool",
            json!({"node_type_id": "i3.xlarge", "acl": {"group:a": ["CAN_ATTACH_TO"]}}),
        ),
        (
            ObjectKind::Pool,
            "spare",
            json!({"node_type_id": "i3.xlarge"}),
        ),
        (
            ObjectKind::SecretScope,
            "etl",
            json!({"keys": ["api-token", "db"]}),
        ),
        (
            ObjectKind::Repo,
            "/Repos/sales/pipelines",
            json!({"branch": "main", "head_commit_id": "abc"}),
        ),
        (
            ObjectKind::Pipeline,
            "p",
            json!({"spec": {"target": "sales"}}),
        ),
    ]);
    let target = objects(&[
        (
            ObjectKind::Job,
            "etl",
            job("etl-pool", "/Repos/sales/pipelines/etl/main"),
        ),
        (
            ObjectKind::Job,
            "adhoc",
            json!({"name": "adhoc", "max_concurrent_runs": 4}),
        ),
        // The ACL not read yet at the target: unknown, so not compared.
        (
            ObjectKind::Pool,
            "etl-pool",
            json!({"node_type_id": "i3.xlarge"}),
        ),
        (
            ObjectKind::Pool,
            "spare",
            json!({"node_type_id": "m5.xlarge"}),
        ),
        (ObjectKind::SecretScope, "etl", json!({"keys": ["db"]})),
        (
            ObjectKind::Repo,
            "/Repos/sales/pipelines",
            json!({"branch": "main", "head_commit_id": "old"}),
        ),
        (ObjectKind::Pipeline, "p", json!({})),
        (ObjectKind::Pool, "only-at-dr", json!({})),
    ]);
    let activated: BTreeSet<String> = ["etl".to_string()].into();
    let lines = |items: Vec<DriftItem>| -> Vec<(String, bool)> {
        items
            .iter()
            .map(|i| {
                (
                    format!(
                        "{} {}",
                        i.object,
                        i.field.as_ref().map_or("(missing)", |f| f.field.as_str())
                    ),
                    i.blocking,
                )
            })
            .collect()
    };
    let got = lines(compare(
        &source,
        &target,
        &activated,
        &rules(&[], &[], &[]),
        &BTreeSet::new(),
        &BTreeMap::new(),
    ));
    let want: Vec<(String, bool)> = vec![
        ("job \"adhoc\" max_concurrent_runs".into(), false),
        ("pool \"spare\" node_type_id".into(), false),
        ("secret_scope \"etl\" keys".into(), true),
        (
            "repo \"/Repos/sales/pipelines\" head_commit_id".into(),
            true,
        ),
    ];
    assert_eq!(got, want);
    // Ignoring a kind, or not having read it at one site, leaves it out.
    let got = lines(compare(
        &source,
        &target,
        &activated,
        &rules(&[], &[], &["repo", "job.max_concurrent_runs"]),
        &[ObjectKind::SecretScope].into(),
        &BTreeMap::new(),
    ));
    assert_eq!(
        got,
        vec![("pool \"spare\" node_type_id".to_string(), false)]
    );
    // A field the plan sets at one site (the start-up's concurrency) is no drift of that job.
    let set: BTreeMap<ObjectRef, Vec<String>> = [(
        ObjectRef::new(ObjectKind::Job, "adhoc"),
        vec!["max_concurrent_runs".to_string()],
    )]
    .into();
    let got = lines(compare(
        &source,
        &target,
        &activated,
        &rules(&[], &[], &["repo", "secret_scope"]),
        &BTreeSet::new(),
        &set,
    ));
    assert_eq!(
        got,
        vec![("pool \"spare\" node_type_id".to_string(), false)]
    );
    // A job to be activated missing at the target blocks, and says which.
    let mut gone = target.clone();
    gone.get_mut(&ObjectKind::Job).unwrap().remove("etl");
    let items = compare(
        &source,
        &gone,
        &activated,
        &rules(&[], &[], &[]),
        &BTreeSet::new(),
        &BTreeMap::new(),
    );
    let missing: Vec<String> = items
        .iter()
        .filter(|i| i.field.is_none())
        .map(DriftItem::line)
        .collect();
    assert_eq!(
        missing,
        vec!["job \"etl\": missing at the target (job \"etl\" is to be activated)"]
    );
}

#[test]
fn region_values_are_mapped_on_the_source_side_only() {
    let source = objects(&[(ObjectKind::Pool, "p", json!({"node_type_id": "i3.xlarge"}))]);
    let target = objects(&[(
        ObjectKind::Pool,
        "p",
        json!({"node_type_id": "i3en.xlarge"}),
    )]);
    let region = normalize::RegionMap {
        exact: BTreeMap::from([("i3.xlarge".to_string(), "i3en.xlarge".to_string())]),
        ..Default::default()
    };
    let r = rules(&[], &[], &[]);
    let none = BTreeSet::new();
    assert!(compare(
        &remap(&source, &region),
        &target,
        &none,
        &r,
        &none_kinds(),
        &BTreeMap::new()
    )
    .is_empty());
    assert_eq!(
        compare(&source, &target, &none, &r, &none_kinds(), &BTreeMap::new()).len(),
        1
    );
    let _ = none;
}

fn none_kinds() -> BTreeSet<ObjectKind> {
    BTreeSet::new()
}

#[test]
fn a_hostile_name_or_value_reaches_a_line_bounded_and_without_control_characters() {
    let item = DriftItem {
        object: ObjectRef::new(
            ObjectKind::Job,
            format!("evil\u{1b}[31m{}", "x".repeat(5000)),
        ),
        field: Some(FieldDiff {
            field: "tags.note".into(),
            source: Some(json!("line\nbreak ".repeat(100))),
            target: None,
        }),
        blocking: false,
        rule: Rule::Unused,
    };
    let line = item.line();
    assert!(line.chars().count() < 400, "{}", line.len());
    assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
}
