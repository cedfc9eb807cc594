//! Signed approval links. An e-mailed link carries only the run id, the stage, the decision,
//! the approver it was issued to, an expiry and an HMAC-SHA256 signature (key from Secrets
//! Manager) — never the task token, which stays in the ledger. Opening a link (GET) only shows
//! a confirmation page; the decision is a POST, so mail scanners that "click" links decide
//! nothing.

use std::collections::HashMap;

use hmac::Mac;

use crate::kernel::signing::SigningKeys;
use crate::{
    approval::{ApprovalStage, Decision},
    identity::Identity,
    run::RunId,
};

/// What a link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkParams {
    /// Run (execution name).
    pub run_id: RunId,
    /// Which decision.
    pub stage: ApprovalStage,
    /// Approve or reject.
    pub decision: Decision,
    /// Who the link was issued (and delivered) to: a normalised e-mail address.
    pub approver: String,
    /// Expiry, unix seconds.
    pub expires: i64,
    /// The deployment that issued it (`AWS::StackId`): a link of another stack sharing the key
    /// is refused.
    pub stack: String,
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
    /// Signed by a key this deployment no longer accepts (rotated out twice).
    #[error("the link was signed with a key that is no longer accepted (key id `{0}`)")]
    UnknownKey(String),
    /// Issued by another deployment.
    #[error("the link was issued by another Lifeboat deployment")]
    OtherStack,
    /// Past its expiry.
    #[error("the link expired")]
    Expired,
}

impl LinkError {
    /// Whether the request proved it holds a link Lifeboat issued to someone (signature
    /// valid): only those may leave a trace under the run they name.
    pub fn is_signed(&self) -> bool {
        matches!(self, LinkError::Expired)
    }
}

fn stage_str(s: ApprovalStage) -> &'static str {
    match s {
        ApprovalStage::Failover => "failover",
        ApprovalStage::RpoBreach => "rpo_breach",
        // Never issued as a link (interventions are decided by CLI or console); never parsed.
        ApprovalStage::Intervention => "intervention",
    }
}

/// The signed bytes: a JSON array, so no field value (an approver with a `|`, a stack id with
/// anything) can shift another field's boundary.
fn payload(kid: &str, p: &LinkParams) -> String {
    serde_json::json!([
        "v2",
        kid,
        p.stack,
        p.run_id.0,
        stage_str(p.stage),
        p.decision.as_str(),
        p.approver,
        p.expires
    ])
    .to_string()
}

