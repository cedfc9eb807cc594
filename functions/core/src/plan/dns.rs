//! `[dns]`: how clients move — the Route 53 alias they use (rewritten, or flipped through an
//! ARC routing control, which needs no Route 53 control plane during the run), the alias full
//! drills rehearse on, and the client-facing values kept in SSM Parameter Store (workspace URL,
//! a warehouse's HTTP path, JDBC URL or ODBC connection string).

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// DNS and client configuration to switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Route 53 hosted zone id.
    pub hosted_zone_id: String,
    /// The alias clients use, e.g. `databricks.example.com`.
    pub record_name: String,
    /// TTL of the CNAME.
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    /// SSM parameters that hold the workspace URL for REST/JDBC/ODBC clients (shorthand for
    /// `client_settings` of kind `workspace_url`).
    #[serde(default)]
    pub ssm_parameters: Vec<String>,
    /// Every other client-facing value to rewrite when clients move: a warehouse's HTTP path,
    /// JDBC URL or ODBC connection string, resolved by name at the site clients move to.
    #[serde(default)]
    pub client_settings: Vec<ClientSetting>,
    /// The alias full drills switch instead of the production one (in the same zone).
    #[serde(default)]
    pub drill_record_name: Option<String>,
    /// Full drills switch the production alias and parameters (a real-world rehearsal).
    #[serde(default)]
    pub drill_uses_production: bool,
    /// How the alias moves: `upsert` (rewrite the CNAME; needs Route 53's control plane in
    /// us-east-1 during the run) or `routing_control` (statically stable: pre-created
    /// PRIMARY/SECONDARY failover records whose health check follows an ARC routing control).
    #[serde(default)]
    pub switch: SwitchMode,
    /// The ARC cluster and routing controls of `switch = "routing_control"`.
    #[serde(default)]
    pub routing_control: Option<RoutingControlPlan>,
}

/// How the client alias moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchMode {
    /// UPSERT the CNAME and wait until INSYNC.
    #[default]
    Upsert,
    /// Set the routing control that the PRIMARY failover record's health check follows.
    RoutingControl,
}

/// The ARC pieces of the statically stable switch (from the template's outputs and
/// `aws route53-recovery-control-config describe-cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingControlPlan {
    /// The cluster's regional endpoints, tried in turn until one answers.
    pub cluster_endpoints: Vec<ClusterEndpoint>,
    /// The routing control of `record_name` (On: the primary serves; Off: the DR site does).
    pub control_arn: String,
    /// The routing control of `drill_record_name`, for full drills.
    #[serde(default)]
    pub drill_control_arn: Option<String>,
}

/// One regional endpoint of an ARC cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterEndpoint {
    /// `https://....route53-recovery-cluster.<region>.amazonaws.com/v1`.
    pub url: String,
    /// The endpoint's region (requests are signed for it).
    pub region: String,
}

/// Whether `arn` is a routing control ARN
/// (`arn:<partition>:route53-recovery-control::<account>:controlpanel/<id>/routingcontrol/<id>`).
fn routing_control_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let id = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    match parts.as_slice() {
        ["arn", partition, "route53-recovery-control", "", account, resource] => {
            partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && matches!(
                    resource.split('/').collect::<Vec<_>>().as_slice(),
                    ["controlpanel", cp, "routingcontrol", rc] if id(cp) && id(rc)
                )
        }
        _ => false,
    }
}

fn default_ttl() -> i64 {
    60
}

impl Dns {
    /// The record a run switches (`drill`: a full drill's), and whether it switches the client
    /// settings: full drills rehearse on the drill alias and leave the settings alone, unless
    /// the plan opts into production. `None`: a drill with neither.
    pub fn switched_by(&self, drill: bool) -> Option<(&str, bool)> {
        if drill && !self.drill_uses_production {
            self.drill_record_name.as_deref().map(|r| (r, false))
        } else {
            Some((self.record_name.as_str(), true))
        }
    }

