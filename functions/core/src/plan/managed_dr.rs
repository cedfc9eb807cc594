//! `[managed_dr]`: Databricks Managed Disaster Recovery's failover group, which Lifeboat fails
//! over (and back) between fencing and start-up. Its checks span `[sites]`: a site naming a
//! group must name this one, and a stable URL needs both workspaces' ids to know where it must
//! route.

use serde::{Deserialize, Serialize};

use super::sites::{SiteAuth, Sites};
use super::{invalid, PlanError};

/// Databricks Managed DR (account level). Managed DR replicates; Lifeboat still fences, gates,
/// validates and reports around its failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedDr {
    /// The account host, e.g. `https://accounts.cloud.databricks.com`.
    pub account_url: String,
    /// The Databricks account id.
    pub account_id: String,
    /// The failover group's id (its name is `accounts/{account_id}/failover-groups/{id}`).
    pub failover_group: String,
    /// An account admin service principal (OAuth M2M; the account API takes no PATs).
    pub auth: SiteAuth,
    /// The stable URL clients use (its id), if any: after the failover it must route to the
    /// target's workspace (`sites.*.workspace_id`). Without `[dns]`, clients move with it
    /// alone: no DNS switch runs, and the client check reads where it routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_url: Option<String>,
    /// How long the group may stay `FAILING_OVER` before a human is asked.
    #[serde(default = "default_managed_failover_timeout")]
    pub failover_timeout_seconds: u32,
    /// RPO objective of the group's replication point; defaults to `objectives.rpo_minutes`.
    #[serde(default)]
    pub rpo_minutes: Option<u32>,
}

fn default_managed_failover_timeout() -> u32 {
    1800
}

impl ManagedDr {
    /// The group's resource name.
    pub fn group_name(&self) -> String {
        format!(
            "accounts/{}/failover-groups/{}",
            self.account_id, self.failover_group
        )
    }

    /// The stable URL's resource name, if one is configured.
    pub fn stable_url_name(&self) -> Option<String> {
        self.stable_url
            .as_ref()
            .map(|id| format!("accounts/{}/stable-urls/{id}", self.account_id))
    }
}

/// An id that goes into a resource name: letters, digits, `-` and `_` only, so it cannot climb
/// out of its path segment (`..`, `/`, `?`).
fn resource_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks the sites' Managed DR keys (`workspace_id`, `failover_group`) against `[managed_dr]`,
/// then the section itself.
pub(super) fn validate(sites: &Sites, managed_dr: Option<&ManagedDr>) -> Result<(), PlanError> {
    for (key, site) in sites.keyed() {
        if let Some(id) = &site.workspace_id {
            if id.is_empty() || id.len() > 20 || !id.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid(
                    format!("{key}.workspace_id"),
                    "must be the workspace's numeric id",
                ));
            }
        }
        match (&site.failover_group, managed_dr) {
            (Some(_), None) => {
                return Err(invalid(
                    format!("{key}.failover_group"),
                    "name the group in [managed_dr] (failover_group, with the account id and an \
                     account admin's credentials the failover needs)",
                ))
            }
            (Some(g), Some(m)) if *g != m.failover_group => {
                return Err(invalid(
                    format!("{key}.failover_group"),
                    format!(
                        "differs from managed_dr.failover_group ({})",
                        m.failover_group
                    ),
                ))
            }
            _ => {}
        }
    }
    let Some(m) = managed_dr else {
        return Ok(());
    };
    m.validate(sites)
}