/// The signature of a link with the current key.
pub fn sign(keys: &SigningKeys, p: &LinkParams) -> String {
    let mut m = keys.current.mac();
    m.update(payload(&keys.current.id, p).as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The query string of a signed link.
pub fn query(keys: &SigningKeys, p: &LinkParams) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("run", &p.run_id.0)
        .append_pair("stage", stage_str(p.stage))
        .append_pair("decision", p.decision.as_str())
        .append_pair("approver", &p.approver)
        .append_pair("exp", &p.expires.to_string())
        .append_pair("stack", &p.stack)
        .append_pair("kid", &keys.current.id)
        .append_pair("sig", &sign(keys, p))
        .finish()
}

/// Checks a link's parameters: all present, well-formed, signed by one of `keys` for this
/// `stack`, not expired. The signature is checked before anything else is believed.
pub fn verify(
    keys: &SigningKeys,
    stack: &str,
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
    if approver.len() > crate::identity::MAX_IDENTITY {
        return Err(LinkError::Invalid("approver"));
    }
    let expires: i64 = get("exp")?.parse().map_err(|_| LinkError::Invalid("exp"))?;
    let link_stack = get("stack")?.clone();
    let kid = get("kid")?;
    let sig = hex::decode(get("sig")?).map_err(|_| LinkError::BadSignature)?;
    let key = keys
        .by_id(kid)
        .ok_or_else(|| LinkError::UnknownKey(crate::identity::bounded(kid, 32)))?;
    let p = LinkParams {
        run_id,
        stage,
        decision,
        approver,
        expires,
        stack: link_stack,
    };
    let mut m = key.mac();
    m.update(payload(kid, &p).as_bytes());
    m.verify_slice(&sig).map_err(|_| LinkError::BadSignature)?;
    if p.stack != stack {
        return Err(LinkError::OtherStack);
    }
    // Issued links carry a normalised e-mail; anything else was not issued by us.
    match Identity::parse(&p.approver) {
        Ok(Identity::Email(e)) if e == p.approver => {}
        _ if p.approver == crate::approval::ON_CALL => {}
        _ => return Err(LinkError::Invalid("approver")),
    }
    if now_unix > p.expires {
        return Err(LinkError::Expired);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use proptest::prelude::*;

    const KEY: &str = "k-test-0123456789abcdef0123456789abcdef";

    fn keys() -> SigningKeys {
        SigningKeys::parse(&Secret::new(KEY)).unwrap()
    }

    fn params() -> LinkParams {
        LinkParams {
            run_id: RunId("health-abc".into()),
            stage: ApprovalStage::Failover,
            decision: Decision::Approve,
            approver: "oncall@example.com".into(),
            expires: 2_000,
            stack: "arn:aws:cloudformation:us-west-2:123456789012:stack/lifeboat/1".into(),
        }
    }

    fn parsed(q: &str) -> HashMap<String, String> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn round_trip_and_tampering() {
        let stack = params().stack;
        let q = query(&keys(), &params());
        assert_eq!(verify(&keys(), &stack, &parsed(&q), 1_000), Ok(params()));
        // Expired (and only then: the signature is checked first).
        assert_eq!(
            verify(&keys(), &stack, &parsed(&q), 2_001),
            Err(LinkError::Expired)
        );
        // Another key with the same id.
        let other = SigningKeys::parse(&Secret::new("x".repeat(40))).unwrap();
        assert_eq!(
            verify(&other, &stack, &parsed(&q), 1_000),
            Err(LinkError::BadSignature)
        );
        // Another deployment sharing the key.
        assert_eq!(
            verify(&keys(), "arn:other-stack", &parsed(&q), 1_000),
            Err(LinkError::OtherStack)
        );
        // Every field is signed.
        for (k, v) in [
            ("decision", "reject"),
            ("exp", "9999999"),
            ("approver", "mallory@example.com"),
            ("run", "health-other"),
            ("stage", "rpo_breach"),
            ("stack", "arn:other-stack"),
        ] {
            let mut p = parsed(&q);
            p.insert(k.into(), v.into());
            assert_eq!(
                verify(&keys(), &stack, &p, 1_000),
                Err(LinkError::BadSignature),
                "{k}"
            );
        }
        let mut p = parsed(&q);
        p.insert("kid".into(), "k9".into());
        assert_eq!(
            verify(&keys(), &stack, &p, 1_000),
            Err(LinkError::UnknownKey("k9".into()))
        );
        // Wrong value, missing parameter.
        let mut p = parsed(&q);
        p.insert("decision".into(), "maybe".into());
        assert_eq!(
            verify(&keys(), &stack, &p, 1_000),
            Err(LinkError::Invalid("decision"))
        );
        for k in ["sig", "kid", "stack", "approver", "exp"] {
            let mut p = parsed(&q);
            p.remove(k);
            assert!(
                matches!(verify(&keys(), &stack, &p, 1_000), Err(LinkError::Missing(m)) if m == k),
                "{k}"
            );
        }
        // The query carries no token-like field.
        assert!(!q.contains("token"));
    }

    #[test]
    fn field_boundaries_cannot_shift() {
        // v1 signed "a|b|..." unescaped: an approver holding a `|` could pose as other fields.
        let mut a = params();
        a.approver = "a@x.com".into();
        a.stack = "s|1".into();
        let mut b = params();
        b.approver = "a@x.com|s".into();
        b.stack = "1".into();
        assert_ne!(payload("k0", &a), payload("k0", &b));
    }

    #[test]
    fn rotation_accepts_current_and_previous_only() {
        let old = SigningKeys::parse(&Secret::new(format!(
            r#"{{"current": {{"id": "2026-10", "key": "{}"}}}}"#,
            "o".repeat(32)
        )))
        .unwrap();
        let rotated = SigningKeys::parse(&Secret::new(format!(
            r#"{{"current": {{"id": "2026-11", "key": "{}"}}, "previous": {{"id": "2026-10", "key": "{}"}}}}"#,
            "n".repeat(32),
            "o".repeat(32)
        )))
        .unwrap();
        let again = SigningKeys::parse(&Secret::new(format!(
            r#"{{"current": {{"id": "2026-12", "key": "{}"}}, "previous": {{"id": "2026-11", "key": "{}"}}}}"#,
            "z".repeat(32),
            "n".repeat(32)
        )))
        .unwrap();
        let stack = params().stack;
        let from_old = parsed(&query(&old, &params()));
        assert!(verify(&rotated, &stack, &from_old, 1_000).is_ok());
        assert_eq!(
            verify(&again, &stack, &from_old, 1_000),
            Err(LinkError::UnknownKey("2026-10".into()))
        );
        let from_new = parsed(&query(&rotated, &params()));
        assert_eq!(from_new.get("kid").map(String::as_str), Some("2026-11"));
        assert!(verify(&again, &stack, &from_new, 1_000).is_ok());
    }

    proptest! {
        /// Any query string at all: an answer, never a panic, and never a link that verifies
        /// without the key.
        #[test]
        fn arbitrary_queries_never_panic_nor_verify(q in ".{0,300}") {
            let r = verify(&keys(), "s", &parsed(&q), 1_000);
            prop_assert!(r.is_err());
        }

        /// Arbitrary maps over the link's own parameter names.
        #[test]
        fn arbitrary_fields_never_verify(
            fields in proptest::collection::hash_map(
                prop_oneof![
                    Just("run"), Just("stage"), Just("decision"), Just("approver"),
                    Just("exp"), Just("stack"), Just("kid"), Just("sig")
                ].prop_map(str::to_string),
                ".{0,80}",
                0..9,
            )
        ) {
            prop_assert!(verify(&keys(), "s", &fields, 1_000).is_err());
        }

        /// Genuine links round-trip for any run id, approver and expiry; any change of one
        /// character of the signature is refused.
        #[test]
        fn genuine_links_round_trip(
            run in "[A-Za-z0-9_-]{1,80}",
            local in "[a-z0-9._+-]{1,30}",
            exp in 1_001i64..i64::MAX,
            flip in 0usize..64,
        ) {
            let mut p = params();
            p.run_id = RunId(run);
            p.approver = format!("{local}@example.com");
            p.expires = exp;
            let stack = p.stack.clone();
            if Identity::parse(&p.approver) == Ok(Identity::Email(p.approver.clone())) {
                let q = parsed(&query(&keys(), &p));
                prop_assert_eq!(verify(&keys(), &stack, &q, 1_000), Ok(p));
                let mut t = q.clone();
                let sig = t["sig"].clone();
                let mut bytes = sig.into_bytes();
                bytes[flip] = if bytes[flip] == b'0' { b'1' } else { b'0' };
                t.insert("sig".into(), String::from_utf8(bytes).unwrap_or_default());
                prop_assert_eq!(verify(&keys(), &stack, &t, 1_000), Err(LinkError::BadSignature));
            }
        }
    }
}