    /// Every parameter clients read, the `ssm_parameters` shorthand first, in plan order.
    pub fn all_client_settings(&self) -> Vec<ClientSetting> {
        self.ssm_parameters
            .iter()
            .map(|p| ClientSetting {
                parameter: p.clone(),
                kind: ClientSettingKind::WorkspaceUrl,
                warehouse: None,
            })
            .chain(self.client_settings.iter().cloned())
            .collect()
    }
}

/// One client-facing value kept in SSM Parameter Store: what JDBC/ODBC/REST clients (or the
/// tooling that configures them) read, so moving clients is rewriting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSetting {
    /// The SSM parameter name (`/...`, under the deployment's client parameter path).
    pub parameter: String,
    /// What value it holds.
    pub kind: ClientSettingKind,
    /// The SQL warehouse, by name (ids differ between workspaces), for the warehouse kinds.
    #[serde(default)]
    pub warehouse: Option<String>,
}

/// The value a client setting holds; warehouse kinds are resolved at the site clients move to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSettingKind {
    /// The site's workspace URL.
    WorkspaceUrl,
    /// The warehouse's HTTP path (`/sql/1.0/warehouses/<id>`).
    HttpPath,
    /// `jdbc:databricks://<host>:<port>/default;transportMode=http;ssl=1;AuthMech=3;httpPath=<path>`.
    JdbcUrl,
    /// `Host=<host>;Port=<port>;HTTPPath=<path>;SSL=1;ThriftTransport=2;AuthMech=3` (DSN-less;
    /// the driver name and the token stay with the client).
    OdbcConnectionString,
}

impl ClientSettingKind {
    /// The plan spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkspaceUrl => "workspace_url",
            Self::HttpPath => "http_path",
            Self::JdbcUrl => "jdbc_url",
            Self::OdbcConnectionString => "odbc_connection_string",
        }
    }

    /// Whether the value depends on a SQL warehouse.
    pub fn needs_warehouse(self) -> bool {
        !matches!(self, Self::WorkspaceUrl)
    }
}

/// Whether `name` is a parameter name SSM accepts: `/`-rooted, at most 1,011 characters of
/// letters, digits and `_.-/`, no empty segment.
fn valid_parameter_name(name: &str) -> bool {
    name.starts_with('/')
        && name.len() <= 1011
        && !name.contains("//")
        && !name.ends_with('/')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && !name.to_ascii_lowercase().starts_with("/aws")
        && !name.to_ascii_lowercase().starts_with("/ssm")
}

impl Dns {
    /// Checks the drill alias against the production one, the TTL, the switch mode with its
    /// routing controls, and the client settings.
    pub(super) fn validate(&self) -> Result<(), PlanError> {
        if self.drill_uses_production && self.drill_record_name.is_some() {
            return Err(invalid(
                "dns.drill_record_name",
                "set it or dns.drill_uses_production, not both",
            ));
        }
        if self.drill_record_name.as_deref() == Some(self.record_name.as_str()) {
            return Err(invalid(
                "dns.drill_record_name",
                "is the production record; use dns.drill_uses_production = true to drill on it",
            ));
        }
        if !(0..=86400).contains(&self.ttl) {
            return Err(invalid("dns.ttl", "must be 0–86400"));
        }
        match (self.switch, &self.routing_control) {
            (SwitchMode::RoutingControl, None) => {
                return Err(invalid(
                    "dns.routing_control",
                    "switch = \"routing_control\" needs the cluster endpoints and control ARN",
                ))
            }
            (SwitchMode::Upsert, Some(_)) => {
                return Err(invalid(
                    "dns.routing_control",
                    "is only read with switch = \"routing_control\"",
                ))
            }
            (SwitchMode::RoutingControl, Some(rc)) => {
                rc.validate(self.drill_record_name.as_deref())?
            }
            (SwitchMode::Upsert, None) => {}
        }
        self.validate_client_settings()
    }

