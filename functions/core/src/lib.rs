//! Lifeboat core: the DR domain (plan, run, ledger records), the ports and adapters every Lambda
//! shares (Databricks REST client, S3 ledger and lock, Route 53, SSM, SNS, Step Functions), the
//! pure decision functions, and one handler module per step of the seed's failover process.
pub mod announce;
pub mod approval;
pub mod aws;
pub mod clients;
pub mod databricks;
pub mod delta;
pub mod dispatch;
pub mod drift;
pub mod events;
pub mod fence;
pub mod health_api;
pub mod html;
pub mod http;
pub mod identity;
pub mod incident;
pub mod intervention;
pub mod kernel;
pub mod lambda;
pub mod ledger;
pub mod managed_dr;
pub mod metrics;
pub mod plan;
pub mod probe;
pub mod readiness;
pub mod replication;
pub mod report;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod secret;

pub mod sources;
pub mod state;
pub mod steps;
pub mod switch;
#[cfg(test)]
mod test_support;
pub mod trend_html;
pub mod validation;
pub mod verdict;
