//! IAM for the local Lambda host.
//!
//! Locally, Lifeboat's functions are real binaries whose AWS SDK for Rust clients point
//! (`AWS_ENDPOINT_URL`) at an HTTP proxy in front of moto. moto's own IAM is too coarse (it
//! passes resource `*` for every non-S3 service and denies any statement with a `Condition`),
//! so the proxy enforces IAM itself, in two steps this crate provides:
//!
//! 1. [`classify`]: what one SDK request asks for in IAM terms — the action as named in the
//!    Service Authorization Reference, the resource ARNs and the condition keys the request
//!    carries ([`Authorization`]). A request this crate cannot map is [`Unclassified`], so a new
//!    call fails closed with a message naming it instead of slipping through.
//! 2. [`evaluate`] / [`verdict`]: the calling function's identity policy (from the SAM
//!    template, resolved to JSON with real ARNs) against that authorization, with AWS logic.
//!
//! A refusal is answered with [`denial`]: the status, content type and body real AWS sends for
//! that protocol, with AWS's own message, so the local drill fails on exactly what the first
//! real failover would fail on.
//!
//! Scope: identity-based policies only (no resource policies, SCPs, boundaries or session
//! policies); one primary action per request (a request that AWS also authorizes against a
//! second action, such as `iam:PassRole` for `PutBucketReplication`, is checked for its
//! primary action only).

use std::collections::BTreeMap;

mod cbor;
mod condition;
mod denial;
mod health;
mod json;
mod policy;
mod query;
mod request;
mod route53;
mod s3;

pub use denial::denial;
pub use policy::{evaluate, verdict, Decision, Verdict};
pub use request::{access_key_id, classify, protocol_of};
pub use s3::list_bucket_for_missing_key;

/// What one AWS API request asks for, in IAM terms: the request's primary action only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `service:Action`, service prefix lowercase and action spelled as in the Service
    /// Authorization Reference (`s3:GetObject`, `states:StartExecution`).
    pub action: String,
    /// The ARNs the action is authorized against, or `["*"]` for actions without a resource
    /// type (and when the request names no resource). Every one must be allowed.
    pub resources: Vec<String>,
    /// The condition keys the request carries (`s3:prefix`, `aws:SecureTransport`, ...), each
    /// with its values (several for multi-valued keys).
    pub context: BTreeMap<String, Vec<String>>,
}

impl Authorization {
    /// An authorization with no condition keys yet.
    pub fn new(action: impl Into<String>, resources: Vec<String>) -> Self {
        Self {
            action: action.into(),
            resources,
            context: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a condition key.
    pub fn with(mut self, key: &str, values: Vec<String>) -> Self {
        self.context.insert(key.to_string(), values);
        self
    }

    /// True for the calls AWS answers whatever the policies say (`sts:GetCallerIdentity`:
    /// "No permissions are required to perform this operation", even under an explicit
    /// deny). [`evaluate`] already returns `Allowed` for these.
    pub fn needs_no_permission(&self) -> bool {
        self.action.eq_ignore_ascii_case("sts:GetCallerIdentity")
    }
}

/// Which wire protocol the request used: decides the shape of the denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// S3's REST-XML (path-style: `/bucket/key`).
    S3,
    /// awsJson 1.0/1.1: `X-Amz-Target: Prefix.Operation` (Step Functions, SSM, Secrets
    /// Manager, EventBridge).
    Json,
    /// awsQuery: form body `Action=...&Version=...` (SNS, STS).
    Query,
    /// REST-XML with an `ErrorResponse` envelope (Route 53).
    RestXml,
    /// Smithy rpc-v2-cbor: `POST /service/{Service}/operation/{Op}` (AWS Health).
    Cbor,
}

/// One HTTP request as the proxy received it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target: path (percent-encoded, as on the wire) and optional `?query`.
    pub path_and_query: &'a str,
    /// Header names lowercase; values as received.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Where the request runs and what the proxy knows that the request does not carry.
pub struct Env<'a> {
    pub region: &'a str,
    pub account: &'a str,
    /// `aws` (or `aws-cn`, `aws-us-gov`): the partition ARNs are built in.
    pub partition: &'a str,
    /// Secrets Manager: the full ARN of a secret given by name (real policies name secret ARNs,
    /// which end in a random suffix a name does not carry). None: the ARN is built without it.
    pub secret_arn: &'a dyn Fn(&str) -> Option<String>,
    /// Step Functions: the state machine ARN a task token belongs to (`SendTask*` are
    /// authorized against it), when the proxy knows the token.
    pub token_state_machine: &'a dyn Fn(&str) -> Option<String>,
}

/// A request this crate cannot map to IAM terms. The proxy refuses it (fail closed) and the
/// message names the call so the mapping can be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "local IAM cannot classify {method} {path} (service {service}, operation {operation}): \
     {reason}; add it to tests/local-iam before a function makes this call"
)]
pub struct Unclassified {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    /// The service as detected (SigV4 credential scope, target prefix, ...), or `unknown`.
    pub service: String,
    /// The `X-Amz-Target`, query `Action`, or path operation, or `-`.
    pub operation: String,
    pub reason: String,
}
