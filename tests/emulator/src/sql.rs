//! SQL Statement Execution API 2.0 over an embedded SQLite database.
//!
//! - `POST /api/2.0/sql/statements {warehouse_id, statement, wait_timeout ("0s" or "5s"–"50s",
//!   default "10s"), on_wait_timeout (CONTINUE|CANCEL), disposition (INLINE), format
//!   (JSON_ARRAY), parameters [{name, value, type}], row_limit}` →
//!   `{statement_id, status {state, error?}, manifest?, result?}`.
//!   On a RUNNING warehouse the statement runs at once (SUCCEEDED or FAILED with
//!   `error {error_code: "BAD_REQUEST", message: "[CLASS] ..."}`). A stopped warehouse is started
//!   (as the real service auto-starts it); the call waits up to `wait_timeout` for it, then
//!   answers PENDING (or CANCELED with `on_wait_timeout: CANCEL`); a later GET runs it once the
//!   warehouse is RUNNING.
//! - `GET /api/2.0/sql/statements/{id}`, `POST /api/2.0/sql/statements/{id}/cancel`.
//!
//! Results: `manifest {format: "JSON_ARRAY", schema {column_count, columns [{name, type_name,
//! type_text, position}]}, total_chunk_count: 1, chunks, total_row_count, truncated}`, `result
//! {chunk_index: 0, row_offset: 0, row_count, data_array}`; every value is a JSON string, NULL
//! is `null`. Statements without a result set answer one row `num_affected_rows`.
//!
//! Table names: Unity Catalog three-part names `catalog.schema.table` are rewritten to the
//! SQLite table `catalog__schema__table` (lower case), e.g. `main.sales.orders` →
//! `main__sales__orders`. Named parameters `:name` are bound natively.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{parse_body, ApiError, ApiResult};
use crate::pipelines::uuid_from;
use crate::state::{lock, Shared};
use crate::warehouses::WarehouseState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatementState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Closed,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SqlParam {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub id: String,
    pub warehouse_id: String,
    pub sql: String,
    pub params: Vec<SqlParam>,
    pub row_limit: Option<usize>,
    pub state: StatementState,
    /// `manifest`/`result` or `error`, once finished.
    pub outcome: Option<Result<(Value, Value), String>>,
}

impl Statement {
    fn to_json(&self) -> Value {
        let mut v = json!({"statement_id": self.id, "status": {"state": self.state}});
        match &self.outcome {
            Some(Ok((manifest, result))) => {
                v["manifest"] = manifest.clone();
                v["result"] = result.clone();
            }
            Some(Err(msg)) => {
                v["status"]["error"] = json!({"error_code": "BAD_REQUEST", "message": msg});
            }
            None => {}
        }
        v
    }
}

