//! What a validation of the target found: one [`Check`] per probe (simulated authentication,
//! API calls, queries with expected results, ACLs), read by the report and the run state.

use serde::{Deserialize, Serialize};

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Label.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// All checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationOutput {
    /// Checks in order.
    pub checks: Vec<Check>,
    /// All passed.
    pub passed: bool,
    /// These are the client-path checks made after the switch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub through_clients: bool,
}
