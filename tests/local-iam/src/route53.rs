//! Route 53: REST-XML under `/2013-04-01/`. Wire format relied on: `{METHOD}
//! /2013-04-01/{collection}[/{Id}[/{sub}]]`, the Id a percent-encoded path label. The SDK
//! trims `/hostedzone/` and `/change/` prefixes from ids, but an untrimmed
//! `hostedzone%2FZ123` is accepted too. Resources: `arn:{p}:route53:::hostedzone/{Id}`,
//! `change/{Id}`, `healthcheck/{Id}`; collection operations are authorized against `*`.
//! The record-set condition keys (`route53:ChangeResourceRecordSets*`) need the XML body and
//! are not provided.

use crate::request::{path_of, percent_decode, star, unclassified};
use crate::{Authorization, Env, Request, Unclassified};

pub(crate) fn classify(req: &Request, env: &Env) -> Result<Authorization, Unclassified> {
    let path = path_of(req);
    let rest = path.strip_prefix("/2013-04-01").unwrap_or(path);
    let rest = rest.trim_start_matches('/').trim_end_matches('/');
    let segments: Vec<String> = rest.split('/').map(|s| percent_decode(s, false)).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method.to_ascii_uppercase();
    let fail = |reason: &str| unclassified(req, "route53", &format!("{method} {rest}"), reason);
    let (action, target) =
        operation(&method, &segments).ok_or_else(|| fail("operation not mapped"))?;
    let resources = match target {
        None => star(),
        Some((kind, raw_id)) => {
            let id = trim_id(raw_id);
            if id.is_empty() {
                return Err(fail("empty resource id"));
            }
            vec![format!("arn:{}:route53:::{kind}/{id}", env.partition)]
        }
    };
    Ok(Authorization::new(format!("route53:{action}"), resources))
}

/// The action, and the (resource type, id) it is authorized against (None: `*`).
fn operation<'s>(
    method: &str,
    segments: &[&'s str],
) -> Option<(&'static str, Option<(&'s str, &'s str)>)> {
    let zone = |id| Some(("hostedzone", id));
    let check = |id| Some(("healthcheck", id));
    Some(match (method, segments) {
        ("GET", ["hostedzone"]) => ("ListHostedZones", None),
        ("POST", ["hostedzone"]) => ("CreateHostedZone", None),
        ("GET", ["hostedzone", id]) => ("GetHostedZone", zone(*id)),
        ("POST", ["hostedzone", id]) => ("UpdateHostedZoneComment", zone(*id)),
        ("DELETE", ["hostedzone", id]) => ("DeleteHostedZone", zone(*id)),
        ("POST", ["hostedzone", id, "rrset"]) => ("ChangeResourceRecordSets", zone(*id)),
        ("GET", ["hostedzone", id, "rrset"]) => ("ListResourceRecordSets", zone(*id)),
        ("GET", ["hostedzonecount"]) => ("GetHostedZoneCount", None),
        ("GET", ["hostedzonesbyname"]) => ("ListHostedZonesByName", None),
        ("GET", ["change", id]) => ("GetChange", Some(("change", *id))),
        ("GET", ["testdnsanswer"]) => ("TestDNSAnswer", None),
        ("GET", ["healthcheck"]) => ("ListHealthChecks", None),
        ("POST", ["healthcheck"]) => ("CreateHealthCheck", None),
        ("GET", ["healthcheckcount"]) => ("GetHealthCheckCount", None),
        ("GET", ["healthcheck", id]) => ("GetHealthCheck", check(*id)),
        ("POST", ["healthcheck", id]) => ("UpdateHealthCheck", check(*id)),
        ("DELETE", ["healthcheck", id]) => ("DeleteHealthCheck", check(*id)),
        ("GET", ["healthcheck", id, "status"]) => ("GetHealthCheckStatus", check(*id)),
        ("GET", ["healthcheck", id, "lastfailurereason"]) => {
            ("GetHealthCheckLastFailureReason", check(*id))
        }
        ("GET", ["tags", kind, id]) => ("ListTagsForResource", Some((*kind, *id))),
        ("POST", ["tags", kind, id]) => ("ChangeTagsForResource", Some((*kind, *id))),
        _ => return None,
    })
}

fn trim_id(id: &str) -> &str {
    let id = id.trim_start_matches('/');
    ["hostedzone/", "change/", "healthcheck/"]
        .iter()
        .find_map(|prefix| id.strip_prefix(prefix))
        .unwrap_or(id)
}
