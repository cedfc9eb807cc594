//! Announcements: the human side of the lifecycle events (seed failover step 5, "inform
//! users"). Each milestone a run publishes on EventBridge (see [`crate::events`]) becomes one
//! short message — what happened, what it means for users, where the report is — rendered for
//! each channel (SNS broadcast, Slack, Microsoft Teams, a generic JSON webhook; see
//! [`channels`]).
//!
//! Everything here is pure and reads only the event's `detail` and the deployment's plan: it
//! never sees a secret or an approval link, so no message can carry one. Anyone allowed to
//! `PutEvents` on the account's bus can forge a `source: lifeboat` event, so nothing a person
//! would act on comes from the detail: the workspace URL is the plan's, the report link is
//! the caller's (built from the ledger), and an event about another plan is refused.

pub mod channels;

use serde_json::Value;

use crate::{events::Milestone, plan::Plan};

/// How a message should look: chat channels colour it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Progress.
    Info,
    /// A good end.
    Good,
    /// Someone should look.
    Warning,
    /// Failed or stopped.
    Bad,
}

/// One milestone, told to people.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Announcement {
    /// The event's `detail-type`.
    pub detail_type: &'static str,
    /// The run.
    pub run_id: String,
    /// The plan.
    pub plan: String,
    /// One line (the SNS subject, the chat header).
    pub title: String,
    /// Two or three sentences: what happened, what it means, what to do.
    pub text: String,
    /// Label → value pairs shown beside the text.
    pub facts: Vec<(String, String)>,
    /// Colour.
    pub tone: Tone,
    /// The HTML report (the S3 console), once the run wrote it.
    pub report_url: Option<String>,
}

/// What the ledger keeps of one announcement (`runs/{run}/announcements/{at}-{slug}.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnnouncementRecord {
    /// The event's `detail-type` (or the direct milestone).
    pub milestone: String,
    /// The title sent.
    pub title: String,
    /// When the milestone happened.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Each channel's delivery.
    pub deliveries: Vec<channels::Delivery>,
}

