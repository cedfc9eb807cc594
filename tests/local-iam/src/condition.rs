//! `Condition` blocks: `{"Operator": {"key": value | [values]}, ...}`.
//!
//! - Every operator in a block, and every key under an operator, must hold (AND); several
//!   values for one key are alternatives (OR; for negated operators: matches none of them).
//! - Keys are looked up case-insensitively; values compare as the operator says. Without a
//!   set prefix, a multi-valued key holds when any of its values matches (negated: none does).
//! - Supported: `String(Not)Equals`, `String(Not)EqualsIgnoreCase`, `String(Not)Like`,
//!   `Arn(Not)Equals`, `Arn(Not)Like` (per colon-separated ARN part, wildcards allowed in
//!   both), `Bool`, `Numeric(Not)Equals`, `NumericLessThan(Equals)`,
//!   `NumericGreaterThan(Equals)`, `Null`; each (but `Null`) with an `IfExists` suffix and
//!   `ForAnyValue:` / `ForAllValues:` prefixes. Any other operator (`Date*`, `IpAddress`,
//!   `Binary*`, a typo) makes the block false: the statement does not apply.
//! - A key absent from the request (AWS, "Condition operators"): `...IfExists` holds; `Null`
//!   tests exactly that; `ForAllValues:` holds (vacuously, as in AWS); `ForAnyValue:` fails;
//!   otherwise a positive operator fails and a negated one (`StringNotEquals`,
//!   `StringNotLike`, `ArnNotLike`, `NumericNotEquals`, ...) holds.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::policy::glob;

pub(crate) fn holds(condition: Option<&Value>, context: &BTreeMap<String, Vec<String>>) -> bool {
    let Some(condition) = condition else {
        return true;
    };
    let Some(block) = condition.as_object() else {
        return false;
    };
    block.iter().all(|(name, keys)| {
        let (Some(operator), Some(keys)) = (Operator::parse(name), keys.as_object()) else {
            return false;
        };
        keys.iter()
            .all(|(key, expected)| operator.holds(lookup(context, key), &values(expected)))
    })
}

fn lookup<'c>(context: &'c BTreeMap<String, Vec<String>>, key: &str) -> Option<&'c [String]> {
    context
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_slice())
}

/// A condition value or list, as strings (`true`, `5`); objects and nulls match nothing.
fn values(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(items) => items.iter().flat_map(values).collect(),
        _ => Vec::new(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Set {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Clone, Copy)]
enum Test {
    Equals,
    EqualsIgnoreCase,
    Like,
    Arn,
    Bool,
    Numeric(fn(f64, f64) -> bool),
    Null,
}

struct Operator {
    set: Set,
    test: Test,
    negated: bool,
    if_exists: bool,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Set::AnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Set::AllValues, rest)
        } else {
            (Set::Single, name)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let (test, negated) = match base {
            "StringEquals" => (Test::Equals, false),
            "StringNotEquals" => (Test::Equals, true),
            "StringEqualsIgnoreCase" => (Test::EqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (Test::EqualsIgnoreCase, true),
            "StringLike" => (Test::Like, false),
            "StringNotLike" => (Test::Like, true),
            "ArnEquals" | "ArnLike" => (Test::Arn, false),
            "ArnNotEquals" | "ArnNotLike" => (Test::Arn, true),
            "Bool" => (Test::Bool, false),
            "NumericEquals" => (Test::Numeric(|a, b| a == b), false),
            "NumericNotEquals" => (Test::Numeric(|a, b| a == b), true),
            "NumericLessThan" => (Test::Numeric(|a, b| a < b), false),
            "NumericLessThanEquals" => (Test::Numeric(|a, b| a <= b), false),
            "NumericGreaterThan" => (Test::Numeric(|a, b| a > b), false),
            "NumericGreaterThanEquals" => (Test::Numeric(|a, b| a >= b), false),
            "Null" if !if_exists && set == Set::Single => (Test::Null, false),
            _ => return None,
        };
        Some(Self {
            set,
            test,
            negated,
            if_exists,
        })
    }

    fn holds(&self, present: Option<&[String]>, expected: &[String]) -> bool {
        let present = present.filter(|values| !values.is_empty());
        if let Test::Null = self.test {
            let absent = present.is_none();
            return expected.iter().any(|e| parse_bool(e) == Some(absent));
        }
        let Some(actual) = present else {
            return self.if_exists
                || match self.set {
                    Set::Single => self.negated,
                    Set::AnyValue => false,
                    Set::AllValues => true,
                };
        };
        let satisfied = |value: &String| self.matches_any(value, expected) != self.negated;
        match self.set {
            Set::Single => actual.iter().any(|v| self.matches_any(v, expected)) != self.negated,
            Set::AnyValue => actual.iter().any(satisfied),
            Set::AllValues => actual.iter().all(satisfied),
        }
    }

    /// Whether the request value matches any of the policy values (before negation).
    fn matches_any(&self, actual: &str, expected: &[String]) -> bool {
        expected.iter().any(|e| match self.test {
            Test::Equals => actual == e,
            Test::EqualsIgnoreCase => actual.to_lowercase() == e.to_lowercase(),
            Test::Like => glob(e, actual),
            Test::Arn => arn_like(e, actual),
            Test::Bool => parse_bool(actual).is_some() && parse_bool(actual) == parse_bool(e),
            Test::Numeric(compare) => match (number(actual), number(e)) {
                (Some(a), Some(b)) => compare(a, b),
                _ => false,
            },
            Test::Null => false,
        })
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// ArnLike: the six colon-separated parts compared one by one, wildcards within a part.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob(p, a))
}
