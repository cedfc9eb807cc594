//! RTO by phase: where the time of a run went, from the ledger's step records and the
//! incident's own timestamps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::kernel::StepRecord;

/// One phase of the recovery: where the time went, from the ledger's step records and the
/// incident's own timestamps. Phases of parallel branches overlap; `share` is of the total
/// (incident start, else declaration → serving).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `detection`, `pre-checks`, `decision`, `data fence`, `fence`, `start-up`, `activation`,
    /// `client switch`, `validation`.
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub seconds: f64,
    /// Fraction of the total.
    pub share: f64,
}

/// Pure: the run's time by phase. Step-based phases span their steps (first start → last
/// end); detection runs from the incident's start to the declaration; the decision from the
/// approval request to the decision. `total_end` is when the target served (else the last
/// step's end); shares are of incident start (else declaration) → `total_end`.
pub fn phases(
    steps: &[StepRecord],
    declared_at: DateTime<Utc>,
    incident_started_at: Option<DateTime<Utc>>,
    decided_at: Option<DateTime<Utc>>,
    total_end: Option<DateTime<Utc>>,
) -> Vec<Phase> {
    let secs =
        |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds().max(0) as f64 / 1000.0;
    let span = |names: &[&str]| {
        let mine: Vec<&StepRecord> = steps
            .iter()
            .filter(|s| names.contains(&s.step.as_str()))
            .collect();
        Some((
            mine.iter().map(|s| s.started_at).min()?,
            mine.iter().map(|s| s.ended_at).max()?,
        ))
    };
    let mut raw: Vec<(&str, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    if let Some(start) = incident_started_at.filter(|t| *t < declared_at) {
        raw.push(("detection", start, declared_at));
    }
    if let Some((a, b)) = span(&["dr-config-check", "replication-check", "data-sources-check"]) {
        raw.push(("pre-checks", a, b));
    }
    let requested = steps
        .iter()
        .filter(|s| s.step == "request-approval")
        .map(|s| s.started_at)
        .min();
    if let (Some(a), Some(b)) = (requested, decided_at) {
        raw.push(("decision", a, b));
    }
    for (name, steps_of) in [
        ("data fence", &["data-fence"][..]),
        ("fence", &["shutdown-sweep"][..]),
        ("start-up", &["dr-startup"][..]),
        ("activation", &["activate-schedules"][..]),
        ("client switch", &["dns-switch"][..]),
        ("validation", &["validate-workspace"][..]),
        ("client check", &[crate::kernel::VERIFY_CLIENTS][..]),
    ] {
        if let Some((a, b)) = span(steps_of) {
            // The fence starts when the decision does (its first sweep may wait on nothing).
            let a = match (name, decided_at) {
                ("fence", Some(d)) if d < a => d,
                _ => a,
            };
            raw.push((name, a, b));
        }
    }
    let origin = incident_started_at
        .filter(|t| *t < declared_at)
        .unwrap_or(declared_at);
    let end = total_end.or_else(|| steps.iter().map(|s| s.ended_at).max());
    let total = end.map(|e| secs(origin, e)).filter(|t| *t > 0.0);
    raw.into_iter()
        .map(|(name, start, end)| {
            let seconds = secs(start, end);
            Phase {
                name: name.to_string(),
                start,
                end,
                seconds,
                share: total.map(|t| (seconds / t).min(1.0)).unwrap_or(0.0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
            + chrono::Duration::seconds(s)
    }

    fn step(name: &str, a: i64, b: i64) -> StepRecord {
        StepRecord {
            step: name.into(),
            started_at: t(a),
            ended_at: t(b),
            ok: true,
            summary: String::new(),
        }
    }

    fn by_name(p: &[Phase]) -> BTreeMap<String, (f64, f64)> {
        p.iter()
            .map(|p| (p.name.clone(), (p.seconds, (p.share * 100.0).round())))
            .collect()
    }

    #[test]
    fn phases_of_a_failover_add_up_to_where_the_time_went() {
        // Incident at 0, declared at 100, checks 100–110, asked 110, decided 200, the fence
        // and data fence after the decision, activation pipelined behind the fence, DNS and
        // validation on the start-up branch; served at 300.
        let steps = vec![
            step("dr-config-check", 100, 104),
            step("replication-check", 104, 106),
            step("data-sources-check", 106, 110),
            step("request-approval", 110, 111),
            step("request-approval", 200, 201),
            step("data-fence", 201, 203),
            step("shutdown-sweep", 201, 240),
            step("shutdown-sweep", 250, 270),
            step("dr-startup", 201, 260),
            step("activate-schedules", 205, 300),
            step("validate-workspace", 260, 270),
            step("dns-switch", 270, 275),
        ];
        let p = phases(&steps, t(100), Some(t(0)), Some(t(200)), Some(t(300)));
        let got = by_name(&p);
        let want: BTreeMap<String, (f64, f64)> = [
            ("detection", (100.0, 33.0)),
            ("pre-checks", (10.0, 3.0)),
            ("decision", (90.0, 30.0)),
            ("data fence", (2.0, 1.0)),
            ("fence", (70.0, 23.0)),
            ("start-up", (59.0, 20.0)),
            ("activation", (95.0, 32.0)),
            ("validation", (10.0, 3.0)),
            ("client switch", (5.0, 2.0)),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        assert_eq!(got, want);
        // The sequential path — detection, checks, decision, activation (to serving) — is the
        // total: what the phases are for.
        let path = ["detection", "pre-checks", "decision"]
            .iter()
            .map(|n| got[*n].0)
            .sum::<f64>()
            + (300.0 - 200.0);
        assert_eq!(path, 300.0);
    }

    #[test]
    fn phases_table() {
        // No incident time: detection absent, shares of declaration → serving.
        let steps = vec![step("request-approval", 0, 1), step("dns-switch", 10, 20)];
        let p = by_name(&phases(&steps, t(0), None, Some(t(10)), Some(t(20))));
        assert_eq!(p.get("detection"), None);
        assert_eq!(p["decision"], (10.0, 50.0));
        assert_eq!(p["client switch"], (10.0, 50.0));
        // An incident "after" the declaration (clock skew) is not a detection phase.
        let p = by_name(&phases(&steps, t(0), Some(t(5)), Some(t(10)), Some(t(20))));
        assert_eq!(p.get("detection"), None);
        // Rejected: no decision time, nothing after it; shares of the last step's end.
        let p = by_name(&phases(
            &[step("dr-config-check", 0, 4)],
            t(0),
            None,
            None,
            None,
        ));
        assert_eq!(p.len(), 1);
        assert_eq!(p["pre-checks"], (4.0, 100.0));
        // Nothing at all.
        assert!(phases(&[], t(0), None, None, None).is_empty());
    }
}