    /// Checks every SSM parameter is a name SSM accepts, listed once, and that warehouse kinds
    /// (only they) name their warehouse.
    fn validate_client_settings(&self) -> Result<(), PlanError> {
        let mut seen = std::collections::BTreeSet::new();
        let shorthand = self
            .ssm_parameters
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("dns.ssm_parameters[{i}]"), p, None));
        let settings = self.client_settings.iter().enumerate().map(|(i, c)| {
            (
                format!("dns.client_settings[{i}].parameter"),
                &c.parameter,
                Some((i, c)),
            )
        });
        for (key, name, setting) in shorthand.chain(settings) {
            if !valid_parameter_name(name) {
                return Err(invalid(
                    key,
                    "must be an SSM parameter name: /-rooted, letters, digits and _.-/ only, \
                     not under /aws or /ssm",
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(invalid(key, format!("{name} is listed twice")));
            }
            let Some((i, c)) = setting else { continue };
            match (&c.warehouse, c.kind.needs_warehouse()) {
                (None, true) => {
                    return Err(invalid(
                        format!("dns.client_settings[{i}].warehouse"),
                        format!("{} needs the SQL warehouse's name", c.kind.as_str()),
                    ))
                }
                (Some(_), false) => {
                    return Err(invalid(
                        format!("dns.client_settings[{i}].warehouse"),
                        "workspace_url does not depend on a warehouse; remove it",
                    ))
                }
                (Some(w), true) if w.trim().is_empty() => {
                    return Err(invalid(
                        format!("dns.client_settings[{i}].warehouse"),
                        "must not be empty",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl RoutingControlPlan {
    /// Checks the cluster endpoints (at least one, https), the control ARNs, and that full
    /// drills on `drill_record_name` have a control of their own.
    fn validate(&self, drill_record_name: Option<&str>) -> Result<(), PlanError> {
        if self.cluster_endpoints.is_empty() {
            return Err(invalid(
                "dns.routing_control.cluster_endpoints",
                "list at least one endpoint (ARC clusters have five)",
            ));
        }
        for (i, e) in self.cluster_endpoints.iter().enumerate() {
            let ok = url::Url::parse(&e.url).is_ok_and(|u| {
                u.scheme() == "https"
                    || (u.scheme() == "http"
                        && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
            });
            if !ok {
                return Err(invalid(
                    format!("dns.routing_control.cluster_endpoints[{i}].url"),
                    "must be an https URL (http only to loopback)",
                ));
            }
            if e.region.trim().is_empty() {
                return Err(invalid(
                    format!("dns.routing_control.cluster_endpoints[{i}].region"),
                    "must name the endpoint's region",
                ));
            }
        }
        if !routing_control_arn(&self.control_arn) {
            return Err(invalid(
                "dns.routing_control.control_arn",
                "must be a routing control ARN (arn:aws:route53-recovery-control::<account>:controlpanel/<id>/routingcontrol/<id>)",
            ));
        }
        match (&self.drill_control_arn, drill_record_name) {
            (Some(arn), _) if !routing_control_arn(arn) => {
                return Err(invalid(
                    "dns.routing_control.drill_control_arn",
                    "must be a routing control ARN",
                ))
            }
            (Some(arn), _) if arn == &self.control_arn => return Err(invalid(
                "dns.routing_control.drill_control_arn",
                "is the production control; use dns.drill_uses_production = true to drill on it",
            )),
            (None, Some(_)) => {
                return Err(invalid(
                    "dns.routing_control.drill_control_arn",
                    "full drills switch dns.drill_record_name: name its routing control",
                ))
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::{check_rows, Row, EXAMPLE};
    use crate::plan::Plan;

    const RC_ENDPOINTS: &str = "cluster_endpoints = [{ url = \"https://a1.route53-recovery-cluster.us-west-2.amazonaws.com/v1\", region = \"us-west-2\" }, { url = \"https://b2.route53-recovery-cluster.eu-west-1.amazonaws.com/v1\", region = \"eu-west-1\" }]";
    const RC_ARN: &str = "arn:aws:route53-recovery-control::123456789012:controlpanel/0123abcd/routingcontrol/serve-primary";
    const RC_DRILL: &str = "arn:aws:route53-recovery-control::123456789012:controlpanel/0123abcd/routingcontrol/drill-primary";

    #[test]
    fn unsafe_settings_are_refused_naming_the_key() {
        // Appended to `[dns]` (before its client settings).
        let dns_switch = |body: &str| {
            (
                "drill_record_name = \"databricks-drill.sales.example.internal\"\n",
                format!(
                    "drill_record_name = \"databricks-drill.sales.example.internal\"\n{body}\n"
                ),
            )
        };
        // A third client setting, after the example's two.
        let setting = |body: &str| {
            (
                "[[data_sources]]",
                format!("[[dns.client_settings]]\n{body}\n\n[[data_sources]]"),
            )
        };
        let rows: Vec<Row> = vec![
            // Client settings: SSM names, one owner per parameter, warehouse where needed.
            (
                "a client setting without its warehouse",
                vec![setting(
                    r#"parameter = "/lifeboat/x/jdbc"
kind = "jdbc_url""#,
                )],
                Some(("dns.client_settings[2].warehouse", "jdbc_url needs")),
            ),
            (
                "a workspace URL setting naming a warehouse",
                vec![setting(
                    r#"parameter = "/lifeboat/x/url"
kind = "workspace_url"
warehouse = "Shared BI""#,
                )],
                Some(("dns.client_settings[2].warehouse", "remove it")),
            ),
            (
                "a parameter listed twice",
                vec![setting(
                    r#"parameter = "/lifeboat/sales-platform/workspace-url"
kind = "workspace_url""#,
                )],
                Some(("dns.client_settings[2].parameter", "listed twice")),
            ),
            (
                "a parameter name SSM refuses",
                vec![setting(
                    r#"parameter = "lifeboat/no-root"
kind = "workspace_url""#,
                )],
                Some(("dns.client_settings[2].parameter", "SSM parameter name")),
            ),
            (
                "a reserved parameter path",
                vec![setting(
                    r#"parameter = "/aws/reference/x"
kind = "workspace_url""#,
                )],
                Some(("dns.client_settings[2].parameter", "not under /aws")),
            ),
            // The statically stable switch: complete, safe, one control per record.
            (
                "routing control without its section",
                vec![dns_switch("switch = \"routing_control\"")],
                Some(("dns.routing_control", "needs the cluster endpoints")),
            ),
            (
                "routing control section with upsert",
                vec![dns_switch(&format!("[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"{RC_ARN}\""))],
                Some(("dns.routing_control", "only read with")),
            ),
            (
                "routing control in clear to a remote endpoint",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\ncluster_endpoints = [{{ url = \"http://x.example/v1\", region = \"us-west-2\" }}]\ncontrol_arn = \"{RC_ARN}\"\ndrill_control_arn = \"{RC_DRILL}\""))],
                Some(("dns.routing_control.cluster_endpoints[0].url", "https")),
            ),
            (
                "routing control ARN of another service",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"arn:aws:route53:::healthcheck/abc\"\ndrill_control_arn = \"{RC_DRILL}\""))],
                Some(("dns.routing_control.control_arn", "routing control ARN")),
            ),
            (
                "a drill record without its routing control",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"{RC_ARN}\""))],
                Some(("dns.routing_control.drill_control_arn", "name its routing control")),
            ),
            (
                "the drill on the production control",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"{RC_ARN}\"\ndrill_control_arn = \"{RC_ARN}\""))],
                Some(("dns.routing_control.drill_control_arn", "production control")),
            ),
            (
                "a complete routing control switch",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"{RC_ARN}\"\ndrill_control_arn = \"{RC_DRILL}\""))],
                None,
            ),
            (
                "an ODBC connection string",
                vec![setting(
                    r#"parameter = "/lifeboat/x/odbc"
kind = "odbc_connection_string"
warehouse = "Shared BI""#,
                )],
                None,
            ),
        ];
        check_rows(rows);
    }

    #[test]
    fn a_typo_in_a_client_setting_is_refused_naming_it() {
        let text = EXAMPLE.replace("kind = \"jdbc_url\"", "kind = \"jdbc\"");
        let err = Plan::from_toml(&text, "p").unwrap_err().to_string();
        assert!(err.contains("unknown variant `jdbc`"), "{err}");
        assert!(err.contains("kind = \"jdbc\""), "the line is shown: {err}");
        let plan = Plan::from_toml(EXAMPLE, "p").unwrap();
        let settings = plan.dns.unwrap().all_client_settings();
        let kinds: Vec<_> = settings.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["workspace_url", "http_path", "jdbc_url"]);
    }
}
