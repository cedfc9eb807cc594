//! Client settings: the values JDBC/ODBC/REST clients read from SSM to find the workspace and
//! its SQL warehouses. A warehouse's id — and so its HTTP path — differs between the primary
//! and the DR workspace, so these are resolved by warehouse *name* at the site clients move to,
//! all before anything is written (decide before you act).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    databricks::{warehouses::Warehouse, ApiError, WorkspaceClient},
    plan::{ClientSetting, ClientSettingKind, Site},
};

/// Why a setting could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    /// Listing the warehouses failed.
    #[error("listing the SQL warehouses at {site}: {source}")]
    Api {
        /// The site's workspace URL.
        site: String,
        /// The API error.
        #[source]
        source: ApiError,
    },
    /// The plan names a warehouse the site does not have.
    #[error("client setting {parameter}: no SQL warehouse named {warehouse:?} at {site}")]
    NoSuchWarehouse {
        /// The SSM parameter.
        parameter: String,
        /// The warehouse name.
        warehouse: String,
        /// The site's workspace URL.
        site: String,
    },
    /// Two warehouses share the name: which one clients should use is a guess.
    #[error(
        "client setting {parameter}: {count} SQL warehouses are named {warehouse:?} at {site}"
    )]
    AmbiguousWarehouse {
        /// The SSM parameter.
        parameter: String,
        /// The warehouse name.
        warehouse: String,
        /// How many share it.
        count: usize,
        /// The site's workspace URL.
        site: String,
    },
}

/// A setting with the value it must hold while `site` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedSetting {
    /// The SSM parameter.
    pub parameter: String,
    /// Its kind and warehouse, for people (`jdbc_url of Shared BI`).
    pub describes: String,
    /// Its kind.
    pub kind: ClientSettingKind,
    /// The warehouse it names, for the warehouse kinds.
    pub warehouse: Option<String>,
    /// The value.
    pub value: String,
}

/// What a warehouse's settings are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseEndpoint {
    /// `/sql/1.0/warehouses/<id>`.
    pub http_path: String,
}

impl WarehouseEndpoint {
    /// From the API's warehouse: its `odbc_params.path` (what the console shows as "HTTP
    /// path"), else the documented `/sql/1.0/warehouses/<id>`.
    pub fn of(w: &Warehouse) -> Self {
        let http_path = w
            .extra
            .get("odbc_params")
            .and_then(|p| p.get("path"))
            .and_then(|p| p.as_str())
            .filter(|p| p.starts_with('/'))
            .map(str::to_string)
            .unwrap_or_else(|| format!("/sql/1.0/warehouses/{}", w.id));
        Self { http_path }
    }
}

/// Pure: `(host, port)` of a workspace URL, the port explicit (443 for https).
pub fn host_and_port(workspace_url: &str) -> (String, u16) {
    match url::Url::parse(workspace_url) {
        Ok(u) => (
            u.host_str().unwrap_or_default().to_string(),
            u.port_or_known_default().unwrap_or(443),
        ),
        Err(_) => (workspace_url.to_string(), 443),
    }
}

/// Pure: the value of one setting at a site.
pub fn setting_value(
    kind: ClientSettingKind,
    workspace_url: &str,
    warehouse: Option<&WarehouseEndpoint>,
) -> String {
    let (host, port) = host_and_port(workspace_url);
    let path = warehouse.map(|w| w.http_path.as_str()).unwrap_or_default();
    match kind {
        ClientSettingKind::WorkspaceUrl => workspace_url.to_string(),
        ClientSettingKind::HttpPath => path.to_string(),
        ClientSettingKind::JdbcUrl => format!(
            "jdbc:databricks://{host}:{port}/default;transportMode=http;ssl=1;AuthMech=3;httpPath={path}"
        ),
        ClientSettingKind::OdbcConnectionString => format!(
            "Host={host};Port={port};HTTPPath={path};SSL=1;ThriftTransport=2;AuthMech=3"
        ),
    }
}

/// Pure: the warehouse id an HTTP path names (`/sql/1.0/warehouses/<id>`, also the older
/// `/sql/1.0/endpoints/<id>`), so a client-side check can use exactly what clients read.
pub fn warehouse_id_of_http_path(path: &str) -> Option<&str> {
    let id = path
        .strip_prefix("/sql/1.0/warehouses/")
        .or_else(|| path.strip_prefix("/sql/1.0/endpoints/"))?;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')).then_some(id)
}