/// Rewrites unquoted or backticked three-part names `a.b.c` to `"a__b__c"`.
pub fn rewrite_names(sql: &str) -> String {
    let cs: Vec<char> = sql.chars().collect();
    let n = cs.len();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_';
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // Parses one identifier part at j: returns (text, next index).
    let part = |j: usize| -> Option<(String, usize)> {
        if j >= n {
            return None;
        }
        if cs[j] == '`' {
            let end = (j + 1..n).find(|&k| cs[k] == '`')?;
            Some((cs[j + 1..end].iter().collect(), end + 1))
        } else if ident_start(cs[j]) {
            let mut k = j;
            while k < n && ident_char(cs[k]) {
                k += 1;
            }
            Some((cs[j..k].iter().collect(), k))
        } else {
            None
        }
    };
    while i < n {
        let c = cs[i];
        if c == '\'' || c == '"' {
            let mut k = i + 1;
            while k < n {
                if cs[k] == c {
                    if k + 1 < n && cs[k + 1] == c {
                        k += 2;
                        continue;
                    }
                    break;
                }
                k += 1;
            }
            let end = (k + 1).min(n);
            out.extend(&cs[i..end]);
            i = end;
        } else if c.is_ascii_digit() || c == ':' {
            let mut k = i + 1;
            while k < n && ident_char(cs[k]) {
                k += 1;
            }
            out.extend(&cs[i..k]);
            i = k;
        } else if ident_start(c) || c == '`' {
            let mut parts = Vec::new();
            let mut j = i;
            while let Some((p, next)) = part(j) {
                parts.push(p);
                j = next;
                if j < n && cs[j] == '.' && parts.len() < 3 && part(j + 1).is_some() {
                    j += 1;
                } else {
                    break;
                }
            }
            if parts.is_empty() {
                out.push(c);
                i += 1;
            } else if parts.len() == 3 {
                out.push_str(&format!("\"{}\"", parts.join("__").to_lowercase()));
                i = j;
            } else {
                out.extend(&cs[i..j]);
                i = j;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Databricks (type_name, type_text) for a SQLite declared type.
fn type_of(decl: Option<&str>, sample: Option<&rusqlite::types::Value>) -> (String, String) {
    use rusqlite::types::Value as V;
    if let Some(d) = decl {
        let up = d.to_uppercase();
        let name = match up.split('(').next().unwrap_or("").trim() {
            "BIGINT" | "LONG" => "LONG",
            "INT" | "INTEGER" => "INT",
            "SMALLINT" => "SHORT",
            "TINYINT" => "BYTE",
            "DOUBLE" | "REAL" => "DOUBLE",
            "FLOAT" => "FLOAT",
            "DECIMAL" | "NUMERIC" => "DECIMAL",
            "BOOLEAN" => "BOOLEAN",
            "TIMESTAMP" => "TIMESTAMP",
            "DATE" => "DATE",
            "BINARY" | "BLOB" => "BINARY",
            _ => "STRING",
        };
        return (name.to_string(), up);
    }
    let name = match sample {
        Some(V::Integer(i)) if i32::try_from(*i).is_ok() => "INT",
        Some(V::Integer(_)) => "LONG",
        Some(V::Real(_)) => "DOUBLE",
        Some(V::Blob(_)) => "BINARY",
        _ => "STRING",
    };
    (name.to_string(), name.to_string())
}

fn render(v: &rusqlite::types::Value, type_name: &str, type_text: &str) -> Value {
    use rusqlite::types::Value as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) if type_name == "BOOLEAN" => json!(if *i != 0 { "true" } else { "false" }),
        V::Integer(i) => json!(i.to_string()),
        V::Real(f) if type_name == "DECIMAL" => {
            let scale = type_text
                .split(',')
                .nth(1)
                .and_then(|s| s.trim_end_matches(')').trim().parse::<usize>().ok())
                .unwrap_or(2);
            json!(format!("{f:.scale$}"))
        }
        V::Real(f) if f.fract() == 0.0 && f.abs() < 1e15 => json!(format!("{f:.1}")),
        V::Real(f) => json!(f.to_string()),
        V::Text(s) => json!(s),
        V::Blob(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

fn classify(msg: &str) -> String {
    if msg.contains("no such table") {
        let t = msg
            .rsplit(':')
            .next()
            .unwrap_or("")
            .trim()
            .replace("__", ".");
        format!(
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view `{t}` cannot be found. SQLSTATE: 42P01"
        )
    } else if msg.contains("no such column") {
        format!("[UNRESOLVED_COLUMN.WITHOUT_SUGGESTION] {msg}. SQLSTATE: 42703")
    } else if msg.contains("syntax error") || msg.contains("incomplete input") {
        format!("[PARSE_SYNTAX_ERROR] Syntax error: {msg}. SQLSTATE: 42601")
    } else {
        format!("[INTERNAL_ERROR] {msg}")
    }
}

/// Runs one statement on the connection: (manifest, result) or an error message.
pub fn execute(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[SqlParam],
    row_limit: Option<usize>,
) -> Result<(Value, Value), String> {
    use rusqlite::types::Value as V;
    let sql = rewrite_names(sql.trim().trim_end_matches(';'));
    let mut stmt = conn.prepare(&sql).map_err(|e| classify(&e.to_string()))?;
    for i in 1..=stmt.parameter_count() {
        let Some(pname) = stmt.parameter_name(i).map(str::to_string) else {
            return Err("[UNBOUND_SQL_PARAMETER] Positional parameters are not supported".into());
        };
        let bare = pname.trim_start_matches([':', '@', '$']);
        let p = params.iter().find(|p| p.name == bare).ok_or_else(|| {
            format!("[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {bare}. SQLSTATE: 42P02")
        })?;
        let kind = p.kind.as_deref().unwrap_or("STRING").to_uppercase();
        let value = match &p.value {
            None => V::Null,
            Some(s) => match kind.split('(').next().unwrap_or("") {
                "INT" | "BIGINT" | "SMALLINT" | "TINYINT" | "LONG" => s
                    .parse::<i64>()
                    .map(V::Integer)
                    .map_err(|_| format!("[INVALID_PARAMETER_VALUE] {bare}: {s} is not {kind}"))?,
                "DOUBLE" | "FLOAT" | "DECIMAL" => s
                    .parse::<f64>()
                    .map(V::Real)
                    .map_err(|_| format!("[INVALID_PARAMETER_VALUE] {bare}: {s} is not {kind}"))?,
                "BOOLEAN" => V::Integer(i64::from(s.eq_ignore_ascii_case("true"))),
                _ => V::Text(s.clone()),
            },
        };
        stmt.raw_bind_parameter(i, value)
            .map_err(|e| classify(&e.to_string()))?;
    }
    let ncols = stmt.column_count();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let decls: Vec<Option<String>> = stmt
        .columns()
        .iter()
        .map(|c| c.decl_type().map(str::to_string))
        .collect();
    let mut rows: Vec<Vec<V>> = Vec::new();
    let mut truncated = false;
    {
        let mut rs = stmt.raw_query();
        while let Some(row) = rs.next().map_err(|e| classify(&e.to_string()))? {
            if row_limit.is_some_and(|l| rows.len() >= l) {
                truncated = true;
                break;
            }
            let mut r = Vec::with_capacity(ncols);
            for i in 0..ncols {
                r.push(row.get::<_, V>(i).map_err(|e| classify(&e.to_string()))?);
            }
            rows.push(r);
        }
    }
    let (cols, data): (Vec<Value>, Vec<Value>) = if ncols == 0 {
        let changes = conn.changes();
        (
            vec![
                json!({"name": "num_affected_rows", "type_name": "LONG", "type_text": "BIGINT", "position": 0}),
            ],
            vec![json!([changes.to_string()])],
        )
    } else {
        let types: Vec<(String, String)> = (0..ncols)
            .map(|i| {
                let sample = rows.iter().map(|r| &r[i]).find(|v| !matches!(v, V::Null));
                type_of(decls[i].as_deref(), sample)
            })
            .collect();
        let cols = names
            .iter()
            .zip(&types)
            .enumerate()
            .map(|(i, (n, (tn, tt)))| json!({"name": n, "type_name": tn, "type_text": tt, "position": i}))
            .collect();
        let data = rows
            .iter()
            .map(|r| {
                Value::Array(
                    r.iter()
                        .zip(&types)
                        .map(|(v, (tn, tt))| render(v, tn, tt))
                        .collect(),
                )
            })
            .collect();
        (cols, data)
    };
    let count = data.len();
    let manifest = json!({
        "format": "JSON_ARRAY",
        "schema": {"column_count": cols.len(), "columns": cols},
        "total_chunk_count": 1,
        "chunks": [{"chunk_index": 0, "row_offset": 0, "row_count": count}],
        "total_row_count": count,
        "truncated": truncated,
    });
    let result = json!({"chunk_index": 0, "row_offset": 0, "row_count": count, "data_array": data});
    Ok((manifest, result))
}

#[derive(Deserialize)]
struct ExecuteBody {
    warehouse_id: Option<String>,
    statement: Option<String>,
    #[serde(default)]
    wait_timeout: Option<String>,
    #[serde(default)]
    on_wait_timeout: Option<String>,
    #[serde(default)]
    disposition: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    parameters: Vec<SqlParam>,
    #[serde(default)]
    row_limit: Option<usize>,
}

fn parse_wait(s: Option<&str>) -> ApiResult<Duration> {
    let s = s.unwrap_or("10s");
    let secs: u64 = s
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::invalid(format!("Invalid wait_timeout: {s}")))?;
    if secs != 0 && !(5..=50).contains(&secs) {
        return Err(ApiError::invalid(format!(
            "wait_timeout must be 0s or between 5s and 50s, got {s}"
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// Runs a pending statement if its warehouse is RUNNING. Returns the statement JSON.
fn poll(emu: &Shared, id: &str) -> ApiResult<(StatementState, Value)> {
    let (mut w, _) = emu.world();
    let st = w
        .statements
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("Statement {id} does not exist.")))?
        .clone();
    if st.state == StatementState::Pending {
        let running = w
            .warehouses
            .get(&st.warehouse_id)
            .is_some_and(|wh| wh.state == WarehouseState::Running);
        if running {
            let outcome = {
                let conn = lock(&emu.sql);
                execute(&conn, &st.sql, &st.params, st.row_limit)
            };
            if let Some(s) = w.statements.get_mut(id) {
                s.state = if outcome.is_ok() {
                    StatementState::Succeeded
                } else {
                    StatementState::Failed
                };
                s.outcome = Some(outcome);
            }
        }
    }
    let s = w
        .statements
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("Statement {id} does not exist.")))?;
    Ok((s.state, s.to_json()))
}

#[tracing::instrument(skip_all)]
async fn execute_statement(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: ExecuteBody = parse_body(&body)?;
    let wh_id = b
        .warehouse_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: warehouse_id"))?;
    let sql = b
        .statement
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: statement"))?;
    let wait = parse_wait(b.wait_timeout.as_deref())?;
    if b.disposition.as_deref().is_some_and(|d| d != "INLINE") {
        return Err(ApiError::invalid(
            "The emulator supports only disposition INLINE",
        ));
    }
    if b.format.as_deref().is_some_and(|f| f != "JSON_ARRAY") {
        return Err(ApiError::invalid(
            "The emulator supports only format JSON_ARRAY with INLINE disposition",
        ));
    }
    let id = {
        let (mut w, now) = emu.world();
        let state = w
            .warehouses
            .get(&wh_id)
            .map(|wh| wh.state)
            .ok_or_else(|| ApiError::not_found(format!("Warehouse {wh_id} does not exist.")))?;
        if state != WarehouseState::Running {
            w.start_warehouse(&wh_id, &now)?;
        }
        let id = format!("01f0{}", &uuid_from(&mut w.rng)[4..]);
        w.statements.insert(
            id.clone(),
            Statement {
                id: id.clone(),
                warehouse_id: wh_id,
                sql,
                params: b.parameters,
                row_limit: b.row_limit,
                state: StatementState::Pending,
                outcome: None,
            },
        );
        id
    };
    let deadline = Instant::now() + wait;
    loop {
        let (state, v) = poll(&emu, &id)?;
        if state != StatementState::Pending {
            return Ok(Json(v));
        }
        if Instant::now() >= deadline {
            if b.on_wait_timeout.as_deref() == Some("CANCEL") {
                let (mut w, _) = emu.world();
                if let Some(s) = w.statements.get_mut(&id) {
                    s.state = StatementState::Canceled;
                    return Ok(Json(s.to_json()));
                }
            }
            return Ok(Json(v));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tracing::instrument(skip_all)]
async fn get_statement(
    State(emu): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, v) = poll(&emu, &id)?;
    Ok(Json(v))
}

#[tracing::instrument(skip_all)]
async fn cancel(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (mut w, _) = emu.world();
    let s = w
        .statements
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(format!("Statement {id} does not exist.")))?;
    if matches!(s.state, StatementState::Pending | StatementState::Running) {
        s.state = StatementState::Canceled;
    }
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/sql/statements", post(execute_statement))
        .route("/api/2.0/sql/statements/", post(execute_statement))
        .route("/api/2.0/sql/statements/{id}", get(get_statement))
        .route("/api/2.0/sql/statements/{id}/cancel", post(cancel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_three_part_names_only() {
        assert_eq!(
            rewrite_names("SELECT o.id FROM main.sales.orders o WHERE x = 'a.b.c'"),
            "SELECT o.id FROM \"main__sales__orders\" o WHERE x = 'a.b.c'"
        );
        assert_eq!(
            rewrite_names("select * from `main`.`Sales`.`orders`"),
            "select * from \"main__sales__orders\""
        );
        assert_eq!(rewrite_names("SELECT 1.5, :p"), "SELECT 1.5, :p");
    }

    #[test]
    fn select_one() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let (m, r) = execute(&c, "SELECT 1", &[], None).unwrap();
        assert_eq!(r["data_array"], json!([["1"]]));
        assert_eq!(m["schema"]["columns"][0]["type_name"], "INT");
    }
}
