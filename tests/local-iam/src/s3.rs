//! S3: path-style REST, as the SDK sends it with `force_path_style` (which Lifeboat's clients
//! use whenever an endpoint override is set).
//!
//! Wire format relied on: `{METHOD} /{bucket}[/{key}][?{query}]`, the key percent-encoded
//! with `/` kept; subresources are query parameters without a value (`?policy`,
//! `?replication`, `?delete`) or with one (`?list-type=2`, `?uploadId=..`). Parameters the SDK
//! adds for routing (`x-id=GetObject`) or options (`prefix=`, `response-*`) carry a value and
//! never change the action; a *valueless* parameter this module does not know is an unmapped
//! subresource and fails closed.

use crate::request::{parse_query, path_of, percent_decode, query_of, star, unclassified, Param};
use crate::{Authorization, Env, Request, Unclassified};

/// Bucket-level operations: (subresource, method, action). `""`: no subresource.
const BUCKET_OPS: &[(&str, &str, &str)] = &[
    ("list-type", "GET", "ListBucket"),
    ("versions", "GET", "ListBucketVersions"),
    ("uploads", "GET", "ListBucketMultipartUploads"),
    ("replication", "GET", "GetReplicationConfiguration"),
    ("replication", "PUT", "PutReplicationConfiguration"),
    // DeleteBucketReplication is authorized by PutReplicationConfiguration.
    ("replication", "DELETE", "PutReplicationConfiguration"),
    ("policy", "GET", "GetBucketPolicy"),
    ("policy", "PUT", "PutBucketPolicy"),
    ("policy", "DELETE", "DeleteBucketPolicy"),
    ("policyStatus", "GET", "GetBucketPolicyStatus"),
    ("versioning", "GET", "GetBucketVersioning"),
    ("versioning", "PUT", "PutBucketVersioning"),
    // DeleteObjects: authorized as DeleteObject (per key in AWS; here once, on bucket/*).
    ("delete", "POST", "DeleteObject"),
    ("location", "GET", "GetBucketLocation"),
    ("lifecycle", "GET", "GetLifecycleConfiguration"),
    ("lifecycle", "PUT", "PutLifecycleConfiguration"),
    ("lifecycle", "DELETE", "PutLifecycleConfiguration"),
    ("tagging", "GET", "GetBucketTagging"),
    ("tagging", "PUT", "PutBucketTagging"),
    ("tagging", "DELETE", "PutBucketTagging"),
    ("acl", "GET", "GetBucketAcl"),
    ("acl", "PUT", "PutBucketAcl"),
    ("cors", "GET", "GetBucketCORS"),
    ("cors", "PUT", "PutBucketCORS"),
    ("cors", "DELETE", "PutBucketCORS"),
    ("encryption", "GET", "GetEncryptionConfiguration"),
    ("encryption", "PUT", "PutEncryptionConfiguration"),
    ("encryption", "DELETE", "PutEncryptionConfiguration"),
    ("notification", "GET", "GetBucketNotification"),
    ("notification", "PUT", "PutBucketNotification"),
    ("object-lock", "GET", "GetBucketObjectLockConfiguration"),
    ("object-lock", "PUT", "PutBucketObjectLockConfiguration"),
    ("ownershipControls", "GET", "GetBucketOwnershipControls"),
    ("ownershipControls", "PUT", "PutBucketOwnershipControls"),
    ("ownershipControls", "DELETE", "PutBucketOwnershipControls"),
    ("publicAccessBlock", "GET", "GetBucketPublicAccessBlock"),
    ("publicAccessBlock", "PUT", "PutBucketPublicAccessBlock"),
    ("publicAccessBlock", "DELETE", "PutBucketPublicAccessBlock"),
    ("website", "GET", "GetBucketWebsite"),
    ("website", "PUT", "PutBucketWebsite"),
    ("website", "DELETE", "DeleteBucketWebsite"),
    ("logging", "GET", "GetBucketLogging"),
    ("logging", "PUT", "PutBucketLogging"),
    ("", "GET", "ListBucket"),  // ListObjects (v1)
    ("", "HEAD", "ListBucket"), // HeadBucket
    ("", "PUT", "CreateBucket"),
    ("", "DELETE", "DeleteBucket"),
];