/// Pure: resolves every setting against the site's warehouses (by name). Refuses the whole set
/// if one cannot be resolved, so nothing is half-switched.
pub fn resolve_with(
    settings: &[ClientSetting],
    site: &Site,
    warehouses: &[Warehouse],
) -> Result<Vec<ResolvedSetting>, ClientsError> {
    let mut by_name: BTreeMap<&str, Vec<&Warehouse>> = BTreeMap::new();
    for w in warehouses {
        by_name.entry(w.name.as_str()).or_default().push(w);
    }
    settings
        .iter()
        .map(|s| {
            let endpoint = match (&s.warehouse, s.kind.needs_warehouse()) {
                (Some(name), true) => match by_name.get(name.as_str()).map(Vec::as_slice) {
                    Some([one]) => Some(WarehouseEndpoint::of(one)),
                    Some(many) if many.len() > 1 => {
                        return Err(ClientsError::AmbiguousWarehouse {
                            parameter: s.parameter.clone(),
                            warehouse: name.clone(),
                            count: many.len(),
                            site: site.workspace_url.clone(),
                        })
                    }
                    _ => {
                        return Err(ClientsError::NoSuchWarehouse {
                            parameter: s.parameter.clone(),
                            warehouse: name.clone(),
                            site: site.workspace_url.clone(),
                        })
                    }
                },
                _ => None,
            };
            Ok(ResolvedSetting {
                parameter: s.parameter.clone(),
                describes: match &s.warehouse {
                    Some(w) => format!("{} of {w}", s.kind.as_str()),
                    None => s.kind.as_str().to_string(),
                },
                kind: s.kind,
                warehouse: s.warehouse.clone(),
                value: setting_value(s.kind, &site.workspace_url, endpoint.as_ref()),
            })
        })
        .collect()
}

