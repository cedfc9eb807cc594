//! The run's safety verdicts from the ledger, for every run (deployed or local):
//! invariant 1, **never both active**, and invariant 6, **none left behind**. Each activation
//! (schedule, trigger, continuous job) the fence found live at the source must end live at
//! exactly one site: at the target once the source's twin is confirmed paused, or still at the
//! source. The local drill checks the same from the emulators' timelines and inventories.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    databricks::jobs::Activation,
    drift::snapshot::SnapshotHead,
    fence::{
        gate::GateOverride,
        handoff::{ActivationOutcome, ActivationRecord},
        FenceRecord, ResourceKind,
    },
};

/// What the verdicts compared the target with: what was live at the source before the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "basis")]
pub enum Basis {
    /// The source's fence record: what the sweep found live there and confirmed paused.
    #[default]
    FenceRecord,
    /// The source never answered the sweep: its last configuration snapshot, taken then.
    Snapshot {
        /// When the snapshot was taken.
        taken_at: Option<DateTime<Utc>>,
    },
    /// Nothing to compare: neither a fence record that reached the source nor a snapshot
    /// of it, or no activation was live there. The verdicts are not "held" then.
    NotCompared {
        /// Why.
        reason: String,
    },
}

/// Both verdicts with the offending jobs named.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdicts {
    /// No activation live at the target while its source twin was not confirmed fenced
    /// (override-backed activations are listed in `by_override`, not counted). Meaningful only
    /// when [`Verdicts::basis`] compared something.
    pub never_both_active: bool,
    /// Activations live at the target while the source's twin was not confirmed fenced.
    pub both_active: Vec<String>,
    /// Every activation live at the source before the run is live at exactly one site.
    pub none_left_behind: bool,
    /// Fenced at the source and not live at the target, with the reason.
    pub left_behind: Vec<String>,
    /// Live at the target by an operator override while the source's API fence was not
    /// confirmed (the data fence held); the fence watch finishes them.
    pub by_override: Vec<String>,
    /// Activations compared.
    pub compared: usize,
    /// What they were compared with.
    #[serde(default)]
    pub basis: Basis,
}

impl Verdicts {
    /// Whether anything was compared (a verdict over nothing is "not compared", never "held").
    pub fn compared_anything(&self) -> bool {
        !matches!(self.basis, Basis::NotCompared { .. })
    }

    /// How a verdict reads: `held`, `VIOLATED` or `not compared`.
    pub fn reading(&self, held: bool) -> &'static str {
        match (self.compared_anything(), held) {
            (false, _) => "not compared",
            (true, true) => "held",
            (true, false) => "VIOLATED",
        }
    }
}

/// One activation live at the source before the run: its job, which activation, and whether
/// the source's fence confirmed it paused.
struct SourceLive {
    name: String,
    activation: Activation,
    confirmed: bool,
}

