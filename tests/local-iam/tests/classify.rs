//! Table-driven tests of request classification, with requests shaped as the AWS SDK for
//! Rust sends them (path-style S3, awsJson targets, awsQuery forms, Route 53 REST-XML, Health
//! rpc-v2-cbor), plus a no-panic sweep over mutated inputs.

use local_iam::{access_key_id, classify, protocol_of, Authorization, Env, Protocol, Request};

type Headers = Vec<(String, String)>;

/// (name, method, path, headers, body, text the error must contain).
type Refusal = (
    &'static str,
    &'static str,
    &'static str,
    Headers,
    &'static [u8],
    &'static str,
);

const ACCOUNT: &str = "123456789012";
const SM_FAILOVER: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-failover";
const APPROVAL_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:lifeboat/approval-signing-AbCdEf";

fn secret_arn(name: &str) -> Option<String> {
    (name == "lifeboat/approval-signing").then(|| APPROVAL_SECRET.to_string())
}

fn token_state_machine(token: &str) -> Option<String> {
    (token == "token-failover").then(|| SM_FAILOVER.to_string())
}

fn env() -> Env<'static> {
    Env {
        region: "us-east-1",
        account: ACCOUNT,
        partition: "aws",
        secret_arn: &secret_arn,
        token_state_machine: &token_state_machine,
    }
}

/// The SigV4 header the SDK sends, for a signing name.
fn signed(service: &str) -> (String, String) {
    (
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIALOCAL{}/20250101/us-east-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0123abcd",
            service.to_uppercase()
        ),
    )
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

fn s3_headers() -> Vec<(String, String)> {
    vec![
        signed("s3"),
        h("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        h("x-amz-date", "20250101T000000Z"),
    ]
}

fn json_headers(service: &str, target: &str) -> Vec<(String, String)> {
    let version = if service == "states" { "1.0" } else { "1.1" };
    vec![
        signed(service),
        h("content-type", &format!("application/x-amz-json-{version}")),
        h("x-amz-target", target),
    ]
}

fn query_headers(service: &str) -> Vec<(String, String)> {
    vec![
        signed(service),
        h("content-type", "application/x-www-form-urlencoded"),
    ]
}

fn cbor_headers() -> Vec<(String, String)> {
    vec![
        signed("health"),
        h("content-type", "application/cbor"),
        h("smithy-protocol", "rpc-v2-cbor"),
    ]
}

/// A CBOR text string.
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    assert!(text.len() < 256);
    if text.len() < 24 {
        out.push(0x60 | text.len() as u8);
    } else {
        out.extend_from_slice(&[0x78, text.len() as u8]);
    }
    out.extend_from_slice(text.as_bytes());
}

/// `{_ "eventArns": [arns..], "locale": "en"}` as the Health SDK encodes it.
fn health_event_details(arns: &[&str]) -> Vec<u8> {
    let mut body = vec![0xbf];
    cbor_text(&mut body, "eventArns");
    body.push(0x80 | arns.len() as u8);
    for arn in arns {
        cbor_text(&mut body, arn);
    }
    cbor_text(&mut body, "locale");
    cbor_text(&mut body, "en");
    body.push(0xff);
    body
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    protocol: Protocol,
    action: &'static str,
    resources: Vec<&'static str>,
    /// Condition keys that must be present with exactly these values.
    context: Vec<(&'static str, Vec<&'static str>)>,
    /// Condition keys that must be absent.
    absent: Vec<&'static str>,
}

#[allow(clippy::too_many_arguments)]
fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: &[u8],
    protocol: Protocol,
    action: &'static str,
    resources: &[&'static str],
) -> Case {
    Case {
        name,
        method,
        path,
        headers,
        body: body.to_vec(),
        protocol,
        action,
        resources: resources.to_vec(),
        context: Vec::new(),
        absent: Vec::new(),
    }
}

impl Case {
    fn ctx(mut self, key: &'static str, values: &[&'static str]) -> Self {
        self.context.push((key, values.to_vec()));
        self
    }

    fn without(mut self, key: &'static str) -> Self {
        self.absent.push(key);
        self
    }
}

fn s3(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    action: &'static str,
    resource: &'static str,
) -> Case {
    case(
        name,
        method,
        path,
        s3_headers(),
        b"",
        Protocol::S3,
        action,
        &[resource],
    )
    .ctx("s3:ResourceAccount", &[ACCOUNT])
}