/// Object-level operations: (subresource, method, action, action with `versionId`).
const OBJECT_OPS: &[(&str, &str, &str, &str)] = &[
    ("uploads", "POST", "PutObject", "PutObject"), // CreateMultipartUpload
    ("uploadId", "PUT", "PutObject", "PutObject"), // UploadPart(Copy)
    ("uploadId", "POST", "PutObject", "PutObject"), // CompleteMultipartUpload
    (
        "uploadId",
        "DELETE",
        "AbortMultipartUpload",
        "AbortMultipartUpload",
    ),
    (
        "uploadId",
        "GET",
        "ListMultipartUploadParts",
        "ListMultipartUploadParts",
    ),
    (
        "tagging",
        "GET",
        "GetObjectTagging",
        "GetObjectVersionTagging",
    ),
    (
        "tagging",
        "PUT",
        "PutObjectTagging",
        "PutObjectVersionTagging",
    ),
    (
        "tagging",
        "DELETE",
        "DeleteObjectTagging",
        "DeleteObjectVersionTagging",
    ),
    ("acl", "GET", "GetObjectAcl", "GetObjectVersionAcl"),
    ("acl", "PUT", "PutObjectAcl", "PutObjectVersionAcl"),
    (
        "retention",
        "GET",
        "GetObjectRetention",
        "GetObjectRetention",
    ),
    (
        "retention",
        "PUT",
        "PutObjectRetention",
        "PutObjectRetention",
    ),
    (
        "legal-hold",
        "GET",
        "GetObjectLegalHold",
        "GetObjectLegalHold",
    ),
    (
        "legal-hold",
        "PUT",
        "PutObjectLegalHold",
        "PutObjectLegalHold",
    ),
    (
        "attributes",
        "GET",
        "GetObjectAttributes",
        "GetObjectVersionAttributes",
    ),
    ("restore", "POST", "RestoreObject", "RestoreObject"),
    ("", "GET", "GetObject", "GetObjectVersion"),
    ("", "HEAD", "GetObject", "GetObjectVersion"),
    ("", "PUT", "PutObject", "PutObject"),
    ("", "DELETE", "DeleteObject", "DeleteObjectVersion"),
];

/// Request headers that S3 exposes as condition keys of `PutObject` (`s3:<header>`).
const PUT_HEADER_KEYS: &[&str] = &[
    "x-amz-acl",
    "x-amz-copy-source",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-storage-class",
];

pub(crate) fn classify(req: &Request, env: &Env) -> Result<Authorization, Unclassified> {
    let raw = path_of(req);
    let path = raw.strip_prefix('/').unwrap_or(raw);
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let (bucket, key) = (percent_decode(bucket, false), percent_decode(key, false));
    let params = parse_query(query_of(req));
    let method = req.method.to_ascii_uppercase();
    let auth = if bucket.is_empty() {
        match method.as_str() {
            "GET" => Ok(Authorization::new("s3:ListAllMyBuckets", star())),
            _ => Err("no bucket in the path".to_string()),
        }
    } else if key.is_empty() {
        bucket_op(&method, &bucket, &params, env)
    } else {
        object_op(&method, &bucket, &key, &params, req, env)
    };
    auth.map(|a| a.with("s3:ResourceAccount", vec![env.account.to_string()]))
        .map_err(|reason| unclassified(req, "s3", &operation_hint(&method, &params), &reason))
}

fn operation_hint(method: &str, params: &[Param]) -> String {
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    format!("{method} ?{}", names.join("&"))
}

/// The subresource a request addresses, from the names in `known`: `""` for none, an error
/// for a valueless parameter nobody mapped.
fn subresource<'k>(
    params: &[Param],
    known: impl Iterator<Item = &'k str> + Clone,
) -> Result<&'k str, String> {
    for param in params {
        if let Some(sub) = known.clone().find(|k| !k.is_empty() && *k == param.name) {
            return Ok(sub);
        }
    }
    match params.iter().find(|p| p.value.is_none()) {
        Some(unknown) => Err(format!("unmapped S3 subresource ?{}", unknown.name)),
        None => Ok(""),
    }
}

