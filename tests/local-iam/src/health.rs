//! AWS Health: Smithy rpc-v2-cbor, `POST /service/AWSHealth_20160804/operation/{Op}` with a
//! CBOR map body (`Content-Type: application/cbor`, `smithy-protocol: rpc-v2-cbor`).
//!
//! Resources: `DescribeEventDetails` and `DescribeAffectedEntities` are authorized against the
//! event ARNs the body names (`eventArns`, `filter.eventArns`:
//! `arn:aws:health:{region}::event/{service}/{type}/{id}`, which is what a policy's
//! `arn:${AWS::Partition}:health:*::event/*` grants); a body without them gives `*`. The
//! other operations have no resource type: `*`. moto does not emulate Health, so these calls
//! fail after authorization anyway; what matters is that a missing grant fails first, as in
//! AWS.

use crate::cbor::{self, Item};
use crate::request::{many, path_of, star, unclassified};
use crate::{Authorization, Env, Request, Unclassified};

const PREFIX: &str = "/service/AWSHealth_20160804/operation/";

pub(crate) fn classify(req: &Request, _env: &Env) -> Result<Authorization, Unclassified> {
    let path = path_of(req);
    let op = path.strip_prefix(PREFIX).unwrap_or("");
    let body = cbor::decode(req.body);
    let event_arns = |item: Option<&Item>| many(item.map(Item::texts).unwrap_or_default());
    let resources = match op {
        "DescribeEventDetails" => event_arns(body.as_ref().and_then(|b| b.get("eventArns"))),
        "DescribeAffectedEntities" => event_arns(
            body.as_ref()
                .and_then(|b| b.get("filter"))
                .and_then(|f| f.get("eventArns")),
        ),
        "DescribeEvents"
        | "DescribeEventTypes"
        | "DescribeEventAggregates"
        | "DescribeEntityAggregates" => star(),
        _ => {
            let operation = if op.is_empty() { "-" } else { op };
            return Err(unclassified(
                req,
                "health",
                operation,
                "operation not mapped",
            ));
        }
    };
    Ok(Authorization::new(format!("health:{op}"), resources))
}
