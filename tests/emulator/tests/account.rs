//! The account-level Managed DR API: OAuth, failover groups (etag, planned and forced
//! failovers, FAILOVER_FAILED), stable URLs following the primary, paging and errors.

use std::time::Duration;

use databricks_emulator::{serve_account, AccountConfig, RunningAccount};
use serde_json::{json, Value};

const ACCOUNT: &str = "acc-1";
const PRIMARY_WS: &str = "1234567890123456";
const DR_WS: &str = "6543210987654321";

struct A {
    emu: RunningAccount,
    c: reqwest::Client,
    token: String,
}

impl A {
    async fn start() -> A {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cfg = AccountConfig::new(ACCOUNT, "admin-sp", "s3cret")
            .workspace(PRIMARY_WS, "us-east-1")
            .workspace(DR_WS, "us-west-2")
            .failover_duration(Duration::from_millis(150));
        let emu = serve_account(cfg, 0).await.expect("account API starts");
        let c = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let r: Value = c
            .post(format!("{}/oidc/accounts/{ACCOUNT}/v1/token", emu.url()))
            .basic_auth("admin-sp", Some("s3cret"))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token json");
        let token = r["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        A { emu, c, token }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/disaster-recovery/v1/accounts/{ACCOUNT}/{path}",
            self.emu.url()
        )
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .c
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        self.c
            .post(format!("{}/__emulator/account/{path}", self.emu.url()))
            .json(&body)
            .send()
            .await
            .expect("admin")
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// A stable URL on the primary and a group over both workspaces that carries it.
    async fn with_group(&self) -> Value {
        let (s, _) = self
            .call(
                reqwest::Method::POST,
                "stable-urls?stable_url_id=prod",
                Some(json!({"initial_workspace_id": PRIMARY_WS})),
            )
            .await;
        assert_eq!(s, 200);
        let (s, g) = self
            .call(
                reqwest::Method::POST,
                "failover-groups?failover_group_id=sales",
                Some(json!({
                    "initial_primary_region": "us-east-1",
                    "regions": ["us-east-1", "us-west-2"],
                    "workspace_sets": [{
                        "name": "prod",
                        "workspace_ids": [PRIMARY_WS, DR_WS],
                        "replicate_workspace_assets": true,
                        "stable_url_names": [format!("accounts/{ACCOUNT}/stable-urls/prod")],
                    }],
                })),
            )
            .await;
        assert_eq!(s, 200, "{g}");
        g
    }

    async fn group(&self) -> Value {
        let (s, g) = self
            .call(reqwest::Method::GET, "failover-groups/sales", None)
            .await;
        assert_eq!(s, 200, "{g}");
        g
    }

    async fn settle(&self) -> Value {
        for _ in 0..100 {
            let g = self.group().await;
            if g["state"] != "FAILING_OVER" {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("the failover never settled");
    }
}

#[tokio::test]
async fn a_planned_failover_moves_the_primary_and_the_stable_url_and_changes_the_etag() {
    let a = A::start().await;
    let created = a.with_group().await;
    assert_eq!(created["state"], "ACTIVE");
    assert_eq!(created["effective_primary_region"], "us-east-1");
    assert!(created["replication_point"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let etag = created["etag"].as_str().expect("etag").to_string();

    let (s, g) = a
        .call(
            reqwest::Method::POST,
            "failover-groups/sales/failover",
            Some(json!({"target_primary_region": "us-west-2", "etag": etag,
                        "failover_type": "FAILOVER_TYPE_UNSPECIFIED"})),
        )
        .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["state"], "FAILING_OVER");
    assert_eq!(g["effective_primary_region"], "us-east-1");

    let done = a.settle().await;
    assert_eq!(done["state"], "ACTIVE");
    assert_eq!(done["effective_primary_region"], "us-west-2");
    assert_ne!(done["etag"], json!(etag));
    let (_, url) = a.call(reqwest::Method::GET, "stable-urls/prod", None).await;
    assert_eq!(url["effective_workspace_id"], DR_WS);
    assert_eq!(
        url["failover_group_name"],
        format!("accounts/{ACCOUNT}/failover-groups/sales")
    );

    // The target is now the primary: asking again is refused, not repeated.
    let (s, e) = a
        .call(
            reqwest::Method::POST,
            "failover-groups/sales/failover",
            Some(json!({"target_primary_region": "us-west-2", "failover_type": "FORCED"})),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (400, Some("FAILED_PRECONDITION"))
    );
}

#[tokio::test]
async fn a_stale_etag_is_refused_with_aborted_and_nothing_moves() {
    let a = A::start().await;
    let created = a.with_group().await;
    let stale = created["etag"].clone();
    a.admin("failover-groups/sales/touch", json!({})).await;
    let (s, e) = a
        .call(
            reqwest::Method::POST,
            "failover-groups/sales/failover",
            Some(json!({"target_primary_region": "us-west-2", "etag": stale,
                        "failover_type": "FORCED"})),
        )
        .await;
    assert_eq!((s, e["error_code"].as_str()), (409, Some("ABORTED")), "{e}");
    let g = a.group().await;
    assert_eq!(g["state"], "ACTIVE");
    assert_eq!(g["effective_primary_region"], "us-east-1");
}

#[tokio::test]
async fn a_planned_failover_away_from_a_region_that_is_down_fails_and_a_forced_one_succeeds() {
    let a = A::start().await;
    a.with_group().await;
    a.admin("regions/us-east-1/outage", json!({"down": true}))
        .await;
    let before = a.group().await;
    assert_eq!(before["has_replication_point_blocking_errors"], true);
    let frozen = before["replication_point"].clone();

    let (s, _) = a
        .call(
            reqwest::Method::POST,
            "failover-groups/sales/failover",
            Some(json!({"target_primary_region": "us-west-2"})),
        )
        .await;
    assert_eq!(s, 200);
    let failed = a.settle().await;
    assert_eq!(failed["state"], "FAILOVER_FAILED");
    assert_eq!(failed["effective_primary_region"], "us-east-1");
    assert_eq!(
        failed["replication_point"], frozen,
        "replication stopped with the region"
    );

    let (s, _) = a
        .call(
            reqwest::Method::POST,
            "failover-groups/sales/failover",
            Some(
                json!({"target_primary_region": "us-west-2", "etag": failed["etag"],
                        "failover_type": "FORCED"}),
            ),
        )
        .await;
    assert_eq!(s, 200);
    let done = a.settle().await;
    assert_eq!(done["state"], "ACTIVE");
    assert_eq!(done["effective_primary_region"], "us-west-2");
}

#[tokio::test]
async fn an_armed_failure_ends_failover_failed_once() {
    let a = A::start().await;
    a.with_group().await;
    a.admin("failover-groups/sales/fail-next", json!({})).await;
    let body = json!({"target_primary_region": "us-west-2", "failover_type": "FORCED"});
    a.call(
        reqwest::Method::POST,
        "failover-groups/sales/failover",
        Some(body.clone()),
    )
    .await;
    assert_eq!(a.settle().await["state"], "FAILOVER_FAILED");
    a.call(
        reqwest::Method::POST,
        "failover-groups/sales/failover",
        Some(body),
    )
    .await;
    assert_eq!(a.settle().await["state"], "ACTIVE");
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    let a = A::start().await;
    a.with_group().await;
    let cases = [
        (
            json!({"target_primary_region": "eu-west-1"}),
            400,
            "INVALID_PARAMETER_VALUE",
            "eu-west-1",
        ),
        (
            json!({"target_primary_region": "us-west-2", "failover_type": "GENTLE"}),
            400,
            "INVALID_PARAMETER_VALUE",
            "GENTLE",
        ),
        (
            json!({"failover_type": "FORCED"}),
            400,
            "INVALID_PARAMETER_VALUE",
            "target_primary_region",
        ),
        (
            json!({"target_primary_region": "us-west-2", "colour": 1}),
            400,
            "INVALID_PARAMETER_VALUE",
            "colour",
        ),
    ];
    for (body, status, code, names) in cases {
        let (s, e) = a
            .call(
                reqwest::Method::POST,
                "failover-groups/sales/failover",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (s, e["error_code"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
        assert!(
            e["message"].as_str().unwrap_or("").contains(names),
            "{body}: {e}"
        );
    }
    let (s, e) = a
        .call(reqwest::Method::GET, "failover-groups/nope", None)
        .await;
    assert_eq!((s, e["error_code"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(a.group().await["state"], "ACTIVE", "nothing moved");

    // No token, or another account: refused.
    let r =
        a.c.get(a.url("failover-groups/sales"))
            .send()
            .await
            .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let r =
        a.c.get(format!(
            "{}/api/disaster-recovery/v1/accounts/other/failover-groups/sales",
            a.emu.url()
        ))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn groups_page_with_a_token() {
    let a = A::start().await;
    for i in 0..3 {
        let (s, _) = a
            .call(
                reqwest::Method::POST,
                &format!("failover-groups?failover_group_id=g{i}"),
                Some(json!({"initial_primary_region": "us-east-1",
                            "regions": ["us-east-1", "us-west-2"],
                            "workspace_sets": [{"name": "s", "workspace_ids": [PRIMARY_WS, DR_WS]}]})),
            )
            .await;
        assert_eq!(s, 200);
    }
    let (_, p1) = a
        .call(reqwest::Method::GET, "failover-groups?page_size=2", None)
        .await;
    assert_eq!(p1["failover_groups"].as_array().map(Vec::len), Some(2));
    let token = p1["next_page_token"].as_str().expect("a next page");
    let (_, p2) = a
        .call(
            reqwest::Method::GET,
            &format!("failover-groups?page_size=2&page_token={token}"),
            None,
        )
        .await;
    assert_eq!(p2["failover_groups"].as_array().map(Vec::len), Some(1));
    assert!(p2.get("next_page_token").is_none());
}