fn sfn(name: &'static str, op: &'static str, body: &str, resource: &'static str) -> Case {
    let target: &'static str = Box::leak(format!("AWSStepFunctions.{op}").into_boxed_str());
    let action: &'static str = Box::leak(format!("states:{op}").into_boxed_str());
    case(
        name,
        "POST",
        "/",
        json_headers("states", target),
        body.as_bytes(),
        Protocol::Json,
        action,
        &[resource],
    )
}

fn json(
    name: &'static str,
    service: &'static str,
    target: &'static str,
    body: &str,
    action: &'static str,
    resources: &[&'static str],
) -> Case {
    case(
        name,
        "POST",
        "/",
        json_headers(service, target),
        body.as_bytes(),
        Protocol::Json,
        action,
        resources,
    )
}

fn form(
    name: &'static str,
    service: &'static str,
    body: &str,
    action: &'static str,
    resources: &[&'static str],
) -> Case {
    case(
        name,
        "POST",
        "/",
        query_headers(service),
        body.as_bytes(),
        Protocol::Query,
        action,
        resources,
    )
}

fn r53(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    action: &'static str,
    resource: &'static str,
) -> Case {
    case(
        name,
        method,
        path,
        vec![signed("route53")],
        b"",
        Protocol::RestXml,
        action,
        &[resource],
    )
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:lifeboat-events";
const APPROVAL_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:lifeboat-approval";
const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:lifeboat-failover:run-1";

#[rustfmt::skip]
fn s3_cases() -> Vec<Case> {
    vec![
        s3("GetObject (x-id appended)", "GET", "/ledger/runs/r1/plan.json?x-id=GetObject", "s3:GetObject", "arn:aws:s3:::ledger/runs/r1/plan.json").without("s3:prefix"),
        s3("HeadObject with an encoded key", "HEAD", "/ledger/runs/r%201/a%2Bb%3D.json", "s3:GetObject", "arn:aws:s3:::ledger/runs/r 1/a+b=.json"),
        s3("GetObject with response-* options", "GET", "/ledger/k.json?response-content-type=text%2Fplain&x-id=GetObject", "s3:GetObject", "arn:aws:s3:::ledger/k.json"),
        s3("GetObject of a version", "GET", "/ledger/k.json?versionId=3HL4kqtJlcpXroDTDmJ&x-id=GetObject", "s3:GetObjectVersion", "arn:aws:s3:::ledger/k.json").ctx("s3:versionid", &["3HL4kqtJlcpXroDTDmJ"]),
        s3("HeadObject of a version", "HEAD", "/ledger/k.json?versionId=v1", "s3:GetObjectVersion", "arn:aws:s3:::ledger/k.json"),
        s3("PutObject", "PUT", "/ledger/runs/r1/approval.json?x-id=PutObject", "s3:PutObject", "arn:aws:s3:::ledger/runs/r1/approval.json"),
        s3("PutObject canary under _lifeboat/", "PUT", "/data-eu/_lifeboat/canary.json?x-id=PutObject", "s3:PutObject", "arn:aws:s3:::data-eu/_lifeboat/canary.json"),
        s3("DeleteObject", "DELETE", "/ledger/runs/r1/lock?x-id=DeleteObject", "s3:DeleteObject", "arn:aws:s3:::ledger/runs/r1/lock"),
        s3("DeleteObject of a version", "DELETE", "/ledger/runs/r1/lock?versionId=v2&x-id=DeleteObject", "s3:DeleteObjectVersion", "arn:aws:s3:::ledger/runs/r1/lock"),
        s3("ListObjectsV2 with prefix, delimiter, max-keys", "GET", "/ledger/?list-type=2&delimiter=%2F&max-keys=100&prefix=runs%2F", "s3:ListBucket", "arn:aws:s3:::ledger")
            .ctx("s3:prefix", &["runs/"]).ctx("s3:delimiter", &["/"]).ctx("s3:max-keys", &["100"]),
        s3("ListObjectsV2 without prefix: s3:prefix is empty", "GET", "/ledger?list-type=2", "s3:ListBucket", "arn:aws:s3:::ledger")
            .ctx("s3:prefix", &[""]).without("s3:delimiter").without("s3:max-keys"),
        s3("ListObjectVersions", "GET", "/data-eu/?versions&prefix=_lifeboat%2F", "s3:ListBucketVersions", "arn:aws:s3:::data-eu").ctx("s3:prefix", &["_lifeboat/"]),
        s3("GetBucketReplication", "GET", "/data-eu/?replication", "s3:GetReplicationConfiguration", "arn:aws:s3:::data-eu"),
        s3("PutBucketReplication", "PUT", "/data-eu/?replication", "s3:PutReplicationConfiguration", "arn:aws:s3:::data-eu"),
        s3("DeleteBucketReplication is PutReplicationConfiguration", "DELETE", "/data-eu/?replication", "s3:PutReplicationConfiguration", "arn:aws:s3:::data-eu"),
        s3("GetBucketPolicy", "GET", "/data-eu/?policy", "s3:GetBucketPolicy", "arn:aws:s3:::data-eu"),
        s3("PutBucketPolicy", "PUT", "/data-eu/?policy", "s3:PutBucketPolicy", "arn:aws:s3:::data-eu"),
        s3("DeleteBucketPolicy", "DELETE", "/data-eu/?policy", "s3:DeleteBucketPolicy", "arn:aws:s3:::data-eu"),
        s3("GetBucketVersioning", "GET", "/data-eu/?versioning", "s3:GetBucketVersioning", "arn:aws:s3:::data-eu"),
        s3("PutBucketVersioning", "PUT", "/ledger/?versioning", "s3:PutBucketVersioning", "arn:aws:s3:::ledger"),
        s3("DeleteObjects on bucket/*", "POST", "/ledger/?delete", "s3:DeleteObject", "arn:aws:s3:::ledger/*"),
        s3("CreateBucket", "PUT", "/ledger/", "s3:CreateBucket", "arn:aws:s3:::ledger"),
        s3("HeadBucket is ListBucket, no prefix key", "HEAD", "/data-eu", "s3:ListBucket", "arn:aws:s3:::data-eu").without("s3:prefix"),
        s3("ListBuckets", "GET", "/", "s3:ListAllMyBuckets", "*"),
        s3("CopyObject carries the copy source", "PUT", "/ledger/b.json?x-id=CopyObject", "s3:PutObject", "arn:aws:s3:::ledger/b.json"),
        s3("Multipart part upload", "PUT", "/ledger/big.bin?partNumber=2&uploadId=abc&x-id=UploadPart", "s3:PutObject", "arn:aws:s3:::ledger/big.bin"),
        s3("AbortMultipartUpload", "DELETE", "/ledger/big.bin?uploadId=abc&x-id=AbortMultipartUpload", "s3:AbortMultipartUpload", "arn:aws:s3:::ledger/big.bin"),
        s3("GetObjectTagging", "GET", "/ledger/k?tagging", "s3:GetObjectTagging", "arn:aws:s3:::ledger/k"),
        s3("GetBucketLocation", "GET", "/ledger/?location", "s3:GetBucketLocation", "arn:aws:s3:::ledger"),
    ]
}

#[rustfmt::skip]
fn json_cases() -> Vec<Case> {
    vec![
        sfn("StartExecution", "StartExecution", &format!(r#"{{"stateMachineArn":"{SM_FAILOVER}","name":"run-1","input":"{{}}"}}"#), SM_FAILOVER),
        sfn("DescribeExecution", "DescribeExecution", &format!(r#"{{"executionArn":"{EXECUTION}"}}"#), EXECUTION),
        sfn("StopExecution", "StopExecution", &format!(r#"{{"executionArn":"{EXECUTION}","cause":"drill"}}"#), EXECUTION),
        sfn("GetExecutionHistory", "GetExecutionHistory", &format!(r#"{{"executionArn":"{EXECUTION}","reverseOrder":true}}"#), EXECUTION),
        sfn("DescribeStateMachine", "DescribeStateMachine", &format!(r#"{{"stateMachineArn":"{SM_FAILOVER}"}}"#), SM_FAILOVER),
        sfn("ListExecutions", "ListExecutions", &format!(r#"{{"stateMachineArn":"{SM_FAILOVER}","statusFilter":"RUNNING"}}"#), SM_FAILOVER),
        sfn("SendTaskSuccess with a known token", "SendTaskSuccess", r#"{"taskToken":"token-failover","output":"{}"}"#, SM_FAILOVER),
        sfn("SendTaskFailure with an unknown token", "SendTaskFailure", r#"{"taskToken":"token-unknown","error":"Refused"}"#, "*"),
        sfn("SendTaskHeartbeat without a token", "SendTaskHeartbeat", "{}", "*"),
        sfn("StartExecution with a garbage body", "StartExecution", "\u{1}not json", "*"),
        sfn("ListStateMachines", "ListStateMachines", "{}", "*"),
        json("GetParameter /a/b", "ssm", "AmazonSSM.GetParameter", r#"{"Name":"/lifeboat/client/url","WithDecryption":true}"#, "ssm:GetParameter", &["arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/client/url"]),
        json("PutParameter plain name", "ssm", "AmazonSSM.PutParameter", r#"{"Name":"x","Value":"v","Overwrite":true,"Type":"String"}"#, "ssm:PutParameter", &["arn:aws:ssm:us-east-1:123456789012:parameter/x"]),
        json("GetParameter with a version selector", "ssm", "AmazonSSM.GetParameter", r#"{"Name":"/a/b:3"}"#, "ssm:GetParameter", &["arn:aws:ssm:us-east-1:123456789012:parameter/a/b"]),
        json("GetParameter by ARN", "ssm", "AmazonSSM.GetParameter", r#"{"Name":"arn:aws:ssm:eu-west-1:123456789012:parameter/a/b:label"}"#, "ssm:GetParameter", &["arn:aws:ssm:eu-west-1:123456789012:parameter/a/b"]),
        json("DeleteParameter", "ssm", "AmazonSSM.DeleteParameter", r#"{"Name":"/a"}"#, "ssm:DeleteParameter", &["arn:aws:ssm:us-east-1:123456789012:parameter/a"]),
        json("GetParameterHistory", "ssm", "AmazonSSM.GetParameterHistory", r#"{"Name":"/a"}"#, "ssm:GetParameterHistory", &["arn:aws:ssm:us-east-1:123456789012:parameter/a"]),
        json("GetParameters: one resource per name", "ssm", "AmazonSSM.GetParameters", r#"{"Names":["/a/b","c"]}"#, "ssm:GetParameters", &["arn:aws:ssm:us-east-1:123456789012:parameter/a/b", "arn:aws:ssm:us-east-1:123456789012:parameter/c"]),
        json("GetParametersByPath", "ssm", "AmazonSSM.GetParametersByPath", r#"{"Path":"/lifeboat/client","Recursive":true}"#, "ssm:GetParametersByPath", &["arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/client"]),
        json("GetSecretValue by ARN", "secretsmanager", "secretsmanager.GetSecretValue", &format!(r#"{{"SecretId":"{APPROVAL_SECRET}"}}"#), "secretsmanager:GetSecretValue", &[APPROVAL_SECRET])
            .ctx("secretsmanager:SecretId", &[APPROVAL_SECRET]),
        json("GetSecretValue by a known name", "secretsmanager", "secretsmanager.GetSecretValue", r#"{"SecretId":"lifeboat/approval-signing"}"#, "secretsmanager:GetSecretValue", &[APPROVAL_SECRET])
            .ctx("secretsmanager:SecretId", &["lifeboat/approval-signing"]),
        json("PutSecretValue by an unknown name", "secretsmanager", "secretsmanager.PutSecretValue", r#"{"SecretId":"ws/primary","SecretString":"x"}"#, "secretsmanager:PutSecretValue", &["arn:aws:secretsmanager:us-east-1:123456789012:secret:ws/primary"]),
        json("PutEvents on the default bus", "events", "AWSEvents.PutEvents", r#"{"Entries":[{"Source":"lifeboat","DetailType":"Run Finished","Detail":"{}"}]}"#, "events:PutEvents", &["arn:aws:events:us-east-1:123456789012:event-bus/default"])
            .ctx("events:source", &["lifeboat"]).ctx("events:detail-type", &["Run Finished"]),
        json("PutEvents on several buses", "events", "AWSEvents.PutEvents",
            r#"{"Entries":[{"EventBusName":"ops","Source":"a"},{"Source":"b"},{"EventBusName":"arn:aws:events:us-east-1:123456789012:event-bus/x","Source":"a"},{"EventBusName":"default"}]}"#,
            "events:PutEvents", &["arn:aws:events:us-east-1:123456789012:event-bus/ops", "arn:aws:events:us-east-1:123456789012:event-bus/default", "arn:aws:events:us-east-1:123456789012:event-bus/x"])
            .ctx("events:source", &["a", "b"]),
        json("PutRule on a custom bus", "events", "AWSEvents.PutRule", r#"{"Name":"fence","EventBusName":"ops"}"#, "events:PutRule", &["arn:aws:events:us-east-1:123456789012:rule/ops/fence"]),
        // Signed for another region than the gate's home: the resource is in that region.
        case("DescribeRule in another region", "POST", "/", vec![
                (
                    "authorization".to_string(),
                    "AWS4-HMAC-SHA256 Credential=AKIALOCALEVENTS/20250101/eu-west-1/events/aws4_request, SignedHeaders=host, Signature=0123abcd".to_string(),
                ),
                h("content-type", "application/x-amz-json-1.1"),
                h("x-amz-target", "AWSEvents.DescribeRule"),
            ], br#"{"Name":"lifeboat-forward-health-events"}"#, Protocol::Json, "events:DescribeRule", &["arn:aws:events:eu-west-1:123456789012:rule/lifeboat-forward-health-events"]),
        json("UpdateRoutingControlState by ARN", "route53-recovery-cluster", "ToggleCustomerAPI.UpdateRoutingControlState",
            r#"{"RoutingControlArn":"arn:aws:route53-recovery-control::123456789012:controlpanel/cp1/routingcontrol/rc1","RoutingControlState":"Off"}"#,
            "route53-recovery-cluster:UpdateRoutingControlState", &["arn:aws:route53-recovery-control::123456789012:controlpanel/cp1/routingcontrol/rc1"]),
        json("GetRoutingControlState without an ARN", "route53-recovery-cluster", "ToggleCustomerAPI.GetRoutingControlState", "{}",
            "route53-recovery-cluster:GetRoutingControlState", &["*"]),
        json("UpdateRoutingControlStates by each entry", "route53-recovery-cluster", "ToggleCustomerAPI.UpdateRoutingControlStates",
            r#"{"UpdateRoutingControlStateEntries":[{"RoutingControlArn":"arn:a","RoutingControlState":"On"},{"RoutingControlArn":"arn:b","RoutingControlState":"Off"}]}"#,
            "route53-recovery-cluster:UpdateRoutingControlStates", &["arn:a", "arn:b"]),
    ]
}

#[rustfmt::skip]
fn other_cases() -> Vec<Case> {
    vec![
        form("SNS Publish", "sns", "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Alifeboat-events&Message=hello+world", "sns:Publish", &[TOPIC]),
        form("SNS Publish by TargetArn", "sns", "Action=Publish&Version=2010-03-31&TargetArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Alifeboat-events&Message=x", "sns:Publish", &[TOPIC]),
        form("SNS ListSubscriptionsByTopic", "sns", "Action=ListSubscriptionsByTopic&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Alifeboat-approval", "sns:ListSubscriptionsByTopic", &[APPROVAL_TOPIC]),
        form("SNS GetSubscriptionAttributes has no resource type", "sns", "Action=GetSubscriptionAttributes&Version=2010-03-31&SubscriptionArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Alifeboat-approval%3Aabc", "sns:GetSubscriptionAttributes", &["*"]),
        form("SNS Subscribe carries protocol and endpoint", "sns", "Action=Subscribe&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Alifeboat-events&Protocol=email&Endpoint=ops%40example.com", "sns:Subscribe", &[TOPIC])
            .ctx("sns:Protocol", &["email"]).ctx("sns:Endpoint", &["ops@example.com"]),
        form("STS GetCallerIdentity", "sts", "Action=GetCallerIdentity&Version=2011-06-15", "sts:GetCallerIdentity", &["*"]),
        r53("ChangeResourceRecordSets", "POST", "/2013-04-01/hostedzone/Z0441723226OZ66S5ZCNZ/rrset", "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0441723226OZ66S5ZCNZ"),
        r53("ChangeResourceRecordSets, untrimmed id", "POST", "/2013-04-01/hostedzone/hostedzone%2FZ0441723226OZ66S5ZCNZ/rrset/", "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0441723226OZ66S5ZCNZ"),
        r53("ListResourceRecordSets", "GET", "/2013-04-01/hostedzone/Z0441723226OZ66S5ZCNZ/rrset?name=app.example.com&type=CNAME&maxitems=1", "route53:ListResourceRecordSets", "arn:aws:route53:::hostedzone/Z0441723226OZ66S5ZCNZ"),
        r53("GetChange", "GET", "/2013-04-01/change/C2682N5HXP0BZ4", "route53:GetChange", "arn:aws:route53:::change/C2682N5HXP0BZ4"),
        r53("GetHostedZone", "GET", "/2013-04-01/hostedzone/Z0441723226OZ66S5ZCNZ", "route53:GetHostedZone", "arn:aws:route53:::hostedzone/Z0441723226OZ66S5ZCNZ"),
        r53("ListHostedZones", "GET", "/2013-04-01/hostedzone?maxitems=100", "route53:ListHostedZones", "*"),
        r53("TestDNSAnswer", "GET", "/2013-04-01/testdnsanswer?hostedzoneid=Z1&recordname=app.example.com&recordtype=CNAME", "route53:TestDNSAnswer", "*"),
        r53("GetHealthCheckStatus", "GET", "/2013-04-01/healthcheck/hc-1/status", "route53:GetHealthCheckStatus", "arn:aws:route53:::healthcheck/hc-1"),
        case("Health DescribeEvents", "POST", "/service/AWSHealth_20160804/operation/DescribeEvents", cbor_headers(), &[0xbf, 0xff], Protocol::Cbor, "health:DescribeEvents", &["*"]),
        case("Health DescribeEventDetails names the events", "POST", "/service/AWSHealth_20160804/operation/DescribeEventDetails", cbor_headers(),
            &health_event_details(&["arn:aws:health:us-east-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_OPERATIONAL_ISSUE_7f35c8ae"]),
            Protocol::Cbor, "health:DescribeEventDetails", &["arn:aws:health:us-east-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_OPERATIONAL_ISSUE_7f35c8ae"]),
        case("Health DescribeEventDetails, garbage body", "POST", "/service/AWSHealth_20160804/operation/DescribeEventDetails", cbor_headers(), b"\xff\x00", Protocol::Cbor, "health:DescribeEventDetails", &["*"]),
        // Without a SigV4 header the service is read from the target, form Version and path.
        case("unsigned: target", "POST", "/", vec![h("x-amz-target", "AmazonSSM.GetParameter")], br#"{"Name":"x"}"#, Protocol::Json, "ssm:GetParameter", &["arn:aws:ssm:us-east-1:123456789012:parameter/x"]),
        case("unsigned: SNS by form Version", "POST", "/", vec![h("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            b"Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Alifeboat-events", Protocol::Query, "sns:Publish", &[TOPIC]),
        case("unsigned: STS by form Version", "POST", "/", vec![], b"Action=GetCallerIdentity&Version=2011-06-15", Protocol::Query, "sts:GetCallerIdentity", &["*"]),
        case("unsigned: Route 53 by path", "GET", "/2013-04-01/change/C1", vec![], b"", Protocol::RestXml, "route53:GetChange", &["arn:aws:route53:::change/C1"]),
        case("unsigned: Health by path", "POST", "/service/AWSHealth_20160804/operation/DescribeEvents", vec![], b"", Protocol::Cbor, "health:DescribeEvents", &["*"]),
        case("unsigned: S3 otherwise", "GET", "/ledger/a?x-id=GetObject", vec![], b"", Protocol::S3, "s3:GetObject", &["arn:aws:s3:::ledger/a"]),
    ]
}

fn check(case: &Case) {
    let req = Request {
        method: case.method,
        path_and_query: case.path,
        headers: &case.headers,
        body: &case.body,
    };
    let (protocol, auth) = classify(&req, &env())
        .unwrap_or_else(|e| panic!("{}: unexpectedly unclassified: {e}", case.name));
    assert_eq!(protocol, case.protocol, "{}: protocol", case.name);
    assert_eq!(
        protocol_of(&req),
        case.protocol,
        "{}: protocol_of",
        case.name
    );
    assert_eq!(auth.action, case.action, "{}: action", case.name);
    assert_eq!(auth.resources, case.resources, "{}: resources", case.name);
    for (key, values) in &case.context {
        assert_eq!(
            auth.context.get(*key),
            Some(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>()),
            "{}: context {key} in {:?}",
            case.name,
            auth.context
        );
    }
    for key in &case.absent {
        assert!(
            !auth.context.contains_key(*key),
            "{}: {key} must be absent",
            case.name
        );
    }
}

#[test]
fn classifies_s3_requests() {
    let cases = s3_cases();
    assert!(cases.len() >= 25);
    cases.iter().for_each(check);
}

#[test]
fn classifies_json_requests() {
    json_cases().iter().for_each(check);
}

#[test]
fn classifies_query_route53_and_health_requests() {
    other_cases().iter().for_each(check);
}

#[test]
fn copy_object_carries_its_source_as_a_condition_key() {
    let mut headers = s3_headers();
    headers.push(h("x-amz-copy-source", "ledger/a.json"));
    let req = Request {
        method: "PUT",
        path_and_query: "/ledger/b.json?x-id=CopyObject",
        headers: &headers,
        body: b"",
    };
    let (_, auth) = classify(&req, &env()).expect("classified");
    assert_eq!(
        auth.context.get("s3:x-amz-copy-source"),
        Some(&vec!["ledger/a.json".to_string()])
    );
}

#[test]
fn every_request_carries_the_global_keys() {
    let headers = vec![signed("route53")];
    let req = Request {
        method: "GET",
        path_and_query: "/2013-04-01/change/C1",
        headers: &headers,
        body: b"",
    };
    let (_, auth) = classify(&req, &env()).expect("classified");
    let get = |key: &str| auth.context.get(key).cloned().unwrap_or_default();
    assert_eq!(get("aws:SecureTransport"), vec!["true"]);
    assert_eq!(get("aws:RequestedRegion"), vec!["us-east-1"]);
    assert_eq!(get("aws:PrincipalAccount"), vec![ACCOUNT]);
}

#[rustfmt::skip]
#[test]
fn unmapped_requests_fail_closed_with_a_clear_message() {
    let cases: Vec<Refusal> = vec![
        ("unmapped service", "POST", "/2015-03-31/functions/f/invocations", vec![signed("lambda")], b"{}", "service lambda"),
        ("unmapped Step Functions operation", "POST", "/", json_headers("states", "AWSStepFunctions.CreateActivity"), b"{}", "AWSStepFunctions.CreateActivity"),
        ("target of another service", "POST", "/", json_headers("states", "AmazonSSM.GetParameter"), b"{}", "does not belong"),
        ("unsigned unknown target", "POST", "/", vec![h("x-amz-target", "DynamoDB_20120810.GetItem")], b"{}", "DynamoDB_20120810"),
        ("unmapped S3 subresource", "GET", "/ledger/?analytics", s3_headers(), b"", "?analytics"),
        ("S3 POST to an object", "POST", "/ledger/k", s3_headers(), b"", "no S3 object operation POST"),
        ("S3 PATCH", "PATCH", "/ledger/", s3_headers(), b"", "PATCH"),
        ("unmapped SNS action", "POST", "/", query_headers("sns"), b"Action=CreatePlatformApplication&Version=2010-03-31", "CreatePlatformApplication"),
        ("query with an unknown Version", "POST", "/", vec![h("content-type", "application/x-www-form-urlencoded")], b"Action=SendMessage&Version=2012-11-05", "2012-11-05"),
        ("unmapped Route 53 path", "GET", "/2013-04-01/delegationset", vec![signed("route53")], b"", "delegationset"),
        ("Route 53 empty zone id", "POST", "/2013-04-01/hostedzone//rrset", vec![signed("route53")], b"", "empty resource id"),
        ("unmapped Health operation", "POST", "/service/AWSHealth_20160804/operation/EnableHealthServiceAccessForOrganization", cbor_headers(), b"", "EnableHealthService"),
    ];
    for (name, method, path, headers, body, needle) in cases {
        let req = Request { method, path_and_query: path, headers: &headers, body };
        let err = classify(&req, &env()).expect_err(name);
        let message = err.to_string();
        assert!(message.contains(needle), "{name}: {message}");
        assert!(message.contains(method) && message.contains(path.split('?').next().unwrap_or(path)), "{name}: {message}");
    }
}

#[test]
fn access_key_id_comes_from_the_credential_scope() {
    let signed_headers = vec![signed("s3")];
    let garbled = vec![h(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIA/20250101/us-east-1",
    )];
    let bearer = vec![h("authorization", "Bearer abc")];
    for (headers, expected) in [
        (signed_headers, Some("AKIALOCALS3")),
        (garbled, None),
        (bearer, None),
        (vec![], None),
    ] {
        let req = Request {
            method: "GET",
            path_and_query: "/",
            headers: &headers,
            body: b"",
        };
        assert_eq!(access_key_id(&req), expected, "{headers:?}");
    }
}

#[test]
fn protocol_of_shapes_even_unmapped_services() {
    let cases: Vec<(Headers, &str, &[u8], Protocol)> = vec![
        (
            vec![
                signed("dynamodb"),
                h("x-amz-target", "DynamoDB_20120810.GetItem"),
            ],
            "/",
            b"{}",
            Protocol::Json,
        ),
        (
            vec![
                signed("sqs"),
                h("content-type", "application/x-www-form-urlencoded"),
            ],
            "/",
            b"Action=SendMessage",
            Protocol::Query,
        ),
        (
            vec![signed("cloudwatch"), h("smithy-protocol", "rpc-v2-cbor")],
            "/service/GraniteServiceVersion20100801/operation/GetMetricData",
            b"",
            Protocol::Cbor,
        ),
        (
            vec![signed("lambda")],
            "/2015-03-31/functions",
            b"",
            Protocol::S3,
        ),
    ];
    for (headers, path, body, expected) in cases {
        let req = Request {
            method: "POST",
            path_and_query: path,
            headers: &headers,
            body,
        };
        assert_eq!(protocol_of(&req), expected, "{path}");
    }
}

/// A small deterministic generator (xorshift64*), so the sweep needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Flips, inserts, deletes and duplicates bytes, biased to the characters parsers split on.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        const SPECIAL: &[u8] = b"%/?&=:.+*{}[]\"\\\x00\xff\xbf\x9f\x7f";
        let mut out = input.to_vec();
        for _ in 0..=self.below(6) {
            let at = if out.is_empty() {
                0
            } else {
                self.below(out.len() + 1)
            };
            let byte = if self.below(2) == 0 {
                *self.pick(SPECIAL)
            } else {
                self.next() as u8
            };
            match self.below(4) {
                0 => out.insert(at, byte),
                1 if at < out.len() => {
                    out.remove(at);
                }
                2 if at < out.len() => out[at] = byte,
                _ => {
                    let tail = out[at..].to_vec();
                    out.extend_from_slice(&tail[..tail.len().min(16)]);
                }
            }
        }
        out
    }
}

#[test]
fn classify_never_panics_on_mutated_requests() {
    let seeds: Vec<Case> = s3_cases()
        .into_iter()
        .chain(json_cases())
        .chain(other_cases())
        .collect();
    let methods = [
        "GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "", "get", "G\u{e9}T",
    ];
    let services = [
        "s3",
        "states",
        "ssm",
        "secretsmanager",
        "events",
        "sns",
        "sts",
        "route53",
        "health",
        "",
        "x",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let seed = rng.pick(&seeds);
        let path = String::from_utf8_lossy(&rng.mutate(seed.path.as_bytes())).into_owned();
        let body = match round % 3 {
            0 => seed.body.clone(),
            1 => rng.mutate(&seed.body),
            _ => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        };
        let mut headers = seed.headers.clone();
        if round % 4 == 0 {
            let service: &&str = rng.pick(&services);
            headers = vec![signed(service)];
        }
        for (_, value) in headers.iter_mut().filter(|_| round % 5 == 1) {
            *value = String::from_utf8_lossy(&rng.mutate(value.as_bytes())).into_owned();
        }
        let method = if round % 7 == 0 {
            *rng.pick(&methods)
        } else {
            seed.method
        };
        let req = Request {
            method,
            path_and_query: &path,
            headers: &headers,
            body: &body,
        };
        let outcome = classify(&req, &env());
        let _ = protocol_of(&req);
        let _ = access_key_id(&req);
        if let Ok((
            _,
            Authorization {
                action, resources, ..
            },
        )) = outcome
        {
            assert!(action.contains(':'), "{action}");
            assert!(!resources.is_empty(), "{action} without resources");
        }
    }
}
