//! `lifeboat`: the operator's command line and the local environment it runs drills in —
//! two emulated Databricks workspaces, moto (which executes the real state machines) and a
//! local Lambda host serving our real handlers.

pub mod drill;
pub mod identity;
pub mod local;
pub mod operate;
pub mod stack;
pub mod trend;
pub mod verdict;
