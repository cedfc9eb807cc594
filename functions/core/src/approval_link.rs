//! Signed approval links. An e-mailed link carries only the run id, the stage, the decision,
//! the approver it was issued to, an expiry and an HMAC-SHA256 signature (key from Secrets
//! Manager) — never the task token, which stays in the ledger. Opening a link (GET) only shows
//! a confirmation page; the decision is a POST, so mail scanners that "click" links decide
//! nothing.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{
    run::RunId,
    secret::Secret,
    steps::request_approval::{ApprovalStage, Decision},
};

type HmacSha256 = Hmac<Sha256>;

/// What a link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkParams {
    /// Run (execution name).
    pub run_id: RunId,
    /// Which decision.
    pub stage: ApprovalStage,
    /// Approve or reject.
    pub decision: Decision,
    /// Who the link was issued to (the approver's identity in the audit).
    pub approver: String,
    /// Expiry, unix seconds.
    pub expires: i64,
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// A parameter is absent.
    #[error("the link is incomplete: parameter `{0}` is missing")]
    Missing(&'static str),
    /// A parameter has a value the link format does not allow.
    #[error("the link is invalid: parameter `{0}` has an unexpected value")]
    Invalid(&'static str),
    /// The signature does not match: the link was altered or not issued by Lifeboat.
    #[error("the link's signature is not valid (it was altered or not issued by Lifeboat)")]
    BadSignature,
    /// Past its expiry.
    #[error("the link expired")]
    Expired,
}

fn stage_str(s: ApprovalStage) -> &'static str {
    match s {
        ApprovalStage::Failover => "failover",
        ApprovalStage::RpoBreach => "rpo_breach",
        // Never issued as a link (interventions are decided by CLI or console); never parsed.
        ApprovalStage::Intervention => "intervention",
    }
}

fn payload(p: &LinkParams) -> String {
    format!(
        "v1|{}|{}|{}|{}|{}",
        p.run_id,
        stage_str(p.stage),
        p.decision.as_str(),
        p.approver,
        p.expires
    )
}

fn mac(key: &Secret) -> HmacSha256 {
    // HMAC accepts keys of any length.
    HmacSha256::new_from_slice(key.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("hmac takes any key length"))
}

/// The signature of a link.
pub fn sign(key: &Secret, p: &LinkParams) -> String {
    let mut m = mac(key);
    m.update(payload(p).as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The query string of a signed link.
pub fn query(key: &Secret, p: &LinkParams) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("run", &p.run_id.0)
        .append_pair("stage", stage_str(p.stage))
        .append_pair("decision", p.decision.as_str())
        .append_pair("approver", &p.approver)
        .append_pair("exp", &p.expires.to_string())
        .append_pair("sig", &sign(key, p))
        .finish()
}

/// Checks a link's parameters: all present, well-formed, signed by `key`, not expired.
pub fn verify(
    key: &Secret,
    params: &HashMap<String, String>,
    now_unix: i64,
) -> Result<LinkParams, LinkError> {
    let get = |k: &'static str| {
        params
            .get(k)
            .filter(|v| !v.is_empty())
            .ok_or(LinkError::Missing(k))
    };
    let run_id = RunId::parse(get("run")?).map_err(|_| LinkError::Invalid("run"))?;
    let stage = match get("stage")?.as_str() {
        "failover" => ApprovalStage::Failover,
        "rpo_breach" => ApprovalStage::RpoBreach,
        _ => return Err(LinkError::Invalid("stage")),
    };
    let decision = match get("decision")?.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        _ => return Err(LinkError::Invalid("decision")),
    };
    let approver = get("approver")?.clone();
    let expires: i64 = get("exp")?.parse().map_err(|_| LinkError::Invalid("exp"))?;
    let sig = hex::decode(get("sig")?).map_err(|_| LinkError::BadSignature)?;
    let p = LinkParams {
        run_id,
        stage,
        decision,
        approver,
        expires,
    };
    let mut m = mac(key);
    m.update(payload(&p).as_bytes());
    m.verify_slice(&sig).map_err(|_| LinkError::BadSignature)?;
    if now_unix > p.expires {
        return Err(LinkError::Expired);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> LinkParams {
        LinkParams {
            run_id: RunId("health-abc".into()),
            stage: ApprovalStage::Failover,
            decision: Decision::Approve,
            approver: "oncall@example.com".into(),
            expires: 2_000,
        }
    }

    fn parsed(q: &str) -> HashMap<String, String> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn round_trip_and_tampering() {
        let key = Secret::new("k-test-1");
        let q = query(&key, &params());
        assert_eq!(verify(&key, &parsed(&q), 1_000), Ok(params()));
        // Expired.
        assert_eq!(verify(&key, &parsed(&q), 2_001), Err(LinkError::Expired));
        // Another key.
        assert_eq!(
            verify(&Secret::new("k-other"), &parsed(&q), 1_000),
            Err(LinkError::BadSignature)
        );
        // Flipped decision, later expiry, other approver: signature breaks.
        for (k, v) in [
            ("decision", "reject"),
            ("exp", "9999999"),
            ("approver", "mallory@example.com"),
            ("run", "health-other"),
        ] {
            let mut p = parsed(&q);
            p.insert(k.into(), v.into());
            assert_eq!(verify(&key, &p, 1_000), Err(LinkError::BadSignature), "{k}");
        }
        // Wrong value, missing parameter.
        let mut p = parsed(&q);
        p.insert("decision".into(), "maybe".into());
        assert_eq!(verify(&key, &p, 1_000), Err(LinkError::Invalid("decision")));
        let mut p = parsed(&q);
        p.remove("sig");
        assert_eq!(verify(&key, &p, 1_000), Err(LinkError::Missing("sig")));
        // The query carries no token-like field.
        assert!(!q.contains("token"));
    }
}
