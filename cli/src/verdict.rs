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

/// Intervals per resource name between a `start` and an `end` event of the same resource id
/// (still open at the end of the timeline: `i64::MAX`).
fn intervals_between(
    events: &[TimelineEvent],
    start: &str,
    end: &str,
) -> BTreeMap<String, Vec<Interval>> {
    let mut open: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.wall_ms);
    for e in sorted {
        if e.kind == start {
            open.entry(e.resource_id.clone())
                .or_insert((e.name.clone(), e.wall_ms));
        } else if e.kind == end {
            if let Some((name, from)) = open.remove(&e.resource_id) {
                out.entry(name).or_default().push((from, e.wall_ms));
            }
        }
    }
    for (_, (name, from)) in open {
        out.entry(name).or_default().push((from, i64::MAX));
    }
    out
}

/// Run intervals per job name.
pub fn run_intervals(events: &[TimelineEvent]) -> BTreeMap<String, Vec<Interval>> {
    intervals_between(events, "run_started", "run_ended")
}

/// Pipeline intervals per pipeline name (`pipeline_running` → `pipeline_stopped`): a running
/// pipeline writes, so two of the same name are two writers.
pub fn pipeline_intervals(events: &[TimelineEvent]) -> BTreeMap<String, Vec<Interval>> {
    intervals_between(events, "pipeline_running", "pipeline_stopped")
}

/// Windows in which a site's whole region was down (`outage_started` → `outage_ended`):
/// nothing there is active, whatever its settings say.
pub fn outage_windows(events: &[TimelineEvent]) -> Vec<Interval> {
    let mut sorted: Vec<&TimelineEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.wall_ms);
    let mut out = Vec::new();
    let mut start = None;
    for e in sorted {
        match e.kind.as_str() {
            "outage_started" => start = start.or(Some(e.wall_ms)),
            "outage_ended" => {
                if let Some(s) = start.take() {
                    out.push((s, e.wall_ms));
                }
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, i64::MAX));
    }
    out
}