/// Why an event is not announced.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnnounceError {
    /// Not a Lifeboat event.
    #[error("`detail-type` {0:?} is not a Lifeboat milestone")]
    UnknownDetailType(String),
    /// A field every Lifeboat detail carries is missing or malformed.
    #[error("event detail field `{field}`: {problem}")]
    Detail {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Longest text taken from a detail field (a workspace or check name is someone else's
/// input): enough for any real name, short enough to keep messages readable.
const MAX_FIELD_CHARS: usize = 200;

/// Pure: the announcement of one lifecycle event of `plan`'s runs; `report_url` is the run's
/// report, when the caller knows it exists.
pub fn announcement(
    detail_type: &str,
    detail: &Value,
    plan: &Plan,
    report_url: Option<String>,
) -> Result<Announcement, AnnounceError> {
    let milestone = Milestone::from_detail_type(detail_type)
        .ok_or_else(|| AnnounceError::UnknownDetailType(clip(detail_type)))?;
    let d = Fields(detail);
    let run_id = d.required("run_id")?;
    crate::run::RunId::parse(&run_id).map_err(|problem| AnnounceError::Detail {
        field: "run_id",
        problem,
    })?;
    if d.required("plan")? != plan.name {
        return Err(AnnounceError::Detail {
            field: "plan",
            problem: "not this deployment's plan".into(),
        });
    }
    let kind = d.required("kind")?;
    let failback = d.str("direction").as_deref() == Some("failback");
    let direction = if failback {
        crate::plan::Direction::Failback
    } else {
        crate::plan::Direction::Failover
    };
    let url = plan.site(direction.roles().1).workspace_url.clone();
    let plan_settings = plan
        .dns
        .as_ref()
        .map(|d| d.all_client_settings())
        .unwrap_or_default();
    let plan = plan.name.clone();
    let (from, to) = if failback {
        ("DR", "primary")
    } else {
        ("primary", "DR")
    };
    let moves = kind != "readiness";
    let what = match kind.as_str() {
        "drill" => "DR drill".to_string(),
        "readiness" => "readiness drill".to_string(),
        other => other.to_string(),
    };
    let mut facts: Vec<(String, String)> = Vec::new();
    let mut fact = |label: &str, value: String| {
        if !value.is_empty() {
            facts.push((label.to_string(), value));
        }
    };
    let (title, text, tone) = match milestone {
        Milestone::RunStarted => {
            let downtime = d
                .u64("rto_minutes")
                .map(|m| {
                    format!(" Expect interruptions for up to {m} minutes once it is approved.")
                })
                .unwrap_or_default();
            let text = if moves {
                format!(
                    "A {what} of {plan} from the {from} site to the {to} site has started and waits \
                     for approval. Nothing has changed yet.{downtime} Do not start new jobs or \
                     clusters until it finishes."
                )
            } else {
                format!(
                    "A {what} of {plan} has started: the {to} site's readiness is checked; \
                     nothing moves and users are not affected."
                )
            };
            (
                format!("{} of {plan} started", cap(&what)),
                text,
                Tone::Info,
            )
        }
        Milestone::ApprovalRequested => {
            fact("Approval expires", d.str("expires_at").unwrap_or_default());
            (
                format!("{} of {plan} waits for approval", cap(&what)),
                "A human decision is requested; nothing changes before it is given.".to_string(),
                Tone::Info,
            )
        }
        Milestone::ApprovalDecided => {
            let rejected = d.str("decision").as_deref() == Some("reject");
            fact("Decided by", d.list("approvers"));
            fact("Channel", d.str("channel").unwrap_or_default());
            if rejected {
                (
                    format!("{} of {plan} rejected", cap(&what)),
                    format!("The {what} was rejected. Nothing was changed at either site."),
                    Tone::Warning,
                )
            } else {
                (
                    format!("{} of {plan} approved", cap(&what)),
                    format!("The {what} was approved and proceeds now."),
                    Tone::Info,
                )
            }
        }
        Milestone::RpoMeasured => {
            let ok = d.bool("acceptable") == Some(true);
            let worst = d
                .f64("worst_rpo_seconds")
                .map(human_seconds)
                .unwrap_or_else(|| "unknown".into());
            fact("Worst replication lag", worst.clone());
            fact(
                "Measured",
                format!(
                    "{} bucket(s), {} table(s)",
                    d.u64("buckets").unwrap_or(0),
                    d.u64("tables").unwrap_or(0)
                ),
            );
            if ok {
                (
                    format!("{plan}: data at the {to} site is {worst} behind"),
                    format!(
                        "Replication to the {to} site is within its objective: at most {worst} of \
                         the newest data may be missing there."
                    ),
                    Tone::Info,
                )
            } else {
                (
                    format!("{plan}: replication lag over objective"),
                    format!(
                        "The {to} site is {worst} behind, over the plan's objective. The plan decides \
                         whether the run stops or asks a human."
                    ),
                    Tone::Warning,
                )
            }
        }
        Milestone::DataFenceSet => {
            fact("Buckets", d.list("buckets"));
            (
                format!("{plan}: replication into the {to} site paused"),
                format!(
                    "Replication into the {to} site's buckets is denied, so the {from} site cannot \
                     overwrite data written after the switch."
                ),
                Tone::Info,
            )
        }
        Milestone::FenceConfirmed => {
            fact("Site", d.str("site").unwrap_or_default());
            fact("Resources stopped", d.count("resources"));
            fact(
                "Attempts",
                d.u64("attempts").map(|a| a.to_string()).unwrap_or_default(),
            );
            (
                format!("{plan}: the {from} site is shut down"),
                format!(
                    "Every job, cluster and warehouse of the {from} site is confirmed stopped; \
                     nothing runs there any more."
                ),
                Tone::Info,
            )
        }
        Milestone::DrStarted => {
            fact(
                "Start-up took",
                d.f64("elapsed_seconds")
                    .map(human_seconds)
                    .unwrap_or_default(),
            );
            (
                format!("{plan}: the {to} site is up"),
                format!("Pools, clusters and SQL warehouses of the {to} site are running."),
                Tone::Info,
            )
        }
        Milestone::ActivationComplete => {
            fact("Jobs unpaused", d.count("unpaused"));
            fact("Already live", d.count("already_live"));
            let missing = d.count("missing");
            let some_missing = !missing.is_empty() && missing != "0";
            fact("Missing at the target", missing);
            (
                format!("{plan}: schedules are live at the {to} site"),
                if some_missing {
                    format!(
                        "The handed-over schedules run at the {to} site now; some jobs are missing \
                         there (see the report)."
                    )
                } else {
                    format!("The handed-over job schedules run at the {to} site now.")
                },
                if some_missing {
                    Tone::Warning
                } else {
                    Tone::Info
                },
            )
        }
        Milestone::DnsSwitched => {
            fact("Name", d.str("record_name").unwrap_or_default());
            fact("Now", d.str("current").unwrap_or_default());
            fact("Was", d.str("previous").unwrap_or_default());
            fact("Workspace URL", url.clone());
            // Only warehouses the plan names, only well-formed paths; the JDBC URL is built
            // from the plan's URL, so an event cannot point anyone elsewhere.
            for (name, path) in switched_warehouses(detail, &plan_settings) {
                fact(&format!("HTTP path ({name})"), path.clone());
                fact(
                    &format!("JDBC URL ({name})"),
                    crate::clients::setting_value(
                        crate::plan::ClientSettingKind::JdbcUrl,
                        &url,
                        Some(&crate::clients::WarehouseEndpoint { http_path: path }),
                    ),
                );
            }
            (
                format!("{plan}: clients switched to the {to} site"),
                format!(
                    "The workspace name now points at the {to} site. Use {url}; clients that \
                     cached the old address may need a restart."
                ),
                Tone::Info,
            )
        }
        Milestone::ValidationFinished => {
            let passed = d.bool("passed") == Some(true);
            fact(
                "Checks",
                d.u64("checks").map(|n| n.to_string()).unwrap_or_default(),
            );
            fact("Failed", d.list("failed"));
            if passed {
                (
                    format!("{plan}: the {to} site passed validation"),
                    format!("Every validation query answered as expected at the {to} site."),
                    Tone::Good,
                )
            } else {
                (
                    format!("{plan}: validation FAILED at the {to} site"),
                    format!(
                        "Some validation queries failed at the {to} site (listed here); an operator \
                         is looking before users rely on it."
                    ),
                    Tone::Bad,
                )
            }
        }
        Milestone::RunFinished => {
            let outcome = d.str("outcome").unwrap_or_default();
            fact("Outcome", outcome.clone());
            if !moves {
                (
                    format!("Readiness drill of {plan} passed"),
                    "The DR site can take over. Nothing moved; the workspace URL is unchanged."
                        .to_string(),
                    Tone::Good,
                )
            } else {
                fact("Workspace URL", url.clone());
                let warn = outcome == "succeeded_with_warnings";
                (
                    format!("{} of {plan} finished", cap(&what)),
                    format!(
                        "Production now runs at the {to} site: {url}. The {from} site is shut down.{}",
                        if warn {
                            " Some items need an operator (see the report)."
                        } else {
                            ""
                        }
                    ),
                    if warn { Tone::Warning } else { Tone::Good },
                )
            }
        }
        Milestone::RunFailed => {
            let outcome = d.str("outcome").unwrap_or_default();
            fact("Outcome", outcome.clone());
            let (text, tone) = match outcome.as_str() {
                "rejected" | "approval_timed_out" | "refused" => (
                    format!(
                        "The {what} did not start its changes ({}). Nothing was changed; \
                         production stays at the {from} site.",
                        outcome.replace('_', " ")
                    ),
                    Tone::Warning,
                ),
                "stopped_rpo_breach" => (
                    format!(
                        "Stopped before any change: the {to} site's data is further behind than \
                         the plan allows. Production stays at the {from} site."
                    ),
                    Tone::Bad,
                ),
                "aborted" => (
                    format!(
                        "An operator aborted the {what}: the {to} site is shut down again and \
                         clients point back at the {from} site."
                    ),
                    Tone::Bad,
                ),
                _ => (
                    "A step failed and the run is paused for an operator: sites may be in \
                     between. Do not start anything at either site until the on-call engineer \
                     says so; the report lists each site's state."
                        .to_string(),
                    Tone::Bad,
                ),
            };
            (
                format!("{} of {plan} did not complete", cap(&what)),
                text,
                tone,
            )
        }
        Milestone::FenceWatchResult => (
            format!("{plan}: fence watch ended"),
            format!(
                "The watch over the {from} site after the run has ended; see the report for what \
                 it stopped."
            ),
            Tone::Info,
        ),
        Milestone::TriggerAlreadyHandled => {
            let by = d.str("handled_by").map(|h| clip(&h)).unwrap_or_default();
            fact("Handled by", by.clone());
            (
                format!("{plan}: another alert, already handled"),
                format!(
                    "Another alert about {plan} arrived while run {by} handles it. Nothing else \
                     was started."
                ),
                Tone::Info,
            )
        }
    };
    facts.push(("Run".to_string(), run_id.clone()));
    Ok(Announcement {
        detail_type: milestone.detail_type(),
        run_id,
        plan,
        title: clip(&title),
        text,
        facts,
        tone,
        report_url,
    })
}

/// `(warehouse, http_path)` of a switch's detail: only warehouses a client setting of the plan
/// names, only paths of the documented form, at most five.
fn switched_warehouses(
    detail: &Value,
    settings: &[crate::plan::ClientSetting],
) -> Vec<(String, String)> {
    detail
        .get("warehouses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|w| {
            let name = w.get("warehouse")?.as_str()?;
            let path = w.get("http_path")?.as_str()?;
            let named = settings
                .iter()
                .any(|s| s.warehouse.as_deref() == Some(name));
            (named && crate::clients::warehouse_id_of_http_path(path).is_some())
                .then(|| (clip(name), path.to_string()))
        })
        .take(5)
        .collect()
}

/// Reads a detail's fields, clipping text (names come from workspaces and plans).
struct Fields<'a>(&'a Value);