fn param<'p>(params: &'p [Param], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.value.as_deref())
}

fn bucket_op(
    method: &str,
    bucket: &str,
    params: &[Param],
    env: &Env,
) -> Result<Authorization, String> {
    let sub = subresource(params, BUCKET_OPS.iter().map(|(s, _, _)| *s))?;
    let action = BUCKET_OPS
        .iter()
        .find(|(s, m, _)| *s == sub && *m == method)
        .map(|(_, _, a)| *a)
        .ok_or_else(|| format!("no S3 bucket operation {method} ?{sub}"))?;
    let bucket_arn = format!("arn:{}:s3:::{bucket}", env.partition);
    let resource = if sub == "delete" {
        format!("{bucket_arn}/*")
    } else {
        bucket_arn
    };
    let mut auth = Authorization::new(format!("s3:{action}"), vec![resource]);
    let listing = matches!(sub, "list-type" | "versions") || (sub.is_empty() && method == "GET");
    if listing {
        let prefix = param(params, "prefix").unwrap_or_default();
        auth = auth.with("s3:prefix", vec![prefix.to_string()]);
        for (name, key) in [("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys")] {
            if let Some(value) = param(params, name) {
                auth = auth.with(key, vec![value.to_string()]);
            }
        }
    }
    Ok(auth)
}

fn object_op(
    method: &str,
    bucket: &str,
    key: &str,
    params: &[Param],
    req: &Request,
    env: &Env,
) -> Result<Authorization, String> {
    let sub = subresource(params, OBJECT_OPS.iter().map(|(s, _, _, _)| *s))?;
    let version = param(params, "versionId").filter(|v| !v.is_empty());
    let action = OBJECT_OPS
        .iter()
        .find(|(s, m, _, _)| *s == sub && *m == method)
        .map(|(_, _, plain, versioned)| {
            if version.is_some() {
                *versioned
            } else {
                *plain
            }
        })
        .ok_or_else(|| format!("no S3 object operation {method} ?{sub}"))?;
    let resource = format!("arn:{}:s3:::{bucket}/{key}", env.partition);
    let mut auth = Authorization::new(format!("s3:{action}"), vec![resource]);
    if let Some(version) = version {
        auth = auth.with("s3:versionid", vec![version.to_string()]);
    }
    if method == "PUT" && sub.is_empty() {
        for name in PUT_HEADER_KEYS {
            if let Some(value) = crate::request::header(req, name) {
                auth = auth.with(&format!("s3:{name}"), vec![value.to_string()]);
            }
        }
    }
    Ok(auth)
}

/// Real S3 answers a GET/HEAD of a missing key with 403 AccessDenied (not 404 NoSuchKey)
/// unless the caller may `s3:ListBucket` the bucket. For an `s3:GetObject` authorization
/// this is the ListBucket authorization to check before passing moto's 404 on: resource
/// `arn:aws:s3:::bucket`, context `s3:prefix` = the key (other keys carried over). None for
/// any other action.
pub fn list_bucket_for_missing_key(auth: &Authorization) -> Option<Authorization> {
    if auth.action != "s3:GetObject" {
        return None;
    }
    let resource = auth.resources.first()?;
    let (head, object) = resource.split_once(":s3:::")?;
    let (bucket, key) = object.split_once('/')?;
    if !head.starts_with("arn:") || bucket.is_empty() {
        return None;
    }
    let mut context = auth.context.clone();
    context.retain(|k, _| !k.starts_with("s3:x-amz-") && k != "s3:versionid");
    context.insert("s3:prefix".to_string(), vec![key.to_string()]);
    Some(Authorization {
        action: "s3:ListBucket".to_string(),
        resources: vec![format!("{head}:s3:::{bucket}")],
        context,
    })
}