/// Resolves every setting at `site`; lists the warehouses (once) only when a setting needs one.
pub async fn resolve(
    client: Option<&WorkspaceClient>,
    settings: &[ClientSetting],
    site: &Site,
) -> Result<Vec<ResolvedSetting>, ClientsError> {
    let warehouses = match client {
        Some(c) if settings.iter().any(|s| s.kind.needs_warehouse()) => c
            .all_warehouses()
            .await
            .map_err(|source| ClientsError::Api {
                site: site.workspace_url.clone(),
                source,
            })?,
        _ => Vec::new(),
    };
    resolve_with(settings, site, &warehouses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SiteAuth;

    fn site(url: &str) -> Site {
        Site {
            region: "us-west-2".into(),
            workspace_url: url.into(),
            auth: SiteAuth::Pat {
                secret_id: "s".into(),
            },
            failover_group: None,
            workspace_id: None,
            identity: None,
            dns_target: None,
        }
    }

    fn warehouse(id: &str, name: &str, path: Option<&str>) -> Warehouse {
        let mut v = serde_json::json!({"id": id, "name": name, "state": "RUNNING"});
        if let Some(p) = path {
            v["odbc_params"] = serde_json::json!({"path": p, "hostname": "x", "port": 443});
        }
        serde_json::from_value(v).unwrap()
    }

    fn setting(parameter: &str, kind: ClientSettingKind, warehouse: Option<&str>) -> ClientSetting {
        ClientSetting {
            parameter: parameter.into(),
            kind,
            warehouse: warehouse.map(str::to_string),
        }
    }

    #[test]
    fn values_per_kind() {
        use ClientSettingKind::*;
        let dr = WarehouseEndpoint {
            http_path: "/sql/1.0/warehouses/dr42".into(),
        };
        let rows: Vec<(ClientSettingKind, &str, Option<&WarehouseEndpoint>, &str)> = vec![
            (
                WorkspaceUrl,
                "https://dbc-dr.cloud.databricks.com",
                None,
                "https://dbc-dr.cloud.databricks.com",
            ),
            (
                HttpPath,
                "https://dbc-dr.cloud.databricks.com",
                Some(&dr),
                "/sql/1.0/warehouses/dr42",
            ),
            (
                JdbcUrl,
                "https://dbc-dr.cloud.databricks.com",
                Some(&dr),
                "jdbc:databricks://dbc-dr.cloud.databricks.com:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/dr42",
            ),
            (
                OdbcConnectionString,
                "http://127.0.0.1:8123/ws/dr",
                Some(&dr),
                "Host=127.0.0.1;Port=8123;HTTPPath=/sql/1.0/warehouses/dr42;SSL=1;ThriftTransport=2;AuthMech=3",
            ),
        ];
        for (kind, url, w, want) in rows {
            assert_eq!(setting_value(kind, url, w), want, "{kind:?}");
        }
    }

    #[test]
    fn http_paths_name_their_warehouse() {
        let rows = [
            ("/sql/1.0/warehouses/abc123", Some("abc123")),
            ("/sql/1.0/endpoints/abc123", Some("abc123")),
            ("/sql/1.0/warehouses/", None),
            ("/sql/1.0/warehouses/a/../b", None),
            ("/sql/protocolv1/o/1/0123-abc", None),
            ("", None),
        ];
        for (path, want) in rows {
            assert_eq!(warehouse_id_of_http_path(path), want, "{path}");
        }
    }

    #[test]
    fn resolution_by_name_at_the_site() {
        use ClientSettingKind::*;
        let dr = site("https://dbc-dr.cloud.databricks.com");
        let warehouses = [
            warehouse("dr42", "Shared BI", Some("/sql/1.0/warehouses/dr42")),
            warehouse("dr7", "Finance", None),
            warehouse("d1", "Twin", None),
            warehouse("d2", "Twin", None),
        ];
        let ok = resolve_with(
            &[
                setting("/a/url", WorkspaceUrl, None),
                setting("/a/path", HttpPath, Some("Shared BI")),
                setting("/a/fin", HttpPath, Some("Finance")),
            ],
            &dr,
            &warehouses,
        )
        .unwrap();
        let got: Vec<_> = ok
            .iter()
            .map(|r| (r.parameter.as_str(), r.describes.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/a/url",
                    "workspace_url",
                    "https://dbc-dr.cloud.databricks.com"
                ),
                (
                    "/a/path",
                    "http_path of Shared BI",
                    "/sql/1.0/warehouses/dr42"
                ),
                // No odbc_params: the documented path of the id.
                ("/a/fin", "http_path of Finance", "/sql/1.0/warehouses/dr7"),
            ]
        );
        let missing = resolve_with(
            &[
                setting("/a/url", WorkspaceUrl, None),
                setting("/a/x", JdbcUrl, Some("Gone")),
            ],
            &dr,
            &warehouses,
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("/a/x") && missing.contains("\"Gone\""),
            "{missing}"
        );
        let twin = resolve_with(&[setting("/a/t", HttpPath, Some("Twin"))], &dr, &warehouses)
            .unwrap_err()
            .to_string();
        assert!(twin.contains("2 SQL warehouses"), "{twin}");
    }
}

/// What a setting's value says about where clients go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadSetting {
    /// `host:port` the value names (JDBC/ODBC, workspace URL).
    pub host_port: Option<String>,
    /// The HTTP path the value names (HTTP path, JDBC/ODBC).
    pub http_path: Option<String>,
}

/// Pure: reads a value as clients would — the host and HTTP path of a JDBC URL
/// (`...//host:port/...;httpPath=...`), an ODBC string (`Host=;Port=;HTTPPath=`, keys
/// case-insensitive), an HTTP path, or a workspace URL.
pub fn read_setting(kind: ClientSettingKind, value: &str) -> ReadSetting {
    let value = value.trim();
    let pairs = |s: &str| -> Vec<(String, String)> {
        s.split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect()
    };
    let get = |pairs: &[(String, String)], key: &str| {
        pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    match kind {
        ClientSettingKind::WorkspaceUrl => {
            let (host, port) = host_and_port(value);
            ReadSetting {
                host_port: (!host.is_empty()).then(|| format!("{host}:{port}")),
                http_path: None,
            }
        }
        ClientSettingKind::HttpPath => ReadSetting {
            host_port: None,
            http_path: Some(value.to_string()),
        },
        ClientSettingKind::JdbcUrl => {
            let rest = value
                .strip_prefix("jdbc:databricks://")
                .or_else(|| value.strip_prefix("jdbc:spark://"));
            let Some(rest) = rest else {
                return ReadSetting::default();
            };
            let authority = rest.split(['/', ';']).next().unwrap_or_default();
            let p = pairs(rest);
            ReadSetting {
                host_port: (!authority.is_empty()).then(|| authority.to_ascii_lowercase()),
                http_path: get(&p, "httppath"),
            }
        }
        ClientSettingKind::OdbcConnectionString => {
            let p = pairs(value);
            ReadSetting {
                host_port: get(&p, "host").map(|h| {
                    format!(
                        "{}:{}",
                        h.to_ascii_lowercase(),
                        get(&p, "port").unwrap_or_else(|| "443".into())
                    )
                }),
                http_path: get(&p, "httppath"),
            }
        }
    }
}

/// What a DNS name answers, and how that was learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Record data (CNAME targets), trailing dots removed.
    pub values: Vec<String>,
    /// `TestDNSAnswer` (Route 53 answering as its name servers would) or `read back` (the
    /// record set as stored, where `TestDNSAnswer` is unavailable).
    pub how: &'static str,
}