/// Pure: the verdicts from what was live at the source — its fence record when the sweep
/// reached it, else its last configuration snapshot (`snapshot`) — the target's activation
/// record and the gate override, if any.
pub fn verdicts(
    fence: Option<&FenceRecord>,
    activation: Option<&ActivationRecord>,
    gate_override: Option<&GateOverride>,
    snapshot: Option<&SnapshotHead>,
) -> Verdicts {
    let mut v = Verdicts {
        never_both_active: true,
        none_left_behind: true,
        ..Default::default()
    };
    let of_kind = |kind| match kind {
        ResourceKind::Schedule => Some(Activation::Schedule),
        ResourceKind::Continuous => Some(Activation::Continuous),
        ResourceKind::Trigger => Some(Activation::Trigger),
        _ => None,
    };
    let reached = fence.filter(|f| f.inventoried_at.is_some() || !f.resources.is_empty());
    let (source, basis): (Vec<SourceLive>, Basis) = match (reached, snapshot) {
        (Some(f), _) => (
            f.resources
                .values()
                .filter_map(|r| {
                    Some(SourceLive {
                        name: r.name.clone(),
                        activation: of_kind(r.kind)?,
                        confirmed: r.confirmed,
                    })
                })
                .collect(),
            Basis::FenceRecord,
        ),
        (None, Some(s)) => {
            // Never reached: confirmed only what a fence record (of a later sweep) says.
            let confirmed: BTreeMap<(String, &'static str), bool> = fence
                .map(|f| {
                    f.resources
                        .values()
                        .filter_map(|r| {
                            Some(((r.name.clone(), of_kind(r.kind)?.field()), r.confirmed))
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                s.live_activations()
                    .map(|(name, activation)| SourceLive {
                        name: name.clone(),
                        activation,
                        confirmed: confirmed
                            .get(&(name.clone(), activation.field()))
                            .copied()
                            .unwrap_or(false),
                    })
                    .collect(),
                Basis::Snapshot {
                    taken_at: s.taken_at,
                },
            )
        }
        (None, None) => (
            Vec::new(),
            Basis::NotCompared {
                reason: "the source never answered the sweep and no configuration snapshot of it \
                         was in the ledger"
                    .into(),
            },
        ),
    };
    v.basis = basis;
    let entries: BTreeMap<String, &ActivationOutcome> = activation
        .map(|a| {
            a.entries
                .values()
                .map(|e| (format!("{}:{}", e.activation.field(), e.name), &e.outcome))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for r in source {
        let key = format!("{}:{}", r.activation.field(), r.name);
        if !seen.insert(key.clone()) {
            continue;
        }
        v.compared += 1;
        let outcome = entries.get(&key);
        let live_at_target = outcome.is_some_and(|o| o.live());
        let label = format!("job {}: {}", r.name, r.activation.field());
        match (live_at_target, r.confirmed) {
            (true, false) if gate_override.is_some() => v.by_override.push(label),
            (true, false) => v.both_active.push(label),
            (false, true) => v.left_behind.push(match outcome {
                Some(ActivationOutcome::Missing) => format!("{label} — job missing at the target"),
                Some(ActivationOutcome::NotDefined) => {
                    format!("{label} — not defined at the target")
                }
                Some(ActivationOutcome::Failed(m)) => format!("{label} — target refused: {m}"),
                _ => format!("{label} — paused at the source, not activated at the target"),
            }),
            // Never confirmed paused and not live at the target: still at the source when
            // the source was never reached — left behind unless the fence confirms it later.
            (false, false) if matches!(v.basis, Basis::Snapshot { .. }) => v.left_behind.push(
                format!("{label} — live at the unreachable source, not activated at the target"),
            ),
            _ => {}
        }
    }
    if v.compared == 0 && v.compared_anything() {
        v.basis = Basis::NotCompared {
            reason: "no activation was live at the source".into(),
        };
    }
    v.never_both_active = v.both_active.is_empty();
    v.none_left_behind = v.left_behind.is_empty();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        fence::{handoff::ActivationEntry, ResourceRecord},
        plan::SiteRole,
    };
    use chrono::Utc;

    fn fence(items: &[(&str, bool)]) -> FenceRecord {
        let mut f = FenceRecord::new(SiteRole::Primary);
        for (i, (name, confirmed)) in items.iter().enumerate() {
            f.resources.insert(
                format!("schedule:{i}"),
                ResourceRecord {
                    kind: ResourceKind::Schedule,
                    id: i.to_string(),
                    name: name.to_string(),
                    prior: "UNPAUSED".into(),
                    desired: "PAUSED".into(),
                    confirmed: *confirmed,
                    actions: 1,
                    last_error: None,
                    prior_value: None,
                    stopping: false,
                },
            );
        }
        f
    }

    fn activated(items: &[(&str, ActivationOutcome)]) -> ActivationRecord {
        let mut a = ActivationRecord::default();
        for (name, outcome) in items {
            a.entries.insert(
                format!("schedule:{name}"),
                ActivationEntry {
                    name: name.to_string(),
                    activation: Activation::Schedule,
                    outcome: outcome.clone(),
                    fenced_at: None,
                    at: Utc::now(),
                },
            );
        }
        a
    }

    #[test]
    fn each_activation_ends_live_at_exactly_one_site() {
        use ActivationOutcome::*;
        let o = GateOverride {
            reason: "region down".into(),
            who: "alice".into(),
            channel: "cli".into(),
            at: Utc::now(),
            data_fence_confirmed_at: Utc::now(),
        };
        // (case, fence, activation, override, never_both_active, none_left_behind)
        type Case<'a> = (
            &'a str,
            FenceRecord,
            ActivationRecord,
            Option<&'a GateOverride>,
            bool,
            bool,
        );
        let table: Vec<Case> = vec![
            (
                "handed over",
                fence(&[("etl", true)]),
                activated(&[("etl", Activated)]),
                None,
                true,
                true,
            ),
            (
                "already live counts",
                fence(&[("etl", true)]),
                activated(&[("etl", AlreadyLive)]),
                None,
                true,
                true,
            ),
            (
                "still at the source",
                fence(&[("etl", false)]),
                activated(&[]),
                None,
                true,
                true,
            ),
            (
                "left behind: missing",
                fence(&[("etl", true)]),
                activated(&[("etl", Missing)]),
                None,
                true,
                false,
            ),
            (
                "left behind: never activated",
                fence(&[("etl", true)]),
                activated(&[]),
                None,
                true,
                false,
            ),
            (
                "both active",
                fence(&[("etl", false)]),
                activated(&[("etl", Activated)]),
                None,
                false,
                true,
            ),
            (
                "override",
                fence(&[("etl", false)]),
                activated(&[("etl", Activated)]),
                Some(&o),
                true,
                true,
            ),
        ];
        for (case, f, a, ov, nba, nlb) in table {
            let v = verdicts(Some(&f), Some(&a), ov, None);
            assert_eq!(
                (v.never_both_active, v.none_left_behind),
                (nba, nlb),
                "{case}: {v:?}"
            );
        }
        let nothing = verdicts(None, None, None, None);
        assert_eq!(nothing.compared, 0);
        assert!(!nothing.compared_anything());
        assert_eq!(nothing.reading(nothing.never_both_active), "not compared");
    }

    /// The source's region down through the whole run: the sweep never inventoried it, so the
    /// verdicts compare the last snapshot's live activations; a later fence record (the watch)
    /// confirms them.
    #[test]
    fn an_unreachable_source_is_compared_through_its_snapshot() {
        use ActivationOutcome::*;
        let snapshot = SnapshotHead {
            taken_at: Some(Utc::now()),
            activations: [
                ("etl".to_string(), vec![(Activation::Schedule, true)]),
                ("stream".to_string(), vec![(Activation::Continuous, true)]),
                ("dormant".to_string(), vec![(Activation::Schedule, false)]),
            ]
            .into(),
        };
        let never_reached = FenceRecord::new(SiteRole::Primary);
        let o = GateOverride {
            reason: "region down".into(),
            who: "alice".into(),
            channel: "cli".into(),
            at: Utc::now(),
            data_fence_confirmed_at: Utc::now(),
        };
        let mut target = activated(&[("etl", Activated)]);
        target.entries.insert(
            "continuous:stream".into(),
            ActivationEntry {
                name: "stream".into(),
                activation: Activation::Continuous,
                outcome: Activated,
                fenced_at: None,
                at: Utc::now(),
            },
        );
        let v = verdicts(
            Some(&never_reached),
            Some(&target),
            Some(&o),
            Some(&snapshot),
        );
        assert!(matches!(v.basis, Basis::Snapshot { .. }), "{v:?}");
        assert_eq!(v.compared, 2, "the dormant job is not counted");
        assert_eq!(v.by_override.len(), 2);
        assert!(v.never_both_active && v.none_left_behind, "{v:?}");
        assert_eq!(v.reading(v.never_both_active), "held");
        // Without an override the same is two jobs live at both sites.
        let v = verdicts(Some(&never_reached), Some(&target), None, Some(&snapshot));
        assert_eq!(v.both_active.len(), 2);
        assert_eq!(v.reading(v.never_both_active), "VIOLATED");
        // One not activated at the target: left behind while the source stays unreachable.
        let only_etl = activated(&[("etl", Activated)]);
        let v = verdicts(
            Some(&never_reached),
            Some(&only_etl),
            Some(&o),
            Some(&snapshot),
        );
        assert_eq!(v.left_behind.len(), 1, "{v:?}");
        // A source with nothing live: not compared, not "held".
        let empty = SnapshotHead {
            taken_at: Some(Utc::now()),
            activations: [("dormant".to_string(), vec![(Activation::Schedule, false)])].into(),
        };
        let v = verdicts(Some(&never_reached), Some(&only_etl), None, Some(&empty));
        assert!(!v.compared_anything(), "{v:?}");
    }
}
