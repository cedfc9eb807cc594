//! Denials shaped as each protocol's real AWS error, with AWS's own message:
//!
//! `User: {principal} is not authorized to perform: {action} on resource: {resource} because
//! no identity-based policy allows the {action} action` (implicit), or `... on resource:
//! {resource} with an explicit deny in an identity-based policy` (explicit).
//!
//! Service quirks reproduced: S3 quotes the resource (`on resource:
//! "arn:aws:s3:::b/k"`); SNS spells the action `SNS:Publish`.

use crate::cbor;
use crate::{Authorization, Decision, Protocol};

/// The request id the local proxy reports in error bodies.
const REQUEST_ID: &str = "00000000-0000-0000-0000-local-iam";

/// The HTTP status, content type and body AWS answers a refused request with.
///
/// - S3: 403 `application/xml` `<Error><Code>AccessDenied</Code><Message>..` (for a HEAD the
///   caller sends no body).
/// - Json: 400 `{"__type":"AccessDeniedException","message":..}`; the caller also sets
///   `x-amzn-errortype: AccessDeniedException`.
/// - Query: 403 `text/xml` `ErrorResponse`, `Type` Sender, `Code` `AuthorizationError` (SNS)
///   or `AccessDenied` (STS).
/// - RestXml (Route 53): 403 `text/xml` `ErrorResponse`, `Code` `AccessDenied`.
/// - Cbor (Health): 403 `application/cbor` map `{"__type": "AccessDeniedException",
///   "message": ..}`; the caller also sets `smithy-protocol: rpc-v2-cbor`, which the SDK
///   requires on rpc-v2-cbor responses.
///
/// `resource` is the resource refused ([`crate::Verdict::resource`]). `Decision::Allowed`
/// is a caller error; it is worded as an implicit deny.
pub fn denial(
    protocol: &Protocol,
    principal: &str,
    auth: &Authorization,
    resource: &str,
    decision: &Decision,
) -> (u16, &'static str, Vec<u8>) {
    let action = match auth.action.strip_prefix("sns:") {
        Some(op) => format!("SNS:{op}"),
        None => auth.action.clone(),
    };
    let resource = match protocol {
        Protocol::S3 => format!("\"{resource}\""),
        _ => resource.to_string(),
    };
    let message = match decision {
        Decision::ExplicitDeny => format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource} \
             with an explicit deny in an identity-based policy"
        ),
        Decision::ImplicitDeny | Decision::Allowed => format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource} \
             because no identity-based policy allows the {action} action"
        ),
    };
    match protocol {
        Protocol::S3 => (403, "application/xml", s3_body(&message)),
        Protocol::Json => (400, json_content_type(&auth.action), json_body(&message)),
        Protocol::Query => query_error(&auth.action, &message),
        Protocol::RestXml => {
            let xmlns = "https://route53.amazonaws.com/doc/2013-04-01/";
            (
                403,
                "text/xml",
                error_response(xmlns, "AccessDenied", &message),
            )
        }
        Protocol::Cbor => {
            let body = cbor::encode_text_map(&[
                ("__type", "AccessDeniedException"),
                ("message", &message),
            ]);
            (403, "application/cbor", body)
        }
    }
}

fn s3_body(message: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
         <Message>{}</Message><RequestId>{REQUEST_ID}</RequestId><HostId>local-iam</HostId>\
         </Error>",
        xml_escape(message)
    )
    .into_bytes()
}

/// awsJson 1.0 for Step Functions, 1.1 for the others.
fn json_content_type(action: &str) -> &'static str {
    if action.starts_with("states:") {
        "application/x-amz-json-1.0"
    } else {
        "application/x-amz-json-1.1"
    }
}

fn json_body(message: &str) -> Vec<u8> {
    serde_json::json!({"__type": "AccessDeniedException", "message": message})
        .to_string()
        .into_bytes()
}

fn query_error(action: &str, message: &str) -> (u16, &'static str, Vec<u8>) {
    let (xmlns, code) = if action.starts_with("sts:") {
        ("https://sts.amazonaws.com/doc/2011-06-15/", "AccessDenied")
    } else {
        (
            "http://sns.amazonaws.com/doc/2010-03-31/",
            "AuthorizationError",
        )
    };
    (403, "text/xml", error_response(xmlns, code, message))
}

fn error_response(xmlns: &str, code: &str, message: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{xmlns}\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{}</Message></Error><RequestId>{REQUEST_ID}</RequestId>\
         </ErrorResponse>",
        xml_escape(message)
    )
    .into_bytes()
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