/// Resolves `name` (CNAME) as clients would: Route 53's `TestDNSAnswer`, which answers from the
/// zone's authoritative data exactly as its name servers do; where that API is not available
/// (it is not in every emulator), the record set read back — of failover records, the PRIMARY
/// while `primary_healthy` (its health check, as the caller read it) and the SECONDARY otherwise.
pub async fn dns_answer(
    route53: &aws_sdk_route53::Client,
    hosted_zone_id: &str,
    name: &str,
    primary_healthy: Option<bool>,
) -> Result<DnsAnswer, String> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let tested = route53
        .test_dns_answer()
        .hosted_zone_id(hosted_zone_id)
        .record_name(&fqdn)
        .record_type(aws_sdk_route53::types::RrType::Cname)
        .send()
        .await;
    match tested {
        Ok(out) => {
            return Ok(DnsAnswer {
                values: out
                    .record_data()
                    .iter()
                    .map(|v| v.trim_end_matches('.').to_ascii_lowercase())
                    .collect(),
                how: "TestDNSAnswer",
            })
        }
        Err(e) => tracing::info!(error = %aws_sdk_route53::error::DisplayErrorContext(&e),
            "TestDNSAnswer unavailable; reading the record back"),
    }
    let sets = route53
        .list_resource_record_sets()
        .hosted_zone_id(hosted_zone_id)
        .start_record_name(&fqdn)
        .start_record_type(aws_sdk_route53::types::RrType::Cname)
        // A failover pair (or weighted sets) is several record sets of one name.
        .max_items(10)
        .send()
        .await
        .map_err(|e| {
            format!(
                "route53: {}",
                aws_sdk_route53::error::DisplayErrorContext(&e)
            )
        })?;
    use aws_sdk_route53::types::ResourceRecordSetFailover as Failover;
    let records: Vec<_> = sets
        .resource_record_sets()
        .iter()
        .filter(|r| {
            r.name().eq_ignore_ascii_case(&fqdn)
                && r.r#type() == &aws_sdk_route53::types::RrType::Cname
        })
        .collect();
    let failover = records.iter().any(|r| r.failover().is_some());
    let answering = |r: &&&aws_sdk_route53::types::ResourceRecordSet| {
        matches!(
            (r.failover(), primary_healthy),
            (None, _)
                | (Some(Failover::Primary), Some(true))
                | (Some(Failover::Secondary), Some(false))
        )
    };
    Ok(DnsAnswer {
        values: records
            .iter()
            .filter(answering)
            .flat_map(|r| r.resource_records())
            .map(|v| v.value().trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        how: if failover {
            "failover records read back, health from the routing control"
        } else {
            "read back"
        },
    })
}

#[cfg(test)]
mod read_tests {
    use super::*;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use ClientSettingKind::*;