/// Pure: `intervals` with the `down` windows cut out.
pub fn minus(intervals: &[Interval], down: &[Interval]) -> Vec<Interval> {
    let mut out = intervals.to_vec();
    for d in down {
        out = out
            .into_iter()
            .flat_map(|(a, b)| {
                let mut parts = Vec::new();
                if a < d.0 {
                    parts.push((a, b.min(d.0)));
                }
                if b > d.1 {
                    parts.push((a.max(d.1), b));
                }
                parts.into_iter().filter(|(x, y)| x < y)
            })
            .collect();
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
    /// Every activation live at the primary before the run is live at exactly one site after.
    #[serde(default = "yes")]
    pub none_left_behind: bool,
    /// Those live at neither site after the run.
    #[serde(default)]
    pub left_behind: Vec<String>,
}

fn yes() -> bool {
    true
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

/// Pure: compares two sites' timelines: schedules/continuous/triggers, runs and pipelines of
/// the same name active at both at once. A site whose whole region is down (the timeline's
/// outage windows) is active nowhere during the outage.
pub fn never_both_active(primary: &[TimelineEvent], dr: &[TimelineEvent]) -> Verdict {
    let (p_down, d_down) = (outage_windows(primary), outage_windows(dr));
    let clip = |m: BTreeMap<String, Vec<Interval>>,
                down: &[Interval]|
     -> BTreeMap<String, Vec<Interval>> {
        m.into_iter().map(|(k, v)| (k, minus(&v, down))).collect()
    };
    let (pa, da) = (
        clip(activation_intervals(primary), &p_down),
        clip(activation_intervals(dr), &d_down),
    );
    let (pr, dr_runs) = (
        clip(run_intervals(primary), &p_down),
        clip(run_intervals(dr), &d_down),
    );
    let (pp, dp) = (
        clip(pipeline_intervals(primary), &p_down),
        clip(pipeline_intervals(dr), &d_down),
    );
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
    for (name, a) in &pp {
        if let Some(b) = dp.get(name) {
            overlaps(name, "pipeline", a, b, &mut found);
        }
    }
    jobs.extend(da.keys().cloned());
    Verdict {
        never_both_active: found.is_empty(),
        overlaps: found,
        jobs_compared: jobs.len(),
        none_left_behind: true,
        left_behind: Vec::new(),
    }
}

/// Activations (job name, kind) live at a site in its `/__emulator/state` inventory.
pub fn live_activations(state: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for j in state["jobs"].as_array().into_iter().flatten() {
        let name = j["name"].as_str().unwrap_or_default().to_string();
        for kind in ["schedule", "continuous", "trigger"] {
            if j[format!("{kind}_pause_status")].as_str() == Some("UNPAUSED") {
                out.insert((name.clone(), kind.to_string()));
            }
        }
    }
    out
}

/// Pure: none left behind — every activation live at the primary when the run began (its
/// timeline) is live at exactly one site now (both inventories). Returns the ones live nowhere.
pub fn left_behind(
    primary: &[TimelineEvent],
    run_started_ms: i64,
    primary_now: &std::collections::BTreeSet<(String, String)>,
    dr_now: &std::collections::BTreeSet<(String, String)>,
) -> Vec<String> {
    let mut open: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut sorted: Vec<&TimelineEvent> = primary
        .iter()
        .filter(|e| e.wall_ms <= run_started_ms)
        .collect();
    sorted.sort_by_key(|e| e.wall_ms);
    for e in sorted {
        let kind = e
            .detail
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("schedule");
        let key = (e.name.clone(), kind.to_string());
        match e.kind.as_str() {
            "schedule_unpaused" => {
                open.insert(key, true);
            }
            "schedule_paused" => {
                open.remove(&key);
            }
            _ => {}
        }
    }
    open.into_keys()
        .filter(|k| !primary_now.contains(k) && !dr_now.contains(k))
        .map(|(name, kind)| {
            format!(
                "job {name}: {kind} live at the primary before the run, live at neither site now"
            )
        })
        .collect()
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

    #[test]
    fn a_region_that_is_down_is_active_nowhere() {
        let outage = |ms, kind: &str| TimelineEvent {
            wall_ms: ms,
            kind: kind.into(),
            resource_type: "workspace".into(),
            name: String::new(),
            resource_id: "1".into(),
            detail: serde_json::json!({}),
        };
        // Primary live throughout, but down from 40 to 200; DR live from 50; fenced at 210.
        let p = vec![
            ev(0, "schedule_unpaused", "etl", "1"),
            outage(40, "outage_started"),
            outage(200, "outage_ended"),
            ev(210, "schedule_paused", "etl", "1"),
        ];
        let d = vec![ev(50, "schedule_unpaused", "etl", "9")];
        let v = never_both_active(&p, &d);
        assert!(
            !v.never_both_active,
            "the zombie window after the return counts"
        );
        assert_eq!((v.overlaps[0].from_ms, v.overlaps[0].to_ms), (200, 210));
        // Fenced while still down: no overlap at all.
        let p = vec![
            ev(0, "schedule_unpaused", "etl", "1"),
            outage(40, "outage_started"),
            ev(60, "schedule_paused", "etl", "1"),
            outage(200, "outage_ended"),
        ];
        assert!(never_both_active(&p, &d).never_both_active);
        assert_eq!(
            minus(&[(0, 100)], &[(10, 20), (50, i64::MAX)]),
            vec![(0, 10), (20, 50)]
        );
    }

    #[test]
    fn left_behind_is_live_at_neither_site() {
        let p = vec![
            ev(0, "schedule_unpaused", "etl", "1"),
            ev(0, "schedule_unpaused", "report", "2"),
            ev(500, "schedule_unpaused", "late", "3"),
        ];
        let none = std::collections::BTreeSet::new();
        let dr: std::collections::BTreeSet<(String, String)> =
            [("etl".to_string(), "schedule".to_string())].into();
        let got = left_behind(&p, 100, &none, &dr);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("report"));
    }
}
