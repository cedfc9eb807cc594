//! Which service and protocol a request is for, and the shared request helpers.
//!
//! The service is read, in order, from:
//! 1. the SigV4 credential scope in `Authorization: AWS4-HMAC-SHA256
//!    Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...` — the signing name, the most
//!    reliable signal (the SDK signs every request it sends);
//! 2. `X-Amz-Target: Prefix.Operation` (awsJson services);
//! 3. a form body's `Version` (awsQuery: `2010-03-31` SNS, `2011-06-15` STS);
//! 4. the path: `/2013-04-01/...` Route 53, `/service/AWSHealth_20160804/...` Health;
//! 5. otherwise S3 (path-style REST).

use crate::{health, json, query, route53, s3};
use crate::{Authorization, Env, Protocol, Request, Unclassified};

/// The services this crate maps, by SigV4 signing name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Service {
    S3,
    States,
    Ssm,
    SecretsManager,
    Events,
    Sns,
    Sts,
    Route53,
    Health,
    /// Route 53 ARC's cluster data plane (routing control states).
    RecoveryCluster,
    Unknown(String),
}

impl Service {
    fn from_signing_name(name: &str) -> Self {
        match name {
            "s3" => Self::S3,
            "states" => Self::States,
            "ssm" => Self::Ssm,
            "secretsmanager" => Self::SecretsManager,
            "events" => Self::Events,
            "sns" => Self::Sns,
            "sts" => Self::Sts,
            "route53" => Self::Route53,
            "health" => Self::Health,
            "route53-recovery-cluster" => Self::RecoveryCluster,
            other => Self::Unknown(other.to_string()),
        }
    }

    fn from_target(target: &str) -> Self {
        let prefix = target.split('.').next().unwrap_or_default();
        match prefix {
            "AWSStepFunctions" => Self::States,
            "AmazonSSM" => Self::Ssm,
            "secretsmanager" => Self::SecretsManager,
            "AWSEvents" => Self::Events,
            "ToggleCustomerAPI" => Self::RecoveryCluster,
            other => Self::Unknown(format!("target prefix {other}")),
        }
    }

    /// The `X-Amz-Target` prefix of an awsJson service.
    pub(crate) fn target_prefix(&self) -> Option<&'static str> {
        match self {
            Self::States => Some("AWSStepFunctions"),
            Self::Ssm => Some("AmazonSSM"),
            Self::SecretsManager => Some("secretsmanager"),
            Self::Events => Some("AWSEvents"),
            Self::RecoveryCluster => Some("ToggleCustomerAPI"),
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Self::S3 => "s3",
            Self::States => "states",
            Self::Ssm => "ssm",
            Self::SecretsManager => "secretsmanager",
            Self::Events => "events",
            Self::Sns => "sns",
            Self::Sts => "sts",
            Self::Route53 => "route53",
            Self::Health => "health",
            Self::RecoveryCluster => "route53-recovery-cluster",
            Self::Unknown(name) => name,
        }
    }

    fn protocol(&self) -> Option<Protocol> {
        match self {
            Self::S3 => Some(Protocol::S3),
            Self::States
            | Self::Ssm
            | Self::SecretsManager
            | Self::Events
            | Self::RecoveryCluster => Some(Protocol::Json),
            Self::Sns | Self::Sts => Some(Protocol::Query),
            Self::Route53 => Some(Protocol::RestXml),
            Self::Health => Some(Protocol::Cbor),
            Self::Unknown(_) => None,
        }
    }
}

/// What one request asks for in IAM terms, and the protocol to shape a denial in.
///
/// Every authorization also carries the global keys AWS puts in every request context:
/// `aws:SecureTransport` = `true` (in AWS the SDK always uses HTTPS, even though the local
/// proxy is plain HTTP), `aws:RequestedRegion` (the signing region) and `aws:PrincipalAccount`.
pub fn classify(req: &Request, env: &Env) -> Result<(Protocol, Authorization), Unclassified> {
    // A regional resource is in the region the request is signed for (the endpoint's), which
    // is not always the caller's home region (e.g. a rule read in the primary region).
    let region = credential_scope(req).map_or(env.region, |scope| scope.region);
    let scoped = Env {
        region,
        account: env.account,
        partition: env.partition,
        secret_arn: env.secret_arn,
        token_state_machine: env.token_state_machine,
    };
    let env = &scoped;
    let service = detect(req);
    let mut auth = match &service {
        Service::S3 => s3::classify(req, env)?,
        Service::States
        | Service::Ssm
        | Service::SecretsManager
        | Service::Events
        | Service::RecoveryCluster => json::classify(&service, req, env)?,
        Service::Sns | Service::Sts => query::classify(&service, req, env)?,
        Service::Route53 => route53::classify(req, env)?,
        Service::Health => health::classify(req, env)?,
        Service::Unknown(name) => {
            return Err(unclassified(
                req,
                name,
                "-",
                "no IAM mapping for this service",
            ))
        }
    };
    let globals = [
        ("aws:SecureTransport", "true"),
        ("aws:RequestedRegion", region),
        ("aws:PrincipalAccount", env.account),
    ];
    for (key, value) in globals {
        auth.context
            .insert(key.to_string(), vec![value.to_string()]);
    }
    let protocol = service.protocol().unwrap_or(Protocol::S3);
    Ok((protocol, auth))
}

