//! `[sites]`: the two workspaces a run moves production between. Each is named by URL, region
//! and a reference to its credentials; the checks make sure the DR site is another workspace in
//! another region, and that no URL could leak a token (plain http beyond loopback, credentials,
//! a query string that API paths would be appended to).

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// Primary and DR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sites {
    /// Where production runs normally.
    pub primary: Site,
    /// Where it runs after a failover.
    pub dr: Site,
}

/// One workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// AWS region, e.g. `us-east-1`.
    pub region: String,
    /// Workspace URL.
    pub workspace_url: String,
    /// How to authenticate; the secret itself lives in Secrets Manager.
    pub auth: SiteAuth,
    /// Optional Databricks Managed DR failover group.
    #[serde(default)]
    pub failover_group: Option<String>,
    /// The identity SCIM `Me` must report at this site (simulated auth); defaults to the OAuth
    /// client id for service principals, and to "any active identity" for PATs.
    #[serde(default)]
    pub identity: Option<String>,
    /// What the DNS alias points at while this site serves (a CNAME target such as the
    /// workspace's or a PrivateLink endpoint's host name); defaults to the URL's host.
    #[serde(default)]
    pub dns_target: Option<String>,
    /// The workspace's numeric id: where a Managed DR stable URL must route while this site
    /// serves.
    #[serde(default)]
    pub workspace_id: Option<String>,
}

impl Site {
    /// The identity validation expects SCIM `Me` to report, if any.
    pub fn expected_identity(&self) -> Option<&str> {
        self.identity.as_deref().or(match &self.auth {
            SiteAuth::Oauth { client_id, .. } => Some(client_id.as_str()),
            SiteAuth::Pat { .. } => None,
        })
    }

    /// The CNAME target for this site.
    pub fn cname_target(&self) -> String {
        self.dns_target.clone().unwrap_or_else(|| {
            url::Url::parse(&self.workspace_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| self.workspace_url.clone())
        })
    }
}

/// Authentication of a site; only references to secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SiteAuth {
    /// A PAT stored in Secrets Manager under `secret_id`.
    Pat {
        /// Secrets Manager id or ARN.
        secret_id: String,
    },
    /// OAuth M2M: the client secret stored under `secret_id`.
    Oauth {
        /// Service principal application id.
        client_id: String,
        /// Secrets Manager id or ARN of the client secret.
        secret_id: String,
    },
}