impl Fields<'_> {
    fn str(&self, k: &str) -> Option<String> {
        self.0.get(k).and_then(Value::as_str).map(clip)
    }
    fn required(&self, k: &'static str) -> Result<String, AnnounceError> {
        self.str(k)
            .filter(|s| !s.is_empty())
            .ok_or(AnnounceError::Detail {
                field: k,
                problem: "missing or not a string".into(),
            })
    }
    fn bool(&self, k: &str) -> Option<bool> {
        self.0.get(k).and_then(Value::as_bool)
    }
    fn u64(&self, k: &str) -> Option<u64> {
        self.0.get(k).and_then(Value::as_u64)
    }
    fn f64(&self, k: &str) -> Option<f64> {
        self.0
            .get(k)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite())
    }
    /// A list as "a, b, c" (at most ten items shown), a number as itself.
    fn list(&self, k: &str) -> String {
        match self.0.get(k) {
            Some(Value::Array(items)) => {
                let mut shown: Vec<String> = items
                    .iter()
                    .take(10)
                    .map(|v| match v {
                        Value::String(s) => clip(s),
                        other => clip(&other.to_string()),
                    })
                    .collect();
                if items.len() > 10 {
                    shown.push(format!("and {} more", items.len() - 10));
                }
                shown.join(", ")
            }
            Some(Value::String(s)) => clip(s),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }
    /// A count: a number as itself, a list as its length.
    fn count(&self, k: &str) -> String {
        match self.0.get(k) {
            Some(Value::Array(items)) => items.len().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }
}

/// Clips to [`MAX_FIELD_CHARS`] characters and drops control characters (a name with a
/// newline cannot forge a line of the message).
fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_CHARS)
        .collect();
    if s.chars().filter(|c| !c.is_control()).count() > MAX_FIELD_CHARS {
        out.push('…');
    }
    out
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// "45 s", "3 min 20 s", "2 h 5 min".
pub fn human_seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 if s % 60 == 0 => format!("{} min", s / 60),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tell(detail_type: &str, detail: &Value) -> Result<Announcement, AnnounceError> {
        let plan = Plan::from_toml(include_str!("../../../../lifeboat.toml"), "lifeboat.toml")
            .expect("the example plan");
        announcement(detail_type, detail, &plan, None)
    }

    fn base(extra: Value) -> Value {
        let mut d = json!({
            "run_id": "failover-20261130T1200Z-abcd1234", "plan": "sales-platform",
            "kind": "failover", "direction": "failover", "at": "2026-11-30T12:00:00Z",
            "target_workspace_url": "https://dbc-dr.cloud.databricks.com", "rto_minutes": 30
        });
        if let (Some(d), Value::Object(e)) = (d.as_object_mut(), extra) {
            d.extend(e);
        }
        d
    }

    #[test]
    fn the_switch_tells_the_new_http_path_and_jdbc_url_of_planned_warehouses_only() {
        let d = base(json!({"record_name": "w.example.com", "current": "dr",
        "warehouses": [
            {"warehouse": "Shared BI", "http_path": "/sql/1.0/warehouses/dr42"},
            {"warehouse": "Not In The Plan", "http_path": "/sql/1.0/warehouses/x1"},
            {"warehouse": "Shared BI", "http_path": "https://evil.example/x"},
            {"warehouse": 7, "http_path": "/sql/1.0/warehouses/x2"}
        ]}));
        let a = tell("Lifeboat DNS Switched", &d).unwrap();
        let facts: Vec<(&str, &str)> = a
            .facts
            .iter()
            .filter(|(k, _)| k.starts_with("HTTP") || k.starts_with("JDBC"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            facts,
            [
                ("HTTP path (Shared BI)", "/sql/1.0/warehouses/dr42"),
                (
                    "JDBC URL (Shared BI)",
                    "jdbc:databricks://dbc-dr.cloud.databricks.com:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/dr42"
                ),
            ]
        );
    }

    #[test]
    fn each_milestone_is_told_with_its_meaning() {
        // (detail-type, extra detail, words the text must hold, tone)
        let rows: Vec<(&str, Value, &[&str], Tone)> = vec![
            (
                "Lifeboat Run Started",
                json!({}),
                &["waits for approval", "30 minutes"],
                Tone::Info,
            ),
            (
                "Lifeboat Approval Requested",
                json!({"expires_at": "t"}),
                &["nothing changes"],
                Tone::Info,
            ),
            (
                "Lifeboat Approval Decided",
                json!({"decision": "approve", "approvers": ["a@x"]}),
                &["approved"],
                Tone::Info,
            ),
            (
                "Lifeboat Approval Decided",
                json!({"decision": "reject"}),
                &["rejected", "Nothing was changed"],
                Tone::Warning,
            ),
            (
                "Lifeboat RPO Measured",
                json!({"acceptable": true, "worst_rpo_seconds": 65.0}),
                &["1 min 5 s"],
                Tone::Info,
            ),
            (
                "Lifeboat RPO Measured",
                json!({"acceptable": false, "worst_rpo_seconds": 7200.0}),
                &["2 h 0 min", "over the plan"],
                Tone::Warning,
            ),
            (
                "Lifeboat Data Fence Set",
                json!({"buckets": ["b"]}),
                &["denied"],
                Tone::Info,
            ),
            (
                "Lifeboat Fence Confirmed",
                json!({"site": "primary", "resources": 3}),
                &["confirmed stopped"],
                Tone::Info,
            ),
            (
                "Lifeboat DR Started",
                json!({"elapsed_seconds": 12.0}),
                &["running"],
                Tone::Info,
            ),
            (
                "Lifeboat Activation Complete",
                json!({"unpaused": ["a"], "missing": []}),
                &["run at the DR site"],
                Tone::Info,
            ),
            (
                "Lifeboat Activation Complete",
                json!({"unpaused": ["a"], "missing": ["b"]}),
                &["missing"],
                Tone::Warning,
            ),
            (
                "Lifeboat DNS Switched",
                json!({"record_name": "w.example.com", "current": "dr"}),
                &["https://dbc-dr.cloud.databricks.com"],
                Tone::Info,
            ),
            (
                "Lifeboat Validation Finished",
                json!({"passed": true, "checks": 3}),
                &["as expected"],
                Tone::Good,
            ),
            (
                "Lifeboat Validation Finished",
                json!({"passed": false, "failed": ["rows"]}),
                &["failed"],
                Tone::Bad,
            ),
            (
                "Lifeboat Run Finished",
                json!({"outcome": "succeeded"}),
                &["Production now runs at the DR site: https://dbc-dr"],
                Tone::Good,
            ),
            (
                "Lifeboat Run Finished",
                json!({"outcome": "succeeded_with_warnings"}),
                &["need an operator"],
                Tone::Warning,
            ),
            (
                "Lifeboat Run Failed",
                json!({"outcome": "rejected"}),
                &["Nothing was changed"],
                Tone::Warning,
            ),
            (
                "Lifeboat Run Failed",
                json!({"outcome": "stopped_rpo_breach"}),
                &["Stopped before any change"],
                Tone::Bad,
            ),
            (
                "Lifeboat Run Failed",
                json!({"outcome": "aborted"}),
                &["point back at the primary"],
                Tone::Bad,
            ),
            (
                "Lifeboat Run Failed",
                json!({"outcome": "failed"}),
                &["paused for an operator"],
                Tone::Bad,
            ),
            (
                "Lifeboat Fence Watch Result",
                json!({}),
                &["watch"],
                Tone::Info,
            ),
            (
                "Lifeboat Trigger Already Handled",
                json!({"handled_by": "health-0123abcd"}),
                &["health-0123abcd", "Nothing else"],
                Tone::Info,
            ),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (dt, extra, words, tone) in rows {
            let a = tell(dt, &base(extra)).unwrap();
            seen.insert(a.detail_type);
            for w in words {
                assert!(
                    a.text.contains(w)
                        || a.title.contains(w)
                        || a.facts.iter().any(|f| f.1.contains(w)),
                    "{dt}: {w:?} not in {a:?}"
                );
            }
            assert_eq!(a.tone, tone, "{dt}");
            assert!(a
                .facts
                .contains(&("Run".into(), "failover-20261130T1200Z-abcd1234".into())));
        }
        assert_eq!(
            seen.len(),
            Milestone::ALL.len(),
            "every milestone has a row"
        );
    }

    #[test]
    fn a_failback_and_a_readiness_drill_name_the_right_sites() {
        let mut d = base(json!({"outcome": "succeeded"}));
        d["direction"] = json!("failback");
        d["kind"] = json!("failback");
        let a = tell("Lifeboat Run Finished", &d).unwrap();
        assert!(a.text.contains("runs at the primary site"), "{a:?}");
        let mut d = base(json!({"outcome": "readiness_verified"}));
        d["kind"] = json!("readiness");
        let a = tell("Lifeboat Run Finished", &d).unwrap();
        assert!(a.text.contains("Nothing moved"), "{a:?}");
        assert!(!a.text.contains("https://dbc-dr"), "{a:?}");
    }

    #[test]
    fn bad_events_are_refused_naming_the_field() {
        assert_eq!(
            tell("Lifeboat Lunch", &base(json!({}))),
            Err(AnnounceError::UnknownDetailType("Lifeboat Lunch".into()))
        );
        let rows: Vec<(Value, &str)> = vec![
            (json!({"run_id": "../../etc"}), "run_id"),
            (json!({"run_id": 7}), "run_id"),
            (json!({"plan": ""}), "plan"),
            (json!({"plan": "someone-elses-plan"}), "plan"),
            (json!({"kind": null}), "kind"),
        ];
        for (extra, field) in rows {
            let err = tell("Lifeboat Run Started", &base(extra.clone())).unwrap_err();
            assert!(
                matches!(err, AnnounceError::Detail { field: f, .. } if f == field),
                "{extra}: {err}"
            );
        }
    }

    #[test]
    fn hostile_names_are_clipped_and_flattened() {
        let long = "x".repeat(5000);
        let a = tell(
            "Lifeboat Validation Finished",
            &base(json!({"passed": false, "failed": [format!("evil\n*Approve here*: http://attacker {long}")]})),
        )
        .unwrap();
        let failed = &a.facts.iter().find(|f| f.0 == "Failed").unwrap().1;
        assert!(!failed.contains('\n'), "{failed}");
        assert!(
            failed.chars().count() <= MAX_FIELD_CHARS + 1,
            "{}",
            failed.len()
        );
        // A forged event cannot point people elsewhere: the URL is the plan's, the report
        // link only what the caller built.
        let a = tell(
            "Lifeboat Run Finished",
            &base(json!({"outcome": "succeeded",
                "target_workspace_url": "https://evil.example", "report_console_url": "https://evil.example/r"})),
        )
        .unwrap();
        assert_eq!(a.report_url, None);
        assert!(
            a.text.contains("https://dbc-dr.cloud.databricks.com")
                && !format!("{a:?}").contains("evil"),
            "{a:?}"
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        for (s, want) in [
            (0.0, "0 s"),
            (59.4, "59 s"),
            (60.0, "1 min"),
            (125.0, "2 min 5 s"),
            (3660.0, "1 h 1 min"),
            (-3.0, "0 s"),
        ] {
            assert_eq!(human_seconds(s), want);
        }
    }
}