    #[test]
    fn values_are_read_as_clients_read_them() {
        let path = Some("/sql/1.0/warehouses/dr42".to_string());
        let rows: Vec<(ClientSettingKind, &str, Option<&str>, Option<String>)> = vec![
            (
                JdbcUrl,
                "jdbc:databricks://DBC-DR.cloud.databricks.com:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/dr42",
                Some("dbc-dr.cloud.databricks.com:443"),
                path.clone(),
            ),
            (
                JdbcUrl,
                "jdbc:spark://h:443/default;HTTPPATH=/sql/1.0/warehouses/dr42;",
                Some("h:443"),
                path.clone(),
            ),
            (JdbcUrl, "https://not-jdbc", None, None),
            (
                OdbcConnectionString,
                "Driver=Simba;host=H.example;HTTPPath=/sql/1.0/warehouses/dr42;SSL=1",
                Some("h.example:443"),
                path.clone(),
            ),
            (
                OdbcConnectionString,
                "Host=127.0.0.1;Port=8123;HTTPPath=/sql/1.0/warehouses/dr42",
                Some("127.0.0.1:8123"),
                path.clone(),
            ),
            (OdbcConnectionString, "garbage", None, None),
            (HttpPath, " /sql/1.0/warehouses/dr42 ", None, path.clone()),
            (
                WorkspaceUrl,
                "https://dbc-dr.cloud.databricks.com",
                Some("dbc-dr.cloud.databricks.com:443"),
                None,
            ),
        ];
        for (kind, value, host, http_path) in rows {
            let got = read_setting(kind, value);
            assert_eq!(
                (got.host_port.as_deref(), got.http_path),
                (host, http_path),
                "{kind:?} {value}"
            );
        }
        // What Lifeboat writes, it reads back the same.
        let w = WarehouseEndpoint {
            http_path: "/sql/1.0/warehouses/dr42".into(),
        };
        for kind in [HttpPath, JdbcUrl, OdbcConnectionString] {
            let v = setting_value(kind, "http://127.0.0.1:8123", Some(&w));
            assert_eq!(read_setting(kind, &v).http_path, path, "{kind:?}");
        }
    }

    proptest::proptest! {
        /// A client setting is read from SSM, where anyone with `ssm:PutParameter` can write
        /// anything: reading it never panics, and a path it yields names a warehouse only in
        /// the documented form.
        #[test]
        fn reading_any_value_never_panics(
            value in proptest::prelude::any::<String>(),
            spliced in "(jdbc:(databricks|spark)://|Host=|HTTPPath=|httpPath=|/sql/1.0/warehouses/|[;=:/a-zA-Z0-9 .-]){0,12}",
        ) {
            for kind in [WorkspaceUrl, HttpPath, JdbcUrl, OdbcConnectionString] {
                for v in [value.as_str(), spliced.as_str()] {
                    let read = read_setting(kind, v);
                    if let Some(id) = read.http_path.as_deref().and_then(warehouse_id_of_http_path) {
                        proptest::prop_assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
                    }
                }
            }
        }
    }

    /// `TestDNSAnswer`'s recorded response shape (RecordData, ResponseCode NOERROR) is used
    /// when the API answers; a zone whose API refuses it falls back to the read-back.
    #[tokio::test]
    async fn dns_answer_prefers_test_dns_answer_and_falls_back_to_the_record() {
        let answered = mock!(aws_sdk_route53::Client::test_dns_answer).then_output(|| {
            aws_sdk_route53::operation::test_dns_answer::TestDnsAnswerOutput::builder()
                .nameserver("ns-1.awsdns-01.org")
                .record_name("databricks.sales.example.internal.")
                .record_type(aws_sdk_route53::types::RrType::Cname)
                .record_data("DR.workspace.example.internal.")
                .response_code("NOERROR")
                .protocol("UDP")
                .build()
                .unwrap()
        });
        let client = mock_client!(aws_sdk_route53, RuleMode::Sequential, [&answered]);
        let a = dns_answer(&client, "Z1", "databricks.sales.example.internal", None)
            .await
            .unwrap();
        assert_eq!(
            (a.values, a.how),
            (
                vec!["dr.workspace.example.internal".to_string()],
                "TestDNSAnswer"
            )
        );

        let refused = mock!(aws_sdk_route53::Client::test_dns_answer).then_error(|| {
            aws_sdk_route53::operation::test_dns_answer::TestDNSAnswerError::unhandled(
                "not implemented",
            )
        });
        let listed = mock!(aws_sdk_route53::Client::list_resource_record_sets).then_output(|| {
            use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet, RrType};
            aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput::builder()
                .resource_record_sets(
                    ResourceRecordSet::builder()
                        .name("databricks.sales.example.internal.")
                        .r#type(RrType::Cname)
                        .resource_records(
                            ResourceRecord::builder()
                                .value("primary.workspace.example.internal")
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .is_truncated(false)
                .max_items(1)
                .build()
                .unwrap()
        });
        let client = mock_client!(aws_sdk_route53, RuleMode::Sequential, [&refused, &listed]);
        let a = dns_answer(&client, "Z1", "databricks.sales.example.internal.", None)
            .await
            .unwrap();
        assert_eq!(
            (a.values, a.how),
            (
                vec!["primary.workspace.example.internal".to_string()],
                "read back"
            )
        );
    }
}