/// The protocol a request uses, even for a service this crate does not map (so an
/// [`Unclassified`] refusal can still be shaped the way the caller's SDK parses errors).
pub fn protocol_of(req: &Request) -> Protocol {
    if let Some(protocol) = detect(req).protocol() {
        return protocol;
    }
    let path = path_of(req);
    if header(req, "x-amz-target").is_some() {
        Protocol::Json
    } else if is_form(req) {
        Protocol::Query
    } else if path.starts_with("/service/")
        || header(req, "smithy-protocol").is_some_and(|p| p.eq_ignore_ascii_case("rpc-v2-cbor"))
    {
        Protocol::Cbor
    } else if path.starts_with("/2013-04-01/") {
        Protocol::RestXml
    } else {
        Protocol::S3
    }
}

/// The access key id the request was signed with (from the SigV4 credential scope): how the
/// proxy tells which function is calling, since each gets its own key. None when unsigned.
pub fn access_key_id<'a>(req: &Request<'a>) -> Option<&'a str> {
    credential_scope(req).map(|scope| scope.access_key)
}

/// The parts of `Credential=AKID/DATE/REGION/SERVICE/aws4_request`.
struct Scope<'a> {
    access_key: &'a str,
    region: &'a str,
    service: &'a str,
}

fn credential_scope<'a>(req: &Request<'a>) -> Option<Scope<'a>> {
    let auth = header(req, "authorization")?;
    let start = auth.find("Credential=")? + "Credential=".len();
    let credential = auth[start..]
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()?;
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [access_key, _date, region, service, "aws4_request"] if !access_key.is_empty() => {
            Some(Scope {
                access_key,
                region,
                service,
            })
        }
        _ => None,
    }
}

fn detect(req: &Request) -> Service {
    if let Some(scope) = credential_scope(req) {
        return Service::from_signing_name(scope.service);
    }
    if let Some(target) = header(req, "x-amz-target") {
        return Service::from_target(target);
    }
    if is_form(req) {
        let form = Form::parse(req);
        return match form.get("Version") {
            Some("2010-03-31") => Service::Sns,
            Some("2011-06-15") => Service::Sts,
            other => Service::Unknown(format!("query Version {}", other.unwrap_or("-"))),
        };
    }
    let path = path_of(req);
    if path == "/2013-04-01" || path.starts_with("/2013-04-01/") {
        Service::Route53
    } else if path.starts_with("/service/AWSHealth_") {
        Service::Health
    } else if path.starts_with("/service/") {
        Service::Unknown("rpc-v2-cbor service".to_string())
    } else {
        Service::S3
    }
}

fn is_form(req: &Request) -> bool {
    header(req, "content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
        || req.body.starts_with(b"Action=")
}

/// A header's value (names are matched case-insensitively, though the proxy lowercases them).
pub(crate) fn header<'a>(req: &Request<'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The path without the query string (still percent-encoded).
pub(crate) fn path_of<'a>(req: &Request<'a>) -> &'a str {
    req.path_and_query
        .split_once('?')
        .map_or(req.path_and_query, |(path, _)| path)
}

/// The query string without `?` (empty when none).
pub(crate) fn query_of<'a>(req: &Request<'a>) -> &'a str {
    req.path_and_query
        .split_once('?')
        .map_or("", |(_, query)| query)
}

/// Percent-decodes (`+` as space in query strings only); invalid escapes stay literal and
/// invalid UTF-8 is replaced, so garbage never fails here.
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
                continue;
            }
            (b'+', _) if plus_as_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One query parameter: decoded name, and decoded value unless the parameter had no `=`
/// (S3 subresources such as `?policy` have none).
pub(crate) struct Param {
    pub name: String,
    pub value: Option<String>,
}

pub(crate) fn parse_query(query: &str) -> Vec<Param> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => Param {
                name: percent_decode(name, true),
                value: Some(percent_decode(value, true)),
            },
            None => Param {
                name: percent_decode(pair, true),
                value: None,
            },
        })
        .collect()
}

/// An awsQuery form (`application/x-www-form-urlencoded` body; the query string when the
/// body carries no `Action`).
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(req: &Request) -> Self {
        let body: Vec<(String, String)> =
            url::form_urlencoded::parse(req.body).into_owned().collect();
        if body.iter().any(|(name, _)| name == "Action") {
            return Self(body);
        }
        let query = url::form_urlencoded::parse(query_of(req).as_bytes())
            .into_owned()
            .collect();
        Self(query)
    }

    /// A non-empty parameter value.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// The resource list for one optional ARN: `["*"]` when the request names none.
pub(crate) fn one(resource: Option<String>) -> Vec<String> {
    match resource {
        Some(arn) if !arn.is_empty() => vec![arn],
        _ => star(),
    }
}

/// The resource list of an action without a resource type.
pub(crate) fn star() -> Vec<String> {
    vec!["*".to_string()]
}

/// A non-empty list, or `["*"]`.
pub(crate) fn many(resources: Vec<String>) -> Vec<String> {
    if resources.is_empty() {
        star()
    } else {
        resources
    }
}

pub(crate) fn unclassified(
    req: &Request,
    service: &str,
    operation: &str,
    reason: &str,
) -> Unclassified {
    Unclassified {
        method: req.method.to_string(),
        path: path_of(req).to_string(),
        service: service.to_string(),
        operation: operation.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_garbage_literal() {
        assert_eq!(percent_decode("a%2Fb%20c", false), "a/b c");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%", false), "%");
        assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
    }

    #[test]
    fn query_params_distinguish_valueless_subresources() {
        let params = parse_query("policy&prefix=&x-id=GetObject");
        let shape: Vec<(&str, Option<&str>)> = params
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_deref()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("policy", None),
                ("prefix", Some("")),
                ("x-id", Some("GetObject"))
            ]
        );
    }
}