impl Sites {
    /// Each site with its dotted key, primary first: the order the checks name them in.
    pub(super) fn keyed(&self) -> [(&'static str, &Site); 2] {
        [("sites.primary", &self.primary), ("sites.dr", &self.dr)]
    }

    /// Checks each site's URL and region, and that the DR site is another workspace in another
    /// region.
    pub(super) fn validate(&self) -> Result<(), PlanError> {
        let mut workspaces = Vec::with_capacity(2);
        for (key, site) in self.keyed() {
            workspaces.push(workspace_key(key, &site.workspace_url)?);
            if site.region.trim().is_empty() {
                return Err(invalid(format!("{key}.region"), "must not be empty"));
            }
        }
        if workspaces[0] == workspaces[1] {
            return Err(invalid(
                "sites.dr.workspace_url",
                "is the same workspace as sites.primary (URLs compare without case of scheme and \
                 host, default port or trailing '/'): a DR site must be a different workspace",
            ));
        }
        if self.primary.region == self.dr.region {
            return Err(invalid(
                "sites.dr.region",
                "is the primary's region: the DR site must survive the loss of that region",
            ));
        }
        Ok(())
    }
}

/// Whether an `http://` URL stays on this machine (the local emulator), where no token can be
/// read off the wire.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// What identifies a workspace: scheme, host, port and path without trailing '/', so that two
/// spellings of one workspace compare equal (the URL parser lower-cases scheme and host).
type WorkspaceKey = (String, String, Option<u16>, String);

/// Checks a site's workspace URL (`key` is the site's dotted key) and returns its identity.
fn workspace_key(key: &str, raw: &str) -> Result<WorkspaceKey, PlanError> {
    let key = format!("{key}.workspace_url");
    // The parser silently drops tabs, newlines and surrounding spaces, but clients use the
    // text as written: what is checked must be what is used.
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            key,
            "must not contain spaces or control characters",
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| invalid(&key, format!("is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(invalid(
                key,
                "must be https: over http the workspace token travels in clear (http is \
                 accepted only for loopback hosts such as the local emulator)",
            ))
        }
        _ => return Err(invalid(key, "must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            key,
            "must not carry credentials (user:password@): URLs end up in logs and reports; \
             credentials belong in Secrets Manager (auth.secret_id)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            key,
            "must not have a query string or fragment: API paths are appended to it",
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(invalid(key, "must name a host"));
    };
    Ok((
        url.scheme().to_string(),
        host.to_ascii_lowercase(),
        url.port_or_known_default(),
        url.path().trim_end_matches('/').to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::{check_rows, Row};

    const PRIMARY_URL: &str = "workspace_url = \"https://dbc-primary.cloud.databricks.com\"";
    const DR_URL: &str = "workspace_url = \"https://dbc-dr.cloud.databricks.com\"";

    #[test]
    fn unsafe_settings_are_refused_naming_the_key() {
        let primary = |url: &str| (PRIMARY_URL, format!("workspace_url = \"{url}\""));
        let dr = |url: &str| (DR_URL, format!("workspace_url = \"{url}\""));
        let rows: Vec<Row> = vec![
            // 1. Plain http only to loopback hosts.
            (
                "http to a remote host",
                vec![primary("http://dbc-primary.cloud.databricks.com")],
                Some(("sites.primary.workspace_url", "in clear")),
            ),
            (
                "http to the DR site",
                vec![dr("http://dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "in clear")),
            ),
            (
                "http to a host named like localhost",
                vec![dr("http://localhost.example.com")],
                Some(("sites.dr.workspace_url", "in clear")),
            ),
            (
                "http to a host named like 127.0.0.1",
                vec![dr("http://127.0.0.1.nip.io:8080")],
                Some(("sites.dr.workspace_url", "in clear")),
            ),
            (
                "another scheme",
                vec![dr("ftp://dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "https")),
            ),
            (
                "not a URL",
                vec![dr("dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "not a URL")),
            ),
            (
                "a newline the URL parser would drop",
                vec![dr(r"https://dbc-dr.cloud.data\nbricks.com")],
                Some(("sites.dr.workspace_url", "control")),
            ),
            // 2. No credentials, query or fragment.
            (
                "user and password in the URL",
                vec![dr("https://user:secret@dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "credentials")),
            ),
            (
                "user only in the URL",
                vec![primary("https://dapi123@dbc-primary.cloud.databricks.com")],
                Some(("sites.primary.workspace_url", "credentials")),
            ),
            (
                "password only in the URL",
                vec![dr("https://:secret@dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "credentials")),
            ),
            (
                "query string",
                vec![dr("https://dbc-dr.cloud.databricks.com/?o=123")],
                Some(("sites.dr.workspace_url", "query")),
            ),
            (
                "empty query string",
                vec![dr("https://dbc-dr.cloud.databricks.com?")],
                Some(("sites.dr.workspace_url", "query")),
            ),
            (
                "fragment",
                vec![dr("https://dbc-dr.cloud.databricks.com#x")],
                Some(("sites.dr.workspace_url", "fragment")),
            ),
            // 3. DR is another workspace, however spelt.
            (
                "DR = primary up to case and trailing slash",
                vec![dr("https://DBC-Primary.cloud.databricks.com/")],
                Some(("sites.dr.workspace_url", "same workspace")),
            ),
            (
                "DR = primary with its default port",
                vec![dr("HTTPS://dbc-primary.cloud.databricks.com:443")],
                Some(("sites.dr.workspace_url", "same workspace")),
            ),
            (
                "DR = primary on one loopback port",
                vec![
                    primary("http://127.0.0.1:8080"),
                    dr("http://127.0.0.1:8080/"),
                ],
                Some(("sites.dr.workspace_url", "same workspace")),
            ),
            // Still valid.
            (
                "localized plan: two loopback ports",
                vec![
                    primary("http://127.0.0.1:8080"),
                    dr("http://127.0.0.1:8081"),
                ],
                None,
            ),
            (
                "localhost and ::1",
                vec![primary("http://LocalHost:9000"), dr("http://[::1]:9001/")],
                None,
            ),
            ("any 127/8 address", vec![primary("http://127.1.2.3")], None),
            (
                "https with a port and a trailing slash",
                vec![dr("https://dbc-dr.cloud.databricks.com:8443/")],
                None,
            ),
        ];
        check_rows(rows);
    }

    mod properties {
        use proptest::prelude::*;

        use crate::plan::test_support::{example, proptest_config};

        /// Mostly near-valid URLs, so that accepted ones are common enough to check.
        fn workspace_url() -> impl Strategy<Value = String> {
            let host = prop_oneof![
                Just("localhost".to_string()),
                Just("LocalHost".to_string()),
                Just("[::1]".to_string()),
                Just("[::2]".to_string()),
                Just("0x7f.1".to_string()),
                "127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
                "[a-z0-9.-]{1,12}",
                "[A-Za-z0-9-]{1,8}\\.cloud\\.databricks\\.com",
            ];
            let structured = (
                prop::sample::select(vec!["https", "HTTPS", "http", "Http", "ftp", "ws"]),
                prop::option::weighted(0.15, "[a-z]{0,4}(:[a-z]{0,4})?"),
                host,
                prop::option::weighted(0.5, any::<u16>()),
                "(/[a-z%/ ]{0,6})?",
                prop::option::weighted(0.15, "[a-z=]{0,4}"),
                prop::option::weighted(0.1, "[a-z]{0,3}"),
            )
                .prop_map(|(scheme, user, host, port, path, query, fragment)| {
                    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
                    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                    let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
                    format!("{scheme}://{user}{host}{port}{path}{query}{fragment}")
                });
            prop_oneof![1 => any::<String>(), 4 => structured]
        }

        proptest! {
            #![proptest_config(proptest_config())]

            #[test]
            fn accepted_workspace_urls_are_https_or_loopback(raw in workspace_url()) {
                let mut plan = example();
                plan.sites.dr.workspace_url = raw.clone();
                if plan.validate().is_ok() {
                    let url = url::Url::parse(&raw);
                    prop_assert!(url.is_ok(), "{raw:?}");
                    let url = url.unwrap();
                    let loopback = match url.host() {
                        Some(url::Host::Ipv4(ip)) => ip.octets()[0] == 127,
                        _ => matches!(url.host_str(), Some("localhost" | "[::1]")),
                    };
                    prop_assert!(
                        url.scheme() == "https" || (url.scheme() == "http" && loopback),
                        "{raw:?}"
                    );
                    prop_assert!(url.username().is_empty() && url.password().is_none(), "{raw:?}");
                    prop_assert!(url.query().is_none() && url.fragment().is_none(), "{raw:?}");
                }
            }
        }
    }
}
