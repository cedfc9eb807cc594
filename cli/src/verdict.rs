//! "Never both active": from the two workspaces' activity timelines, was any job's schedule,
//! continuous run or trigger live at both sites at the same moment? Jobs are matched by name,
//! as the sites match them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One timeline event (the emulator's `/__emulator/timeline` shape).
#[derive(Debug, Clone, Deserialize)]
pub struct TimelineEvent {
    /// Wall-clock time, ms since the epoch.
    pub wall_ms: i64,
    /// `schedule_unpaused`, `run_started`, ...
    pub kind: String,
    /// `job`, `run`, ...
    #[serde(default)]
    pub resource_type: String,
    /// Job name (for jobs and runs).
    #[serde(default)]
    pub name: String,
    /// Run id or job id.
    #[serde(default)]
    pub resource_id: String,
    /// For schedule events: `{"kind": "schedule" | "continuous" | "trigger"}`.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// A half-open interval `[start, end)` in ms; `end` is `i64::MAX` while still active.
pub type Interval = (i64, i64);

/// Activation intervals per job name.
pub fn activation_intervals(events: &[TimelineEvent]) -> BTreeMap<String, Vec<Interval>> {
    let mut open: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.wall_ms);
    for e in sorted {
        let which = e
            .detail
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("schedule")
            .to_string();
        let key = (e.name.clone(), which);
        match e.kind.as_str() {
            "schedule_unpaused" => {
                open.entry(key).or_insert(e.wall_ms);
            }
            "schedule_paused" => {
                if let Some(start) = open.remove(&key) {
                    out.entry(key.0).or_default().push((start, e.wall_ms));
                }
            }
            _ => {}
        }
    }
    for ((name, _), start) in open {
        out.entry(name).or_default().push((start, i64::MAX));
    }
    out
}

/// Run intervals per job name.
pub fn run_intervals(events: &[TimelineEvent]) -> BTreeMap<String, Vec<Interval>> {
    let mut open: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.wall_ms);
    for e in sorted {
        match e.kind.as_str() {
            "run_started" => {
                open.insert(e.resource_id.clone(), (e.name.clone(), e.wall_ms));
            }
            "run_ended" => {
                if let Some((name, start)) = open.remove(&e.resource_id) {
                    out.entry(name).or_default().push((start, e.wall_ms));
                }
            }
            _ => {}
        }
    }
    for (_, (name, start)) in open {
        out.entry(name).or_default().push((start, i64::MAX));
    }
    out
}

/// One overlap found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    /// Job name.
    pub job: String,
    /// What overlapped: `schedule` or `run`.
    pub what: String,
    /// Overlap start, ms.
    pub from_ms: i64,
    /// Overlap end, ms (`i64::MAX`: still both active).
    pub to_ms: i64,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// No job was active at both sites at once.
    pub never_both_active: bool,
    /// The overlaps, if any.
    pub overlaps: Vec<Overlap>,
    /// Jobs compared.
    pub jobs_compared: usize,
}

fn overlaps(job: &str, what: &str, a: &[Interval], b: &[Interval], out: &mut Vec<Overlap>) {
    for x in a {
        for y in b {
            let from = x.0.max(y.0);
            let to = x.1.min(y.1);
            if from < to {
                out.push(Overlap {
                    job: job.to_string(),
                    what: what.to_string(),
                    from_ms: from,
                    to_ms: to,
                });
            }
        }
    }
}

/// Pure: compares two sites' timelines.
pub fn never_both_active(primary: &[TimelineEvent], dr: &[TimelineEvent]) -> Verdict {
    let (pa, da) = (activation_intervals(primary), activation_intervals(dr));
    let (pr, dr_runs) = (run_intervals(primary), run_intervals(dr));
    let mut found = Vec::new();
    let mut jobs = std::collections::BTreeSet::new();
    for (job, a) in &pa {
        jobs.insert(job.clone());
        if let Some(b) = da.get(job) {
            overlaps(job, "schedule", a, b, &mut found);
        }
    }
    for (job, a) in &pr {
        jobs.insert(job.clone());
        if let Some(b) = dr_runs.get(job) {
            overlaps(job, "run", a, b, &mut found);
        }
    }
    jobs.extend(da.keys().cloned());
    Verdict {
        never_both_active: found.is_empty(),
        overlaps: found,
        jobs_compared: jobs.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ms: i64, kind: &str, name: &str, id: &str) -> TimelineEvent {
        TimelineEvent {
            wall_ms: ms,
            kind: kind.into(),
            resource_type: "job".into(),
            name: name.into(),
            resource_id: id.into(),
            detail: serde_json::json!({"kind": "schedule"}),
        }
    }

    #[test]
    fn handover_without_overlap_passes() {
        let p = vec![
            ev(0, "schedule_unpaused", "etl", "1"),
            ev(100, "schedule_paused", "etl", "1"),
        ];
        let d = vec![ev(100, "schedule_unpaused", "etl", "9")];
        assert!(never_both_active(&p, &d).never_both_active);
    }

    #[test]
    fn overlap_is_caught() {
        let p = vec![
            ev(0, "schedule_unpaused", "etl", "1"),
            ev(100, "schedule_paused", "etl", "1"),
        ];
        let d = vec![ev(50, "schedule_unpaused", "etl", "9")];
        let v = never_both_active(&p, &d);
        assert!(!v.never_both_active);
        assert_eq!(v.overlaps[0].from_ms, 50);
        assert_eq!(v.overlaps[0].to_ms, 100);
        // Runs too.
        let p = vec![ev(0, "run_started", "etl", "r1")];
        let d = vec![
            ev(10, "run_started", "etl", "r2"),
            ev(20, "run_ended", "etl", "r2"),
        ];
        assert!(!never_both_active(&p, &d).never_both_active);
        // Different jobs never conflict.
        let d = vec![ev(10, "schedule_unpaused", "other", "9")];
        assert!(never_both_active(&p, &d).never_both_active);
    }
}
