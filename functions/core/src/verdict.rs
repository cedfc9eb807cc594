//! The run's safety verdicts from the ledger, for every run (deployed or local):
//! invariant 1, **never both active**, and invariant 6, **none left behind**. Each activation
//! (schedule, trigger, continuous job) the fence found live at the source must end live at
//! exactly one site: at the target once the source's twin is confirmed paused, or still at the
//! source. The local drill checks the same from the emulators' timelines and inventories.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    databricks::jobs::Activation,
    fence::{
        gate::GateOverride,
        handoff::{ActivationOutcome, ActivationRecord},
        FenceRecord, ResourceKind,
    },
};

/// Both verdicts with the offending jobs named.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdicts {
    /// No activation live at the target while its source twin was not confirmed fenced
    /// (override-backed activations are listed in `by_override`, not counted).
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
}

/// Pure: the verdicts from the source's fence record, the target's activation record and the
/// gate override, if any.
pub fn verdicts(
    fence: Option<&FenceRecord>,
    activation: Option<&ActivationRecord>,
    gate_override: Option<&GateOverride>,
) -> Verdicts {
    let mut v = Verdicts {
        never_both_active: true,
        none_left_behind: true,
        ..Default::default()
    };
    let Some(fence) = fence else {
        // Nothing was fenced: everything is where it was.
        return v;
    };
    let entries: BTreeMap<String, &ActivationOutcome> = activation
        .map(|a| {
            a.entries
                .values()
                .map(|e| (format!("{}:{}", e.activation.field(), e.name), &e.outcome))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for r in fence.resources.values() {
        let activation = match r.kind {
            ResourceKind::Schedule => Activation::Schedule,
            ResourceKind::Continuous => Activation::Continuous,
            ResourceKind::Trigger => Activation::Trigger,
            _ => continue,
        };
        let key = format!("{}:{}", activation.field(), r.name);
        if !seen.insert(key.clone()) {
            continue;
        }
        v.compared += 1;
        let outcome = entries.get(&key);
        let live_at_target = outcome.is_some_and(|o| o.live());
        let label = format!("job {}: {}", r.name, activation.field());
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
            _ => {}
        }
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
            let v = verdicts(Some(&f), Some(&a), ov);
            assert_eq!(
                (v.never_both_active, v.none_left_behind),
                (nba, nlb),
                "{case}: {v:?}"
            );
        }
        assert_eq!(verdicts(None, None, None).compared, 0);
    }
}
