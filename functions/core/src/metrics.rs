//! CloudWatch metrics in Embedded Metric Format: one JSON log line per data point, turned into
//! a metric by CloudWatch Logs — no SDK call and no IAM permission needed. The template's
//! alarms watch them (namespace `Lifeboat`, dimension `Plan`).

use serde_json::json;

/// The metric namespace.
pub const NAMESPACE: &str = "Lifeboat";

/// The EMF document for one data point (pure, for tests).
pub fn emf(name: &str, value: f64, plan: &str, timestamp_ms: i64) -> serde_json::Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Plan"]],
                "Metrics": [{"Name": name, "Unit": "Count"}]
            }]
        },
        "Plan": plan,
        name: value,
    })
}

/// Emits a data point when running in Lambda (elsewhere there is no log pipeline to read it).
pub fn emit(name: &str, value: f64, plan: &str) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!(
            "{}",
            emf(name, value, plan, chrono::Utc::now().timestamp_millis())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_shape() {
        let v = emf("FenceUnconfirmed", 3.0, "sales", 1);
        assert_eq!(v["FenceUnconfirmed"], 3.0);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Lifeboat");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "FenceUnconfirmed"
        );
    }
}
