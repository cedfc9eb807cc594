//! One module per step of the seed's process; each exposes its input and output types and an
//! async `handle` that the Lambda's `main.rs` (or the local Lambda host) calls.
//!
//! Every step receives the execution's state document (`{"run": RunContext, ...}`) and picks
//! what it needs; Step Functions stores the output under `$.results.<step>` or similar.

pub mod activate_schedules;
pub mod approval_callback;
pub mod canary_writer;
pub mod data_fence;
pub mod data_sources_check;
pub mod dns_switch;
pub mod dr_config_check;
pub mod dr_startup;
pub mod health_ingest;
pub mod managed_failover;
pub mod notify;
pub mod readiness_check;
pub mod replication_check;
pub mod request_approval;
pub mod run_ledger;
pub mod shutdown_sweep;
pub mod validate_workspace;