impl ManagedDr {
    /// Checks the account URL, the ids that go into resource names, the credentials, the stable
    /// URL and the limits.
    fn validate(&self, sites: &Sites) -> Result<(), PlanError> {
        let url = url::Url::parse(&self.account_url)
            .map_err(|e| invalid("managed_dr.account_url", format!("not a URL: {e}")))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(invalid(
                "managed_dr.account_url",
                "must be https (credentials travel to it)",
            ));
        }
        if url.path() != "/" || url.query().is_some() {
            return Err(invalid(
                "managed_dr.account_url",
                "must be the account host only, e.g. https://accounts.cloud.databricks.com",
            ));
        }
        if !resource_id_ok(&self.account_id) {
            return Err(invalid(
                "managed_dr.account_id",
                "letters, digits, '-' and '_' only",
            ));
        }
        if !resource_id_ok(&self.failover_group) {
            return Err(invalid(
                "managed_dr.failover_group",
                "the group's id: letters, digits, '-' and '_' only",
            ));
        }
        if let SiteAuth::Pat { .. } = self.auth {
            return Err(invalid(
                "managed_dr.auth",
                "the account API takes OAuth M2M only (type = \"oauth\", an account admin)",
            ));
        }
        if let Some(id) = &self.stable_url {
            if !resource_id_ok(id) {
                return Err(invalid(
                    "managed_dr.stable_url",
                    "the stable URL's id: letters, digits, '-' and '_' only",
                ));
            }
            for (key, site) in sites.keyed() {
                if site.workspace_id.is_none() {
                    return Err(invalid(
                        format!("{key}.workspace_id"),
                        "required with managed_dr.stable_url (where the stable URL must route)",
                    ));
                }
            }
        }
        if !(60..=86_400).contains(&self.failover_timeout_seconds) {
            return Err(invalid(
                "managed_dr.failover_timeout_seconds",
                "must be 60–86400",
            ));
        }
        if self.rpo_minutes == Some(0) {
            return Err(invalid("managed_dr.rpo_minutes", "must be greater than 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::EXAMPLE;
    use crate::plan::{Plan, PlanError};

    #[test]
    fn managed_dr_names_the_field_at_fault() {
        const GOOD: &str = "account_url = \"https://accounts.cloud.databricks.com\"\n\
            account_id = \"0d26-acc\"\nfailover_group = \"sales\"\n\
            auth = { type = \"oauth\", client_id = \"acc-admin\", secret_id = \"lifeboat/acc\" }\n\
            stable_url = \"sales-prod\"";
        // `ids`: whether both sites carry their workspace id.
        let with = |section: &str, ids: bool| {
            let mut text = EXAMPLE.to_string();
            if ids {
                text = text
                    .replace("[sites.dr]", "workspace_id = \"1234\"\n\n[sites.dr]")
                    .replace("[monitoring]", "workspace_id = \"5678\"\n\n[monitoring]");
            }
            Plan::from_toml(&format!("{text}\n[managed_dr]\n{section}\n"), "p")
        };
        let ok = with(GOOD, true).expect("valid");
        let m = ok.managed_dr.as_ref().expect("parsed");
        assert_eq!(m.group_name(), "accounts/0d26-acc/failover-groups/sales");
        assert_eq!(
            m.stable_url_name().as_deref(),
            Some("accounts/0d26-acc/stable-urls/sales-prod")
        );
        assert_eq!(m.failover_timeout_seconds, 1800);
        let swap = |from: &str, to: &str| GOOD.replace(from, to);
        let cases: Vec<(String, bool, &str, &str)> =
            vec![
            (GOOD.into(), false, "sites.primary.workspace_id", "required with"),
            (
                swap("https://accounts.cloud", "http://accounts.cloud"),
                true,
                "managed_dr.account_url",
                "https",
            ),
            (
                swap(".com\"", ".com/api\""),
                true,
                "managed_dr.account_url",
                "host only",
            ),
            (
                swap("\"sales\"", "\"../sales\""),
                true,
                "managed_dr.failover_group",
                "letters",
            ),
            (
                swap("0d26-acc", "acc/../x"),
                true,
                "managed_dr.account_id",
                "letters",
            ),
            (
                swap("sales-prod", "prod?w=1"),
                true,
                "managed_dr.stable_url",
                "letters",
            ),
            (
                swap(
                    "{ type = \"oauth\", client_id = \"acc-admin\", secret_id = \"lifeboat/acc\" }",
                    "{ type = \"pat\", secret_id = \"lifeboat/acc\" }",
                ),
                true,
                "managed_dr.auth",
                "OAuth M2M only",
            ),
            (
                format!("{GOOD}\nfailover_timeout_seconds = 5"),
                true,
                "managed_dr.failover_timeout_seconds",
                "60–86400",
            ),
            (
                format!("{GOOD}\nrpo_minutes = 0"),
                true,
                "managed_dr.rpo_minutes",
                "greater than 0",
            ),
        ];
        for (section, ids, key_want, why) in &cases {
            match with(section, *ids) {
                Err(PlanError::Invalid { key, reason }) => {
                    assert_eq!(key, *key_want, "{section}");
                    assert!(reason.contains(why), "{section}: {reason}");
                }
                other => panic!("{section}: {other:?}"),
            }
        }
        // A site naming a group without [managed_dr], or another group than it.
        let text = EXAMPLE.replace("[sites.dr]", "failover_group = \"sales\"\n\n[sites.dr]");
        match Plan::from_toml(&text, "p") {
            Err(PlanError::Invalid { key, .. }) => assert_eq!(key, "sites.primary.failover_group"),
            other => panic!("{other:?}"),
        }
        match Plan::from_toml(
            &format!(
                "{text}\n[managed_dr]\n{}\n",
                swap("\"sales\"", "\"other\"").replace("stable_url = \"sales-prod\"", "")
            ),
            "p",
        ) {
            Err(PlanError::Invalid { key, reason }) => {
                assert_eq!(key, "sites.primary.failover_group");
                assert!(reason.contains("other"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A typo is refused by name.
        match with(&format!("{GOOD}\nfailover_grup = \"x\""), true) {
            Err(e) => assert!(e.to_string().contains("failover_grup"), "{e}"),
            Ok(_) => panic!("a typo was accepted"),
        }
    }
}
