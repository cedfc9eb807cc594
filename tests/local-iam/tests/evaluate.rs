//! Table-driven tests of policy evaluation (AWS logic), denial shapes, and the S3
//! missing-key ListBucket check.

use local_iam::{
    denial, evaluate, list_bucket_for_missing_key, verdict, Authorization, Decision, Protocol,
};
use serde_json::{json, Value};

use Decision::{Allowed, ExplicitDeny, ImplicitDeny};

const ROLE: &str = "arn:aws:sts::123456789012:assumed-role/lifeboat-notify-role/lifeboat-notify";

fn auth(action: &str, resources: &[&str], context: &[(&str, &[&str])]) -> Authorization {
    let mut auth = Authorization::new(action, resources.iter().map(|r| r.to_string()).collect());
    for (key, values) in context {
        auth = auth.with(key, values.iter().map(|v| v.to_string()).collect());
    }
    auth
}

fn doc(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn allow(action: Value, resource: Value) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

/// The repository's own ledger-listing grant.
fn ledger_listing() -> Value {
    json!({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::ledger",
           "Condition": {"StringLike": {"s3:prefix": ["events/*", "monitor/*"]}}})
}

/// The repository's canary-writer grant.
fn canary_writer() -> Value {
    json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::*/_lifeboat/*",
           "Condition": {"StringEquals": {"s3:ResourceAccount": "123456789012"}}})
}

const GET: &str = "s3:GetObject";
const OBJ: &str = "arn:aws:s3:::ledger/runs/r1/plan.json";

#[rustfmt::skip]
#[test]
fn evaluates_statements_like_aws() {
    let acct: &[(&str, &[&str])] = &[("s3:ResourceAccount", &["123456789012"])];
    let cases: Vec<(&str, Value, Authorization, Decision)> = vec![
        ("exact grant", doc(json!([allow(json!(GET), json!(OBJ))])), auth(GET, &[OBJ], &[]), Allowed),
        ("no statements", doc(json!([])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("empty policy value", Value::Null, auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("other action", doc(json!([allow(json!("s3:PutObject"), json!(OBJ))])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("action wildcard", doc(json!([allow(json!("s3:Get*"), json!(OBJ))])), auth(GET, &[OBJ], &[]), Allowed),
        ("action ? wildcard", doc(json!([allow(json!("s3:GetObjec?"), json!(OBJ))])), auth(GET, &[OBJ], &[]), Allowed),
        ("action * everything", doc(json!([allow(json!("*"), json!("*"))])), auth(GET, &[OBJ], &[]), Allowed),
        ("action case-insensitive", doc(json!([allow(json!("S3:getobject"), json!(OBJ))])), auth(GET, &[OBJ], &[]), Allowed),
        ("action list", doc(json!([allow(json!(["s3:PutObject", GET]), json!(OBJ))])), auth(GET, &[OBJ], &[]), Allowed),
        ("action of another service", doc(json!([allow(json!("sns:Get*"), json!("*"))])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("resource * crosses / and :", doc(json!([allow(json!(GET), json!("arn:aws:s3:::ledger/*"))])), auth(GET, &["arn:aws:s3:::ledger/a/b/c"], &[]), Allowed),
        ("resource pattern for the bucket is not its objects", doc(json!([allow(json!(GET), json!("arn:aws:s3:::ledger"))])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("resource case-sensitive", doc(json!([allow(json!(GET), json!("arn:aws:s3:::Ledger/*"))])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("resource ? wildcard", doc(json!([allow(json!(GET), json!("arn:aws:s3:::ledger/runs/r?/plan.json"))])), auth(GET, &[OBJ], &[]), Allowed),
        ("request * needs statement *", doc(json!([allow(json!("sns:GetSubscriptionAttributes"), json!("arn:aws:sns:*"))])), auth("sns:GetSubscriptionAttributes", &["*"], &[]), ImplicitDeny),
        ("request * matched by *", doc(json!([allow(json!("sns:GetSubscriptionAttributes"), json!("*"))])), auth("sns:GetSubscriptionAttributes", &["*"], &[]), Allowed),
        ("health events grant is not *", doc(json!([allow(json!("health:DescribeEvents"), json!("arn:aws:health:*::event/*"))])), auth("health:DescribeEvents", &["*"], &[]), ImplicitDeny),
        ("health event ARN under the repo grant", doc(json!([allow(json!("health:DescribeEventDetails"), json!("arn:aws:health:*::event/*"))])), auth("health:DescribeEventDetails", &["arn:aws:health:us-east-1::event/EC2/X/Y"], &[]), Allowed),
        ("NotAction allows the rest", doc(json!([{"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}])), auth(GET, &[OBJ], &[]), Allowed),
        ("NotAction excludes", doc(json!([{"Effect": "Allow", "NotAction": ["s3:Delete*"], "Resource": "*"}])), auth("s3:DeleteObject", &[OBJ], &[]), ImplicitDeny),
        ("NotResource allows the rest", doc(json!([{"Effect": "Allow", "Action": GET, "NotResource": "arn:aws:s3:::secret/*"}])), auth(GET, &[OBJ], &[]), Allowed),
        ("NotResource excludes", doc(json!([{"Effect": "Allow", "Action": GET, "NotResource": "arn:aws:s3:::secret/*"}])), auth(GET, &["arn:aws:s3:::secret/k"], &[]), ImplicitDeny),
        ("explicit deny beats allow", doc(json!([allow(json!("s3:*"), json!("*")), {"Effect": "Deny", "Action": GET, "Resource": OBJ}])), auth(GET, &[OBJ], &[]), ExplicitDeny),
        ("deny of another resource", doc(json!([allow(json!("s3:*"), json!("*")), {"Effect": "Deny", "Action": GET, "Resource": "arn:aws:s3:::other/*"}])), auth(GET, &[OBJ], &[]), Allowed),
        ("deny with NotResource", doc(json!([allow(json!("s3:*"), json!("*")), {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::ledger/*"}])), auth(GET, &["arn:aws:s3:::data/k"], &[]), ExplicitDeny),
        ("deny without allow is explicit", doc(json!({"Effect": "Deny", "Action": "*", "Resource": "*"})), auth(GET, &[OBJ], &[]), ExplicitDeny),
        ("several resources all allowed", doc(json!([allow(json!("ssm:GetParameters"), json!("arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/*"))])),
            auth("ssm:GetParameters", &["arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/a", "arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/b"], &[]), Allowed),
        ("several resources, one not allowed", doc(json!([allow(json!("ssm:GetParameters"), json!("arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/*"))])),
            auth("ssm:GetParameters", &["arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/a", "arn:aws:ssm:us-east-1:123456789012:parameter/other"], &[]), ImplicitDeny),
        ("several resources, one explicitly denied", doc(json!([allow(json!("ssm:*"), json!("*")), {"Effect": "Deny", "Action": "ssm:*", "Resource": "*/other"}])),
            auth("ssm:GetParameters", &["arn:aws:ssm:us-east-1:123456789012:parameter/a", "arn:aws:ssm:us-east-1:123456789012:parameter/other"], &[]), ExplicitDeny),
        ("statement given as one object", doc(allow(json!(GET), json!(OBJ))), auth(GET, &[OBJ], &[]), Allowed),
        ("array of documents (inline policies)", json!([doc(json!([allow(json!("sns:Publish"), json!("*"))])), doc(json!([allow(json!(GET), json!(OBJ))]))]), auth(GET, &[OBJ], &[]), Allowed),
        ("deny in another document", json!([doc(json!([allow(json!(GET), json!(OBJ))])), doc(json!([{"Effect": "Deny", "Action": "s3:Get*", "Resource": "*"}]))]), auth(GET, &[OBJ], &[]), ExplicitDeny),
        ("both Action and NotAction: never applies", doc(json!([{"Effect": "Allow", "Action": "*", "NotAction": "s3:Put*", "Resource": "*"}])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("no Resource: never applies", doc(json!([{"Effect": "Allow", "Action": "*"}])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("Effect is case-sensitive", doc(json!([{"Effect": "allow", "Action": "*", "Resource": "*"}])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("Principal ignored", doc(json!([{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": GET, "Resource": OBJ}])), auth(GET, &[OBJ], &[]), Allowed),
        ("GetCallerIdentity needs no permission", doc(json!([{"Effect": "Deny", "Action": "*", "Resource": "*"}])), auth("sts:GetCallerIdentity", &["*"], &[]), Allowed),
        ("ledger listing: allowed prefix", doc(json!([ledger_listing()])), auth("s3:ListBucket", &["arn:aws:s3:::ledger"], &[("s3:prefix", &["monitor/2025/"])]), Allowed),
        ("ledger listing: other prefix", doc(json!([ledger_listing()])), auth("s3:ListBucket", &["arn:aws:s3:::ledger"], &[("s3:prefix", &["runs/"])]), ImplicitDeny),
        ("ledger listing: no prefix is \"\"", doc(json!([ledger_listing()])), auth("s3:ListBucket", &["arn:aws:s3:::ledger"], &[("s3:prefix", &[""])]), ImplicitDeny),
        ("ledger listing: HeadBucket carries no prefix", doc(json!([ledger_listing()])), auth("s3:ListBucket", &["arn:aws:s3:::ledger"], &[]), ImplicitDeny),
        ("prefix condition never applies to GetObject", doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringLike": {"s3:prefix": "*"}}}])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("canary writer: own account", doc(json!([canary_writer()])), auth("s3:PutObject", &["arn:aws:s3:::data-eu/_lifeboat/canary.json"], acct), Allowed),
        ("canary writer: other account", doc(json!([canary_writer()])), auth("s3:PutObject", &["arn:aws:s3:::data-eu/_lifeboat/canary.json"], &[("s3:ResourceAccount", &["999999999999"])]), ImplicitDeny),
        ("canary writer: outside _lifeboat/", doc(json!([canary_writer()])), auth("s3:PutObject", &["arn:aws:s3:::data-eu/tables/x"], acct), ImplicitDeny),
        ("canary writer: GetObject", doc(json!([canary_writer()])), auth(GET, &["arn:aws:s3:::data-eu/_lifeboat/canary.json"], acct), ImplicitDeny),
        ("unknown operator: Allow fails closed", doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}])), auth(GET, &[OBJ], &[]), ImplicitDeny),
        ("unknown operator: Deny does not apply", doc(json!([allow(json!("*"), json!("*")), {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}])), auth(GET, &[OBJ], &[]), Allowed),
        ("condition deny on TLS", doc(json!([allow(json!("*"), json!("*")), {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}])), auth(GET, &[OBJ], &[("aws:SecureTransport", &["true"])]), Allowed),
    ];
    assert!(cases.len() >= 25);
    for (name, policy, authorization, expected) in cases {
        assert_eq!(evaluate(&policy, &authorization), expected, "{name}");
    }
}

/// One condition block under `Allow * *`: does the statement apply to this context?
#[rustfmt::skip]
#[test]
fn evaluates_condition_operators() {
    type Ctx = &'static [(&'static str, &'static [&'static str])];
    let region: Ctx = &[("aws:RequestedRegion", &["us-east-1"])];
    let keys: Ctx = &[("s3:max-keys", &["100"])];
    let sources: Ctx = &[("events:source", &["lifeboat", "lifeboat.drill"])];
    let none: Ctx = &[];
    let cases: Vec<(&str, Value, Ctx, bool)> = vec![
        ("StringEquals match", json!({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}), region, true),
        ("StringEquals mismatch", json!({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}), region, false),
        ("StringEquals values OR", json!({"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}), region, true),
        ("StringEquals is case-sensitive", json!({"StringEquals": {"aws:RequestedRegion": "US-EAST-1"}}), region, false),
        ("StringEquals missing key", json!({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}), none, false),
        ("key names are case-insensitive", json!({"StringEquals": {"AWS:requestedregion": "us-east-1"}}), region, true),
        ("StringNotEquals match", json!({"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}), region, true),
        ("StringNotEquals mismatch", json!({"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}), region, false),
        ("StringNotEquals missing key holds", json!({"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}), none, true),
        ("StringEqualsIgnoreCase", json!({"StringEqualsIgnoreCase": {"aws:RequestedRegion": "US-EAST-1"}}), region, true),
        ("StringNotEqualsIgnoreCase", json!({"StringNotEqualsIgnoreCase": {"aws:RequestedRegion": "US-EAST-1"}}), region, false),
        ("StringLike", json!({"StringLike": {"aws:RequestedRegion": "us-*"}}), region, true),
        ("StringLike ?", json!({"StringLike": {"aws:RequestedRegion": "us-east-?"}}), region, true),
        ("StringLike mismatch", json!({"StringLike": {"aws:RequestedRegion": "eu-*"}}), region, false),
        ("StringNotLike", json!({"StringNotLike": {"aws:RequestedRegion": "eu-*"}}), region, true),
        ("StringNotLike missing key holds", json!({"StringNotLike": {"s3:prefix": "secret/*"}}), none, true),
        ("ArnLike per part", json!({"ArnLike": {"aws:SourceArn": "arn:aws:states:*:123456789012:stateMachine:lifeboat-*"}}), &[("aws:SourceArn", &["arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-failover"])], true),
        ("ArnLike wildcard stays in its part", json!({"ArnLike": {"aws:SourceArn": "arn:aws:states:*"}}), &[("aws:SourceArn", &["arn:aws:states:us-east-1:123456789012:stateMachine:x"])], false),
        ("ArnEquals", json!({"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:t"}}), &[("aws:SourceArn", &["arn:aws:sns:us-east-1:123456789012:t"])], true),
        ("ArnNotEquals", json!({"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:t"}}), &[("aws:SourceArn", &["arn:aws:sns:us-east-1:123456789012:u"])], true),
        ("ArnNotLike missing key holds", json!({"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:*:*"}}), none, true),
        ("ArnLike not an ARN", json!({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:*"}}), &[("aws:SourceArn", &["topic"])], false),
        ("Bool true", json!({"Bool": {"aws:SecureTransport": "true"}}), &[("aws:SecureTransport", &["true"])], true),
        ("Bool JSON boolean", json!({"Bool": {"aws:SecureTransport": true}}), &[("aws:SecureTransport", &["true"])], true),
        ("Bool false", json!({"Bool": {"aws:SecureTransport": "false"}}), &[("aws:SecureTransport", &["true"])], false),
        ("Null true: key absent", json!({"Null": {"s3:prefix": "true"}}), none, true),
        ("Null true: key present", json!({"Null": {"s3:max-keys": "true"}}), keys, false),
        ("Null false: key present", json!({"Null": {"s3:max-keys": "false"}}), keys, true),
        ("NumericEquals", json!({"NumericEquals": {"s3:max-keys": "100"}}), keys, true),
        ("NumericEquals JSON number", json!({"NumericEquals": {"s3:max-keys": 100}}), keys, true),
        ("NumericNotEquals", json!({"NumericNotEquals": {"s3:max-keys": "10"}}), keys, true),
        ("NumericLessThan", json!({"NumericLessThan": {"s3:max-keys": "100"}}), keys, false),
        ("NumericLessThanEquals", json!({"NumericLessThanEquals": {"s3:max-keys": "100"}}), keys, true),
        ("NumericGreaterThan", json!({"NumericGreaterThan": {"s3:max-keys": "10"}}), keys, true),
        ("NumericGreaterThanEquals", json!({"NumericGreaterThanEquals": {"s3:max-keys": "101"}}), keys, false),
        ("Numeric with a non-number", json!({"NumericLessThan": {"s3:max-keys": "many"}}), keys, false),
        ("StringEqualsIfExists missing key", json!({"StringEqualsIfExists": {"aws:RequestedRegion": "eu-west-1"}}), none, true),
        ("StringEqualsIfExists present mismatch", json!({"StringEqualsIfExists": {"aws:RequestedRegion": "eu-west-1"}}), region, false),
        ("NumericLessThanIfExists present", json!({"NumericLessThanIfExists": {"s3:max-keys": "1000"}}), keys, true),
        ("NullIfExists is not an operator", json!({"NullIfExists": {"s3:prefix": "true"}}), none, false),
        ("ForAnyValue one matches", json!({"ForAnyValue:StringEquals": {"events:source": "lifeboat"}}), sources, true),
        ("ForAnyValue none match", json!({"ForAnyValue:StringEquals": {"events:source": "other"}}), sources, false),
        ("ForAnyValue missing key", json!({"ForAnyValue:StringEquals": {"events:source": "lifeboat"}}), none, false),
        ("ForAllValues all match", json!({"ForAllValues:StringLike": {"events:source": "lifeboat*"}}), sources, true),
        ("ForAllValues one does not", json!({"ForAllValues:StringEquals": {"events:source": "lifeboat"}}), sources, false),
        ("ForAllValues missing key holds", json!({"ForAllValues:StringEquals": {"events:source": "lifeboat"}}), none, true),
        ("ForAnyValue negated", json!({"ForAnyValue:StringNotEquals": {"events:source": "lifeboat"}}), sources, true),
        ("ForAllValues negated", json!({"ForAllValues:StringNotLike": {"events:source": "lifeboat*"}}), sources, false),
        ("operators AND", json!({"StringEquals": {"aws:RequestedRegion": "us-east-1"}, "NumericEquals": {"s3:max-keys": "5"}}), &[("aws:RequestedRegion", &["us-east-1"]), ("s3:max-keys", &["100"])], false),
        ("keys under an operator AND", json!({"StringEquals": {"aws:RequestedRegion": "us-east-1", "s3:prefix": "x"}}), region, false),
        ("empty block holds", json!({}), none, true),
        ("non-object block", json!("StringEquals"), region, false),
    ];
    assert!(cases.len() >= 25);
    for (name, condition, context, expected) in cases {
        let policy = doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}]));
        let authorization = auth(GET, &[OBJ], context);
        let expected = if expected { Allowed } else { ImplicitDeny };
        assert_eq!(evaluate(&policy, &authorization), expected, "{name}");
    }
}

#[test]
fn verdict_names_the_refused_resource() {
    let a = "arn:aws:ssm:us-east-1:123456789012:parameter/a";
    let b = "arn:aws:ssm:us-east-1:123456789012:parameter/b";
    let c = "arn:aws:ssm:us-east-1:123456789012:parameter/c";
    let policy = doc(json!([
        allow(json!("ssm:*"), json!(a)),
        {"Effect": "Deny", "Action": "ssm:*", "Resource": c}
    ]));
    let v = verdict(&policy, &auth("ssm:GetParameters", &[a, b, c], &[]));
    assert_eq!(v.decision, ExplicitDeny);
    assert_eq!(v.resource.as_deref(), Some(c));
    let v = verdict(&policy, &auth("ssm:GetParameters", &[a, b], &[]));
    assert_eq!(v.decision, ImplicitDeny);
    assert_eq!(v.resource.as_deref(), Some(b));
    let v = verdict(&policy, &auth("ssm:GetParameters", &[a], &[]));
    assert_eq!((v.decision, v.resource), (Allowed, None));
    let v = verdict(&policy, &auth("ssm:DescribeParameters", &[], &[]));
    assert_eq!(v.resource.as_deref(), Some("*"));
}

fn body(denied: &(u16, &'static str, Vec<u8>)) -> String {
    String::from_utf8_lossy(&denied.2).into_owned()
}

#[test]
fn denial_messages_are_aws_messages() {
    let topic = "arn:aws:sns:us-east-1:123456789012:lifeboat-events";
    let sm = "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-failover";
    let start = auth("states:StartExecution", &[sm], &[]);
    let implicit = denial(&Protocol::Json, ROLE, &start, sm, &ImplicitDeny);
    assert_eq!(
        (implicit.0, implicit.1),
        (400, "application/x-amz-json-1.0")
    );
    let parsed: Value = serde_json::from_slice(&implicit.2).expect("json");
    assert_eq!(parsed["__type"], "AccessDeniedException");
    assert_eq!(
        parsed["message"],
        format!(
            "User: {ROLE} is not authorized to perform: states:StartExecution on resource: {sm} \
             because no identity-based policy allows the states:StartExecution action"
        )
    );
    let explicit = denial(&Protocol::Json, ROLE, &start, sm, &ExplicitDeny);
    let parsed: Value = serde_json::from_slice(&explicit.2).expect("json");
    assert_eq!(
        parsed["message"],
        format!(
            "User: {ROLE} is not authorized to perform: states:StartExecution on resource: {sm} \
             with an explicit deny in an identity-based policy"
        )
    );
    let ssm = auth("ssm:GetParameter", &["x"], &[]);
    assert_eq!(
        denial(&Protocol::Json, ROLE, &ssm, "x", &ImplicitDeny).1,
        "application/x-amz-json-1.1"
    );

    let publish = auth("sns:Publish", &[topic], &[]);
    let sns = denial(&Protocol::Query, ROLE, &publish, topic, &ImplicitDeny);
    assert_eq!((sns.0, sns.1), (403, "text/xml"));
    let text = body(&sns);
    assert!(
        text.contains(r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">"#),
        "{text}"
    );
    assert!(
        text.contains("<Type>Sender</Type><Code>AuthorizationError</Code>"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "<Message>User: {ROLE} is not authorized to perform: SNS:Publish on resource: {topic} \
         because no identity-based policy allows the SNS:Publish action</Message>"
        )),
        "{text}"
    );
}

#[test]
fn denial_shapes_per_protocol() {
    let key = "arn:aws:s3:::ledger/runs/a&b.json";
    let get = auth(GET, &[key], &[]);
    let s3 = denial(&Protocol::S3, ROLE, &get, key, &ImplicitDeny);
    assert_eq!((s3.0, s3.1), (403, "application/xml"));
    let text = body(&s3);
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{text}"
    );
    assert!(
        text.contains("<Error><Code>AccessDenied</Code><Message>"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "User: {ROLE} is not authorized to perform: s3:GetObject on resource: \
         &quot;arn:aws:s3:::ledger/runs/a&amp;b.json&quot; because no identity-based policy \
         allows the s3:GetObject action</Message>"
        )),
        "{text}"
    );

    let zone = "arn:aws:route53:::hostedzone/Z1";
    let change = auth("route53:ChangeResourceRecordSets", &[zone], &[]);
    let r53 = denial(&Protocol::RestXml, ROLE, &change, zone, &ExplicitDeny);
    assert_eq!((r53.0, r53.1), (403, "text/xml"));
    let text = body(&r53);
    assert!(
        text.contains(r#"<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">"#),
        "{text}"
    );
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    assert!(text.contains("route53:ChangeResourceRecordSets on resource: arn:aws:route53:::hostedzone/Z1 with an explicit deny"), "{text}");

    let role = "arn:aws:iam::123456789012:role/other";
    let assume = auth("sts:AssumeRole", &[role], &[]);
    let sts = denial(&Protocol::Query, ROLE, &assume, role, &ImplicitDeny);
    assert_eq!(sts.0, 403);
    let text = body(&sts);
    assert!(
        text.contains("https://sts.amazonaws.com/doc/2011-06-15/")
            && text.contains("<Code>AccessDenied</Code>"),
        "{text}"
    );

    let events = auth("health:DescribeEvents", &["*"], &[]);
    let cbor = denial(&Protocol::Cbor, ROLE, &events, "*", &ImplicitDeny);
    assert_eq!((cbor.0, cbor.1), (403, "application/cbor"));
    assert_eq!(cbor.2[0], 0xa2, "a two-entry CBOR map");
    let text = body(&cbor);
    assert!(text.contains("AccessDeniedException"), "{text}");
    assert!(
        text.contains("is not authorized to perform: health:DescribeEvents on resource: *"),
        "{text}"
    );
}

#[test]
fn missing_keys_check_list_bucket_on_the_key_as_prefix() {
    let get = auth(
        GET,
        &[OBJ],
        &[
            ("s3:ResourceAccount", &["123456789012"]),
            ("aws:SecureTransport", &["true"]),
        ],
    );
    let list = list_bucket_for_missing_key(&get).expect("a GetObject has one");
    assert_eq!(list.action, "s3:ListBucket");
    assert_eq!(list.resources, vec!["arn:aws:s3:::ledger".to_string()]);
    assert_eq!(
        list.context.get("s3:prefix"),
        Some(&vec!["runs/r1/plan.json".to_string()])
    );
    assert_eq!(
        list.context.get("s3:ResourceAccount"),
        Some(&vec!["123456789012".to_string()])
    );
    // The repository's runs/* listing grant lets a missing run record answer 404.
    let runs = doc(
        json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::ledger",
                           "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}}}]),
    );
    assert_eq!(evaluate(&runs, &list), Allowed);
    assert_eq!(
        evaluate(&doc(json!([ledger_listing()])), &list),
        ImplicitDeny
    );

    for other in [
        auth("s3:PutObject", &[OBJ], &[]),
        auth("s3:GetObjectVersion", &[OBJ], &[]),
        auth(GET, &["arn:aws:s3:::bucket-only"], &[]),
        auth(GET, &[], &[]),
    ] {
        assert_eq!(list_bucket_for_missing_key(&other), None, "{other:?}");
    }
}
