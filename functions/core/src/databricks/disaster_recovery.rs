//! Databricks Managed Disaster Recovery (account level): failover groups and stable URLs.
//!
//! Called on the account host (`https://accounts.cloud.databricks.com`) with an account admin's
//! OAuth M2M token (`/oidc/accounts/{account_id}/v1/token`; build the client with
//! [`AccountClient`]). Wire format, as the official SDK's `disasterrecovery` service speaks it:
//! - `GET /api/disaster-recovery/v1/accounts/{account_id}/failover-groups/{id}` → a
//!   [`FailoverGroup`]; `GET .../stable-urls/{id}` → a [`StableUrl`].
//! - `POST .../failover-groups/{id}/failover` `{target_primary_region, etag?, failover_type}` →
//!   the group, `FAILING_OVER` until it settles `ACTIVE` (or `FAILOVER_FAILED`).
//! - A stale `etag` answers 409 `ABORTED` ([`ErrorKind::Conflict`]); a target that already is
//!   the primary, or a group that is not `ACTIVE`/`FAILOVER_FAILED`, answers 400
//!   `FAILED_PRECONDITION` ([`ApiError::code`]).
//!
//! The failover POST is not retried by the client on an ambiguous failure the way idempotent
//! calls are safe to be: the caller reads the group again and decides (see
//! `steps::managed_failover`). Reads retry as usual.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use super::{ApiError, ClientConfig, Credentials, Family, WorkspaceClient};

/// A client of the account host: the same transport as a workspace client (limits, retries,
/// deadline), with the account's token endpoint.
pub type AccountClient = WorkspaceClient;

/// Builds the configuration of an account-host client for `account_id`.
pub fn account_config(
    account_url: &str,
    account_id: &str,
    credentials: Credentials,
) -> ClientConfig {
    let mut config = ClientConfig::new(account_url, credentials);
    config.token_path = super::auth::account_token_path(account_id);
    config
}

/// Aggregate state of a failover group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailoverGroupState {
    Active,
    Creating,
    CreationFailed,
    Deleting,
    DeletionFailed,
    FailingOver,
    FailoverFailed,
    InitialReplication,
    /// A state this client does not know (the API may add some): never treated as ready.
    #[serde(other)]
    Other,
}

/// The part of a failover group Lifeboat decides on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverGroup {
    /// `accounts/{account_id}/failover-groups/{id}` (optional in the API's schema).
    #[serde(default)]
    pub name: String,
    /// Where replication flows from; changes when a failover succeeds.
    #[serde(default)]
    pub effective_primary_region: Option<String>,
    /// Every participating region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Absent on a group the API is still creating.
    #[serde(default)]
    pub state: Option<FailoverGroupState>,
    /// Optimistic-locking version; a failover sent with a stale one is refused.
    #[serde(default)]
    pub etag: Option<String>,
    /// The latest point in time to which data has been replicated (an RPO source).
    #[serde(default)]
    pub replication_point: Option<DateTime<Utc>>,
    /// Errors currently hold the replication point back.
    #[serde(default)]
    pub has_replication_point_blocking_errors: Option<bool>,
}

/// How the failover treats the current primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverType {
    /// A planned failover (`FAILOVER_TYPE_UNSPECIFIED` on the wire): needs the primary region.
    Planned,
    /// `FORCED`: proceeds with the primary region down, accepting the data after the
    /// replication point as lost.
    Forced,
}

impl FailoverType {
    /// The wire value.
    pub fn as_wire(self) -> &'static str {
        match self {
            FailoverType::Planned => "FAILOVER_TYPE_UNSPECIFIED",
            FailoverType::Forced => "FORCED",
        }
    }
}

/// A failover-aware URL clients keep across failovers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableUrl {
    /// `accounts/{account_id}/stable-urls/{id}` (optional in the API's schema).
    #[serde(default)]
    pub name: String,
    /// The URL clients use.
    #[serde(default)]
    pub url: Option<String>,
    /// The workspace it routes to now.
    #[serde(default)]
    pub effective_workspace_id: Option<String>,
    /// The group it follows, if attached.
    #[serde(default)]
    pub failover_group_name: Option<String>,
}

fn path(name: &str) -> String {
    format!("/api/disaster-recovery/v1/{name}")
}

impl WorkspaceClient {
    /// `GET /api/disaster-recovery/v1/{name}` for a failover group.
    #[instrument(skip(self))]
    pub async fn get_failover_group(&self, name: &str) -> Result<FailoverGroup, ApiError> {
        self.get(Family::Other, &path(name), &[]).await
    }

    /// `POST /api/disaster-recovery/v1/{name}/failover`: starts a failover to `target_region`.
    /// With `etag`, the API refuses it (409 ABORTED) if the group changed since it was read.
    #[instrument(skip(self))]
    pub async fn failover_failover_group(
        &self,
        name: &str,
        target_region: &str,
        failover_type: FailoverType,
        etag: Option<&str>,
    ) -> Result<FailoverGroup, ApiError> {
        let mut body = json!({
            "target_primary_region": target_region,
            "failover_type": failover_type.as_wire(),
        });
        if let Some(etag) = etag {
            body["etag"] = json!(etag);
        }
        self.post_once(Family::Other, &format!("{}/failover", path(name)), body)
            .await
    }

    /// `GET /api/disaster-recovery/v1/{name}` for a stable URL.
    #[instrument(skip(self))]
    pub async fn get_stable_url(&self, name: &str) -> Result<StableUrl, ApiError> {
        self.get(Family::Other, &path(name), &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_decodes_with_unknown_states_and_missing_fields() {
        let cases = [
            (
                r#"{"name":"accounts/a/failover-groups/g","state":"ACTIVE","effective_primary_region":"us-east-1","etag":"e1","replication_point":"2026-12-01T07:00:00.123Z","regions":["us-east-1","us-west-2"]}"#,
                Some(FailoverGroupState::Active),
                true,
            ),
            (
                r#"{"name":"accounts/a/failover-groups/g","state":"SOMETHING_NEW"}"#,
                Some(FailoverGroupState::Other),
                false,
            ),
            (r#"{"name":"accounts/a/failover-groups/g"}"#, None, false),
        ];
        for (wire, state, has_point) in cases {
            let g: FailoverGroup = serde_json::from_str(wire).expect(wire);
            assert_eq!(g.state, state, "{wire}");
            assert_eq!(g.replication_point.is_some(), has_point, "{wire}");
        }
    }

    #[test]
    fn failover_types_have_their_wire_names() {
        assert_eq!(FailoverType::Forced.as_wire(), "FORCED");
        assert_eq!(FailoverType::Planned.as_wire(), "FAILOVER_TYPE_UNSPECIFIED");
    }
}
