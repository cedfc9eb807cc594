//! Reads `infra/template.yaml` the way CloudFormation would for each function: the binary, its
//! `Timeout` and `MemorySize`, its environment (Globals merged with the function's own) and its
//! inline policy, with the intrinsic functions (`!Ref`, `!GetAtt`, `!Sub`, `!If`, `!Join`,
//! `!Select`) resolved against the local stack's values. The local Lambda host runs each
//! binary with exactly this, so a renamed or missing variable, or a missing permission, fails
//! the drill instead of the first real failover.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    time::Duration,
};

use serde_json::{json, Map, Value};
use yaml_serde::Value as Yaml;

/// Why the template could not be read or resolved; each names the resource and key.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file is missing or not YAML.
    #[error("infra/template.yaml: {0}")]
    Read(String),
    /// A `!Ref` / `!GetAtt` / `${...}` names something the local stack has no value for.
    #[error("infra/template.yaml: {at}: no local value for `{name}`")]
    Unresolved {
        /// Where (resource and property).
        at: String,
        /// The reference.
        name: String,
    },
    /// A construct the local host does not evaluate.
    #[error("infra/template.yaml: {at}: {what}")]
    Unsupported {
        /// Where.
        at: String,
        /// What.
        what: String,
    },
}

/// One function as deployed: what the local host needs to run its binary like Lambda would.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Logical id in the template (`ShutdownSweepFunction`).
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary` (the cargo binary, also the step's name).
    pub binary: String,
    /// `Timeout` (Globals or the function's; Lambda's default 3 s).
    pub timeout: Duration,
    /// `MemorySize` in MB (Lambda's default 128).
    pub memory_mb: u64,
    /// `Environment.Variables`, resolved.
    pub environment: BTreeMap<String, String>,
    /// Every inline policy document of the function's role (`Policies: - Statement: ...`),
    /// resolved: a JSON array of `{"Version", "Statement"}` documents.
    pub policy: Value,
}

/// The values `!Ref`, `!GetAtt` and `${...}` resolve to in the local stack: parameters,
/// pseudo parameters (`AWS::Region`, ...) and resources (`LedgerBucket`,
/// `LedgerBucket.Arn`). A parameter with no local value falls back to its `Default`.
#[derive(Debug, Clone, Default)]
pub struct LocalValues {
    refs: HashMap<String, Value>,
}

impl LocalValues {
    /// Sets what `!Ref name` (or `!GetAtt name`, when `name` is `Logical.Attr`) yields: a
    /// string, or a list for `CommaDelimitedList` parameters.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        self.refs.insert(name.to_string(), value.into());
        self
    }
}

/// Every `AWS::Serverless::Function` of the template, by binary name.
pub fn functions(
    path: &Path,
    values: &LocalValues,
) -> Result<BTreeMap<String, FunctionSpec>, TemplateError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TemplateError::Read(format!("{}: {e}", path.display())))?;
    let yaml: Yaml = yaml_serde::from_str(&text).map_err(|e| TemplateError::Read(e.to_string()))?;
    let doc = to_json(&yaml);
    let resolver = Resolver::new(&doc, values)?;
    let globals = doc
        .pointer("/Globals/Function")
        .cloned()
        .unwrap_or(json!({}));
    let mut out = BTreeMap::new();
    let Some(resources) = doc.get("Resources").and_then(Value::as_object) else {
        return Err(TemplateError::Read("no Resources".into()));
    };
    for (id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let spec = function(id, resource, &globals, &resolver)?;
        out.insert(spec.binary.clone(), spec);
    }
    Ok(out)
}

fn function(
    id: &str,
    resource: &Value,
    globals: &Value,
    resolver: &Resolver,
) -> Result<FunctionSpec, TemplateError> {
    let props = resource.get("Properties").cloned().unwrap_or(json!({}));
    let binary = resource
        .pointer("/Metadata/BuildProperties/Binary")
        .and_then(Value::as_str)
        .ok_or_else(|| TemplateError::Unsupported {
            at: id.to_string(),
            what: "no Metadata.BuildProperties.Binary".into(),
        })?
        .to_string();
    let number = |key: &str, default: u64| -> Result<u64, TemplateError> {
        let at = format!("{id}.{key}");
        match props.get(key).or_else(|| globals.get(key)) {
            None => Ok(default),
            Some(v) => {
                let v = resolver.resolve(v, &at)?;
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or(TemplateError::Unsupported {
                        at,
                        what: format!("not a number: {v}"),
                    })
            }
        }
    };
    let timeout = Duration::from_secs(number("Timeout", 3)?);
    let memory_mb = number("MemorySize", 128)?;
    let mut environment = BTreeMap::new();
    for source in [globals, &props] {
        let Some(vars) = source
            .pointer("/Environment/Variables")
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (name, v) in vars {
            let at = format!("{id}.Environment.{name}");
            let value = match resolver.resolve(v, &at)? {
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(TemplateError::Unsupported {
                        at,
                        what: format!("not a scalar: {other}"),
                    })
                }
            };
            environment.insert(name.clone(), value);
        }
    }
    let mut documents = Vec::new();
    for (i, p) in props
        .get("Policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{id}.Policies[{i}]");
        let Some(statements) = p.get("Statement") else {
            return Err(TemplateError::Unsupported {
                at,
                what: "only inline `Statement` policies are evaluated locally".into(),
            });
        };
        documents.push(json!({
            "Version": "2012-10-17",
            "Statement": resolver.resolve(statements, &at)?,
        }));
    }
    Ok(FunctionSpec {
        logical_id: id.to_string(),
        binary,
        timeout,
        memory_mb,
        environment,
        policy: Value::Array(documents),
    })
}

/// YAML with CloudFormation's short tags → the JSON form (`!Ref X` → `{"Ref": "X"}`).
fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => n
            .as_u64()
            .map(Value::from)
            .or_else(|| n.as_i64().map(Value::from))
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or(Value::Null),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(m) => Value::Object(
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), to_json(v))))
                .collect(),
        ),
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = to_json(&t.value);
            let key = match tag {
                "Ref" | "Condition" => tag.to_string(),
                other => format!("Fn::{other}"),
            };
            let mut m = Map::new();
            m.insert(key, inner);
            Value::Object(m)
        }
    }
}

struct Resolver {
    refs: HashMap<String, Value>,
    conditions: HashMap<String, Value>,
}

/// The value `AWS::NoValue` resolves to: removed from its list or object.
const NO_VALUE: &str = "\u{0}AWS::NoValue";

impl Resolver {
    fn new(doc: &Value, values: &LocalValues) -> Result<Self, TemplateError> {
        let mut refs = values.refs.clone();
        if let Some(params) = doc.get("Parameters").and_then(Value::as_object) {
            for (name, p) in params {
                if refs.contains_key(name) {
                    continue;
                }
                let Some(default) = p.get("Default") else {
                    continue;
                };
                let list = p.get("Type").and_then(Value::as_str) == Some("CommaDelimitedList");
                let value = match (default, list) {
                    (Value::String(s), true) => Value::Array(
                        s.split(',')
                            .filter(|x| !x.is_empty())
                            .map(|x| Value::String(x.trim().into()))
                            .collect(),
                    ),
                    (Value::Number(n), _) => Value::String(n.to_string()),
                    (other, _) => other.clone(),
                };
                refs.insert(name.clone(), value);
            }
        }
        let conditions = doc
            .get("Conditions")
            .and_then(Value::as_object)
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        Ok(Self { refs, conditions })
    }

    fn lookup(&self, name: &str, at: &str) -> Result<Value, TemplateError> {
        if name == "AWS::NoValue" {
            return Ok(Value::String(NO_VALUE.into()));
        }
        self.refs
            .get(name)
            .cloned()
            .ok_or_else(|| TemplateError::Unresolved {
                at: at.to_string(),
                name: name.to_string(),
            })
    }

    fn resolve(&self, v: &Value, at: &str) -> Result<Value, TemplateError> {
        match v {
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    match self.resolve(item, at)? {
                        Value::String(s) if s == NO_VALUE => {}
                        other => out.push(other),
                    }
                }
                Ok(Value::Array(out))
            }
            Value::Object(m) if m.len() == 1 => {
                let (k, arg) = m
                    .iter()
                    .next()
                    .ok_or_else(|| TemplateError::Read(at.into()))?;
                if k == "Ref" || k.starts_with("Fn::") || k == "Condition" {
                    self.intrinsic(k, arg, at)
                } else {
                    Ok(json!({ k.clone(): self.resolve(arg, at)? }))
                }
            }
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, item) in m {
                    match self.resolve(item, at)? {
                        Value::String(s) if s == NO_VALUE => {}
                        other => {
                            out.insert(k.clone(), other);
                        }
                    }
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn intrinsic(&self, name: &str, arg: &Value, at: &str) -> Result<Value, TemplateError> {
        let unsupported = |what: &str| TemplateError::Unsupported {
            at: at.to_string(),
            what: what.to_string(),
        };
        match name {
            "Ref" => self.lookup(
                arg.as_str()
                    .ok_or_else(|| unsupported("Ref of a non-string"))?,
                at,
            ),
            "Fn::GetAtt" => {
                let dotted = match arg {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => parts
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("."),
                    _ => return Err(unsupported("GetAtt of a non-string")),
                };
                self.lookup(&dotted, at)
            }
            "Fn::Sub" => self.sub(arg, at),
            "Fn::If" => {
                let parts = arg
                    .as_array()
                    .filter(|p| p.len() == 3)
                    .ok_or_else(|| unsupported("If needs 3 items"))?;
                let cond = parts[0]
                    .as_str()
                    .ok_or_else(|| unsupported("If condition name"))?;
                let branch = if self.condition(cond, at)? {
                    &parts[1]
                } else {
                    &parts[2]
                };
                self.resolve(branch, at)
            }
            "Fn::Join" => {
                let parts = arg
                    .as_array()
                    .filter(|p| p.len() == 2)
                    .ok_or_else(|| unsupported("Join needs 2 items"))?;
                let sep = parts[0].as_str().unwrap_or("");
                let items = self.resolve(&parts[1], at)?;
                let strings: Vec<String> = items
                    .as_array()
                    .ok_or_else(|| unsupported("Join of a non-list"))?
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect();
                Ok(Value::String(strings.join(sep)))
            }
            "Fn::Split" => {
                let parts = arg
                    .as_array()
                    .filter(|p| p.len() == 2)
                    .ok_or_else(|| unsupported("Split needs 2 items"))?;
                let sep = parts[0]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| unsupported("Split delimiter"))?;
                let text = self.resolve(&parts[1], at)?;
                let text = text
                    .as_str()
                    .ok_or_else(|| unsupported("Split of a non-string"))?;
                Ok(Value::Array(
                    text.split(sep).map(|x| Value::String(x.into())).collect(),
                ))
            }
            "Fn::Select" => {
                let parts = arg
                    .as_array()
                    .filter(|p| p.len() == 2)
                    .ok_or_else(|| unsupported("Select needs 2 items"))?;
                let index = self.resolve(&parts[0], at)?;
                let index = index
                    .as_u64()
                    .or_else(|| index.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| unsupported("Select index"))?;
                let list = self.resolve(&parts[1], at)?;
                list.as_array()
                    .and_then(|l| l.get(index as usize))
                    .cloned()
                    .ok_or_else(|| unsupported("Select out of range"))
            }
            "Condition" => Ok(Value::Bool(self.condition(arg.as_str().unwrap_or(""), at)?)),
            other => Err(unsupported(&format!(
                "intrinsic {other} is not evaluated locally"
            ))),
        }
    }

    fn condition(&self, name: &str, at: &str) -> Result<bool, TemplateError> {
        let body = self
            .conditions
            .get(name)
            .ok_or_else(|| TemplateError::Unresolved {
                at: at.to_string(),
                name: format!("condition {name}"),
            })?;
        self.truth(body, at)
    }

    fn truth(&self, v: &Value, at: &str) -> Result<bool, TemplateError> {
        let unsupported = |what: &str| TemplateError::Unsupported {
            at: at.to_string(),
            what: what.to_string(),
        };
        let (k, arg) = v
            .as_object()
            .and_then(|m| m.iter().next())
            .ok_or_else(|| unsupported("condition is not a function"))?;
        match k.as_str() {
            "Fn::Equals" => {
                let parts = arg
                    .as_array()
                    .filter(|p| p.len() == 2)
                    .ok_or_else(|| unsupported("Equals needs 2 items"))?;
                let a = self.resolve(&parts[0], at)?;
                let b = self.resolve(&parts[1], at)?;
                let text = |v: &Value| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                };
                Ok(text(&a) == text(&b))
            }
            "Fn::Not" => {
                let inner = arg
                    .as_array()
                    .and_then(|p| p.first())
                    .ok_or_else(|| unsupported("Not needs 1 item"))?;
                Ok(!self.truth(inner, at)?)
            }
            "Fn::And" | "Fn::Or" => {
                let items = arg
                    .as_array()
                    .ok_or_else(|| unsupported("And/Or of a non-list"))?;
                let mut values = Vec::new();
                for i in items {
                    values.push(self.truth(i, at)?);
                }
                Ok(if k == "Fn::And" {
                    values.iter().all(|b| *b)
                } else {
                    values.iter().any(|b| *b)
                })
            }
            "Condition" => self.condition(arg.as_str().unwrap_or(""), at),
            other => Err(unsupported(&format!("condition function {other}"))),
        }
    }

    fn sub(&self, arg: &Value, at: &str) -> Result<Value, TemplateError> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(p) if p.len() == 2 => (
                p[0].as_str().unwrap_or(""),
                p[1].as_object().cloned().unwrap_or_default(),
            ),
            _ => {
                return Err(TemplateError::Unsupported {
                    at: at.into(),
                    what: "Sub form".into(),
                })
            }
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let end = after.find('}').ok_or_else(|| TemplateError::Unsupported {
                at: at.into(),
                what: format!("unclosed ${{ in {text}"),
            })?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else {
                let value = match vars.get(name) {
                    Some(v) => self.resolve(v, at)?,
                    None => self.lookup(name, at)?,
                };
                match value {
                    Value::String(s) => out.push_str(&s),
                    other => out.push_str(&other.to_string()),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> LocalValues {
        let mut v = LocalValues::default();
        v.set("AWS::Region", "us-west-2")
            .set("AWS::AccountId", "123456789012")
            .set("AWS::Partition", "aws")
            .set("Bucket", "ledger")
            .set("Bucket.Arn", "arn:aws:s3:::ledger")
            .set("Secrets", json!(["arn:a", "arn:b"]));
        v
    }

    fn spec(yaml: &str) -> Result<BTreeMap<String, FunctionSpec>, TemplateError> {
        let dir = std::env::temp_dir().join(format!("lifeboat-template-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| TemplateError::Read(e.to_string()))?;
        let path = dir.join("t.yaml");
        std::fs::write(&path, yaml).map_err(|e| TemplateError::Read(e.to_string()))?;
        let out = functions(&path, &values());
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    const BASE: &str = r#"
Parameters:
  Days: {Type: Number, Default: 0}
  Names: {Type: CommaDelimitedList, Default: "a,b"}
Conditions:
  HasDays: !Not [!Equals [!Ref Days, 0]]
Globals:
  Function:
    Timeout: 30
    Environment:
      Variables:
        LEDGER: !Ref Bucket
        LOG: info
Resources:
  OneFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: one}}
    Properties:
      MemorySize: 256
      Environment:
        Variables:
          LOG: debug
          ARN: !Sub "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:x/${!Literal}"
          FIRST: !Select [0, !Ref Names]
          MODE: !If [HasDays, locked, open]
      Policies:
        - Statement:
            - Effect: Allow
              Action: s3:GetObject
              Resource: !Sub "${Bucket.Arn}/*"
            - Effect: Allow
              Action: secretsmanager:GetSecretValue
              Resource: !Ref Secrets
"#;

    #[test]
    fn environment_timeout_memory_and_policy_resolve_like_cloudformation() -> anyhow::Result<()> {
        let functions = spec(BASE)?;
        let one = &functions["one"];
        assert_eq!(one.logical_id, "OneFunction");
        assert_eq!(one.timeout, Duration::from_secs(30), "Globals timeout");
        assert_eq!(one.memory_mb, 256);
        let env: Vec<(&str, &str)> = one
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            vec![
                ("ARN", "arn:aws:states:us-west-2:123456789012:x/${Literal}"),
                ("FIRST", "a"),
                ("LEDGER", "ledger"),
                ("LOG", "debug"),
                ("MODE", "open"),
            ]
        );
        assert_eq!(
            one.policy,
            json!([{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::ledger/*"},
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": ["arn:a", "arn:b"]},
            ]}])
        );
        Ok(())
    }

    #[test]
    fn what_the_local_stack_cannot_resolve_is_named() {
        let table = [
            ("LEDGER: !Ref Bucket", "LEDGER: !Ref Missing", "`Missing`"),
            ("LOG: info", "LOG: !GetAtt Bucket.Name", "`Bucket.Name`"),
            ("LOG: info", "LOG: !Sub \"${Nope}\"", "`Nope`"),
            ("LOG: info", "LOG: !Base64 x", "intrinsic Fn::Base64"),
            (
                "- Statement:",
                "- S3ReadPolicy: {}\n        - Statement:",
                "inline `Statement`",
            ),
        ];
        for (from, to, expected) in table {
            let yaml = BASE.replacen(from, to, 1);
            let err = spec(&yaml).expect_err(to).to_string();
            assert!(err.contains(expected), "{to}: {err}");
        }
    }

    /// The approver slots: each e-mail approver's subscription exists, and no more, for 0, 1,
    /// 2 and 8 approvers (the padded list never makes `Fn::Select` run past its end).
    #[test]
    fn each_email_approver_gets_one_subscription_slot() -> anyhow::Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("infra/template.yaml"))?;
        let doc = to_json(&yaml_serde::from_str::<Yaml>(&text)?);
        let slots = lifeboat_core::plan::MAX_EMAIL_APPROVERS;
        for count in [0, 1, 2, slots] {
            let emails: Vec<String> = (0..count).map(|i| format!("a{i}@x.com")).collect();
            let mut values = LocalValues::default();
            values.set("ApproverEmails", json!(emails));
            let resolver = Resolver::new(&doc, &values)?;
            for slot in 0..slots {
                let name = format!("ApproverSubscription{slot}");
                let resource = &doc["Resources"][&name];
                let condition = resource["Condition"].as_str().unwrap_or_default();
                let exists = resolver.condition(condition, &name)?;
                let email = emails.get(slot);
                assert_eq!(exists, email.is_some(), "{count} approvers, slot {slot}");
                if let Some(email) = email {
                    let endpoint = resolver.resolve(&resource["Properties"]["Endpoint"], &name)?;
                    let filter =
                        resolver.resolve(&resource["Properties"]["FilterPolicy"], &name)?;
                    assert_eq!(endpoint, json!(email));
                    assert_eq!(filter, json!({"approver": [email]}));
                }
            }
            assert!(doc["Resources"]
                .get(format!("ApproverSubscription{slots}"))
                .is_none());
        }
        Ok(())
    }

    #[test]
    fn the_repository_template_resolves_for_every_function() -> anyhow::Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let values = crate::local::runtime::placeholder_values();
        let functions = functions(&root.join("infra/template.yaml"), &values)?;
        let names: Vec<&str> = lifeboat_core::dispatch::Step::ALL
            .iter()
            .map(|s| s.name())
            .collect();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(
            functions.keys().map(String::as_str).collect::<Vec<_>>(),
            expected
        );
        for f in functions.values() {
            assert!(f.environment.contains_key("LEDGER_BUCKET"), "{}", f.binary);
            assert!(f.timeout >= Duration::from_secs(10), "{}", f.binary);
            assert!(
                !f.policy.as_array().map(Vec::is_empty).unwrap_or(true),
                "{}",
                f.binary
            );
        }
        Ok(())
    }
}
