//! SQL Statement Execution API.
//!
//! `POST /api/2.0/sql/statements {warehouse_id, statement, wait_timeout, on_wait_timeout,
//! disposition: INLINE, format: JSON_ARRAY}` → `{statement_id, status{state, error?},
//! manifest{schema{columns[]}}, result{data_array[[...]]}}`; values come back as strings
//! (`SELECT 1` → `[["1"]]`). Poll `GET /api/2.0/sql/statements/{id}` until a terminal state.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use super::{ApiError, ErrorKind, Family, WorkspaceClient};

/// Statement state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatementState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Closed,
    #[serde(other)]
    Other,
}

impl StatementState {
    fn is_terminal(self) -> bool {
        !matches!(self, StatementState::Pending | StatementState::Running)
    }
}

/// Error detail of a failed statement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementError {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Status of a statement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementStatus {
    pub state: StatementState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StatementError>,
}

/// Inline result rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatementResult {
    #[serde(default)]
    pub data_array: Vec<Vec<Option<String>>>,
}

/// The statement resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    pub statement_id: String,
    pub status: StatementStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<StatementResult>,
}

impl Statement {
    /// Rows (empty unless SUCCEEDED).
    pub fn rows(&self) -> Vec<Vec<Option<String>>> {
        self.result
            .as_ref()
            .map(|r| r.data_array.clone())
            .unwrap_or_default()
    }
}

impl WorkspaceClient {
    /// Runs a statement on a warehouse and waits (polling, within the client's deadline and at
    /// most `max_wait`) for a terminal state. A statement still running after `max_wait` is
    /// cancelled and reported as [`ErrorKind::DeadlineExceeded`].
    #[instrument(skip(self, statement), fields(host = %self.host()))]
    pub async fn execute_statement(
        &self,
        warehouse_id: &str,
        statement: &str,
        max_wait: Duration,
    ) -> Result<Statement, ApiError> {
        let started = tokio::time::Instant::now();
        let mut current: Statement = self
            .post(
                Family::Sql,
                "/api/2.0/sql/statements",
                json!({
                    "warehouse_id": warehouse_id,
                    "statement": statement,
                    "wait_timeout": "10s",
                    "on_wait_timeout": "CONTINUE",
                    "disposition": "INLINE",
                    "format": "JSON_ARRAY",
                }),
            )
            .await?;
        while !current.status.state.is_terminal() {
            if started.elapsed() >= max_wait {
                let path = format!("/api/2.0/sql/statements/{}/cancel", current.statement_id);
                let _ = self
                    .post::<serde_json::Value>(Family::Sql, &path, json!({}))
                    .await;
                return Err(ApiError::new(
                    ErrorKind::DeadlineExceeded,
                    "POST /api/2.0/sql/statements",
                    format!(
                        "statement still {:?} after {max_wait:?}; cancelled",
                        current.status.state
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            current = self
                .get(
                    Family::Sql,
                    &format!("/api/2.0/sql/statements/{}", current.statement_id),
                    &[],
                )
                .await?;
        }
        Ok(current)
    }
}
