//! awsQuery services: `POST /` with a form body `Action={Op}&Version={v}&...` (SNS
//! `2010-03-31`, STS `2011-06-15`). The IAM action is `{service}:{Action}` (SNS `PublishBatch`
//! is authorized as `sns:Publish`); resources come from the form fields named below.

use crate::request::{one, star, unclassified, Form, Service};
use crate::{Authorization, Env, Request, Unclassified};

pub(crate) fn classify(
    service: &Service,
    req: &Request,
    env: &Env,
) -> Result<Authorization, Unclassified> {
    let form = Form::parse(req);
    let action = form.get("Action").unwrap_or("-");
    let auth = match service {
        Service::Sns => sns(action, &form, env),
        Service::Sts => sts(action, &form),
        _ => None,
    };
    auth.ok_or_else(|| unclassified(req, service.name(), action, "operation not mapped"))
}

/// SNS: topics by `TopicArn`. Subscriptions have no IAM resource type, so subscription
/// operations are authorized against `*`.
fn sns(action: &str, form: &Form, env: &Env) -> Option<Authorization> {
    let topic = || one(form.get("TopicArn").map(str::to_string));
    let (iam_action, resources) = match action {
        "Publish" => {
            let target = form.get("TopicArn").or_else(|| form.get("TargetArn"));
            ("Publish", one(target.map(str::to_string)))
        }
        "PublishBatch" => ("Publish", topic()),
        "ListSubscriptionsByTopic"
        | "Subscribe"
        | "ConfirmSubscription"
        | "GetTopicAttributes"
        | "SetTopicAttributes"
        | "DeleteTopic"
        | "AddPermission"
        | "RemovePermission"
        | "GetDataProtectionPolicy"
        | "PutDataProtectionPolicy" => (action, topic()),
        "CreateTopic" => {
            let (p, r, a) = (env.partition, env.region, env.account);
            let arn = form
                .get("Name")
                .map(|name| format!("arn:{p}:sns:{r}:{a}:{name}"));
            (action, one(arn))
        }
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            (action, one(form.get("ResourceArn").map(str::to_string)))
        }
        "GetSubscriptionAttributes"
        | "SetSubscriptionAttributes"
        | "Unsubscribe"
        | "ListTopics"
        | "ListSubscriptions" => (action, star()),
        _ => return None,
    };
    let mut auth = Authorization::new(format!("sns:{iam_action}"), resources);
    if action == "Subscribe" {
        for (field, key) in [("Protocol", "sns:Protocol"), ("Endpoint", "sns:Endpoint")] {
            if let Some(value) = form.get(field) {
                auth = auth.with(key, vec![value.to_string()]);
            }
        }
    }
    Some(auth)
}

/// STS: `GetCallerIdentity` needs no permission at all (see
/// [`Authorization::needs_no_permission`]).
fn sts(action: &str, form: &Form) -> Option<Authorization> {
    let resources = match action {
        "GetCallerIdentity" | "GetSessionToken" | "GetAccessKeyInfo" => star(),
        "AssumeRole" => one(form.get("RoleArn").map(str::to_string)),
        _ => return None,
    };
    Some(Authorization::new(format!("sts:{action}"), resources))
}
