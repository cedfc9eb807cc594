//! The ground floor every step stands on: what a handler gets ([`Deps`]: AWS clients, the
//! ledger, workspace clients, settings), how it fails ([`StepError`]), the deployment's
//! settings ([`DeployConfig`]), the signing keys of approval links, and the record every step
//! of a run leaves in the ledger ([`recorded`]). It imports nothing from the floors above: the
//! domain (`fence`, `approval`, `drift`, …), the steps and the dispatcher build on it.

pub mod config;
pub mod deps;
pub mod error;
pub mod records;
pub mod signing;
pub mod workspaces;

pub use config::DeployConfig;
pub use deps::{budget, load_plan, read_parameter, read_secret, Deps, HealthPort, SIGNING_KEY_TTL};
pub use error::StepError;
pub use records::{recorded, StepRecord, VERIFY_CLIENTS};
pub use workspaces::Workspaces;
