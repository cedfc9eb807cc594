//! Per-family token buckets. Each family refills at its rate (req/s) and holds at most one
//! second's worth (at least 1 token). Over the limit → 429 `REQUEST_LIMIT_EXCEEDED` with
//! `Retry-After: 1`.

use std::collections::HashMap;
use std::time::Instant;

use crate::config::RateLimits;

/// The rate-limit family of an API request (see the crate doc for the table). The request
/// log's `family` field and the stats use the same names.
pub fn family_of(method: &str, path: &str) -> &'static str {
    let _ = method;
    let rest = match path.strip_prefix("/api/") {
        Some(r) => r,
        None => return "other",
    };
    // Strip the version segment ("2.0/", "2.1/", "2.2/").
    let rest = rest.split_once('/').map(|(_, r)| r).unwrap_or("");
    if let Some(jobs) = rest.strip_prefix("jobs/") {
        if let Some(runs) = jobs.strip_prefix("runs/") {
            return match runs {
                "cancel" | "cancel-all" | "delete" | "submit" | "repair" => "runs_write",
                _ => "runs_read",
            };
        }
        return match jobs {
            "update" | "delete" => "jobs_update",
            _ => "jobs_read",
        };
    }
    let first = rest.split('/').next().unwrap_or("");
    match first {
        "clusters" => "clusters",
        "instance-pools" => "pools",
        "pipelines" => "pipelines",
        "permissions" => "permissions",
        "preview" if rest.starts_with("preview/scim/") => "scim",
        "sql" if rest.starts_with("sql/warehouses") => "warehouses",
        "sql" if rest.starts_with("sql/statements") => "sql",
        _ => "other",
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of one emulator.
#[derive(Debug)]
pub struct RateLimiter {
    pub limits: RateLimits,
    buckets: HashMap<&'static str, Bucket>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            buckets: HashMap::new(),
        }
    }

    pub fn set_limits(&mut self, limits: RateLimits) {
        self.limits = limits;
        self.buckets.clear();
    }

    /// Takes one token for `family`; false when the request must be refused.
    pub fn try_acquire(&mut self, family: &'static str, now: Instant) -> bool {
        let rate = self.limits.get(family);
        if !(rate.is_finite() && rate > 0.0) {
            return true;
        }
        let capacity = rate.max(1.0);
        let bucket = self.buckets.entry(family).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family_of("POST", "/api/2.2/jobs/update"), "jobs_update");
        assert_eq!(family_of("GET", "/api/2.1/jobs/list"), "jobs_read");
        assert_eq!(family_of("GET", "/api/2.2/jobs/runs/get"), "runs_read");
        assert_eq!(family_of("POST", "/api/2.2/jobs/runs/cancel"), "runs_write");
        assert_eq!(family_of("GET", "/api/2.1/clusters/list"), "clusters");
        assert_eq!(family_of("GET", "/api/2.0/instance-pools/list"), "pools");
        assert_eq!(
            family_of("GET", "/api/2.0/sql/warehouses/abc"),
            "warehouses"
        );
        assert_eq!(family_of("POST", "/api/2.0/sql/statements"), "sql");
        assert_eq!(family_of("GET", "/api/2.0/pipelines"), "pipelines");
        assert_eq!(
            family_of("GET", "/api/2.0/permissions/jobs/1"),
            "permissions"
        );
        assert_eq!(family_of("GET", "/api/2.0/preview/scim/v2/Me"), "scim");
        assert_eq!(family_of("GET", "/api/2.0/workspace/list"), "other");
        // The configuration endpoints of the drift check have no published limit: `other`.
        for (m, p) in [
            ("GET", "/api/2.0/policies/clusters/list"),
            ("POST", "/api/2.0/policies/clusters/edit"),
            ("GET", "/api/2.0/secrets/scopes/list"),
            ("GET", "/api/2.0/secrets/list"),
            ("POST", "/api/2.0/secrets/acls/put"),
            ("GET", "/api/2.0/repos"),
            ("PATCH", "/api/2.0/repos/123"),
            ("GET", "/api/2.0/workspace/get-status"),
            ("POST", "/api/2.0/workspace/mkdirs"),
            ("GET", "/api/2.1/unity-catalog/catalogs"),
            ("GET", "/api/2.1/unity-catalog/schemas"),
            ("PATCH", "/api/2.1/unity-catalog/permissions/catalog/main"),
        ] {
            assert_eq!(family_of(m, p), "other", "{m} {p}");
        }
        assert_eq!(
            family_of("PUT", "/api/2.0/permissions/repos/123"),
            "permissions"
        );
        assert_eq!(
            family_of("PATCH", "/api/2.0/permissions/jobs/1"),
            "permissions"
        );
        assert_eq!(family_of("PUT", "/api/2.0/pipelines/abc"), "pipelines");
        assert_eq!(
            family_of("POST", "/api/2.0/sql/warehouses/abc/edit"),
            "warehouses"
        );
    }

    #[test]
    fn bucket_refuses_after_burst() {
        let mut rl = RateLimiter::new(RateLimits::default());
        let now = Instant::now();
        let ok = (0..30)
            .filter(|_| rl.try_acquire("jobs_update", now))
            .count();
        assert_eq!(ok, 10);
    }
}
