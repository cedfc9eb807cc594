//! `approval-callback` (behind the HTTP API): the e-mail link channel of the human in the loop.
//!
//! `GET /approval?run&stage&decision&approver&exp&sig` verifies the link and shows a
//! confirmation page with the evidence and a button; only `POST` (the button) decides — so link
//! prefetchers and mail scanners decide nothing. A request whose signature does not verify
//! touches nothing under any run (it is logged and counted only); refusals of genuine links go
//! to the run's bounded refusal log. Answers are readable HTML pages in every case, sent with
//! headers that forbid framing, sniffing and caching.
//!
//! Wire format: API Gateway HTTP API payload 2.0 in (`requestContext.http.method`,
//! `rawQueryString`, `body`, `isBase64Encoded`), `{statusCode, headers, body}` out.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Value};
use tracing::{info, instrument, warn};

use crate::approval::link::LinkError;
use crate::approval::{approval_key, decide::DecideError, ApprovalRecord};
use crate::html::escape;
use crate::kernel::{Deps, StepError};

/// An HTML answer.
fn page(status: u16, title: &str, body_html: &str) -> Value {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>Lifeboat — {t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.4}}\
         table{{border-collapse:collapse}}td{{border-bottom:1px solid #ddd;padding:.2rem .6rem}}\
         button{{font-size:1.2rem;padding:.6rem 1.4rem}}</style></head>\
         <body><h1>{t}</h1>{body_html}</body></html>",
        t = escape(title)
    );
    json!({
        "statusCode": status,
        "headers": {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "x-robots-tag": "noindex"
        },
        "body": html
    })
}

fn evidence_html(record: &ApprovalRecord) -> String {
    let mut rows = record.evidence.rows();
    rows.push(("Request expires".into(), record.expires_at.to_rfc3339()));
    rows.push((
        "Approvals".into(),
        format!(
            "{} of {}",
            record.approvals.len(),
            record.required_approvals.max(1)
        ),
    ));
    let cells: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v)))
        .collect();
    format!("<table>{cells}</table>")
}

fn form_pairs(s: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(s.as_bytes())
        .into_owned()
        .collect()
}

/// Serves one HTTP API request.
#[instrument(skip_all)]
pub async fn handle(deps: &Deps, event: Value) -> Result<Value, StepError> {
    let method = event
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let query = form_pairs(
        event
            .get("rawQueryString")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    let keys = match deps.signing_keys().await {
        Ok(Some(keys)) => keys,
        Ok(None) => {
            return Ok(page(
                503,
                "Approval links are not configured",
                "<p>Use the CLI or the console.</p>",
            ))
        }
        Err(e) => {
            warn!(error = %e, "signing key unusable");
            return Ok(page(
                503,
                "Approval links are unavailable",
                "<p>The deployment's signing key cannot be used. Nothing was decided; use the CLI.</p>",
            ));
        }
    };
    let now = chrono::Utc::now();
    let link = match crate::approval::link::verify(
        &keys,
        &deps.config.stack_id,
        &query,
        now.timestamp(),
    ) {
        Ok(link) => link,
        Err(e) => {
            // Only a link Lifeboat issued (valid signature, e.g. expired) leaves a trace under
            // the run it names; anything else could be anyone and touches nothing.
            if e.is_signed() {
                if let (Some(run_id), Some(stage)) = (
                    query
                        .get("run")
                        .and_then(|r| crate::run::RunId::parse(r).ok()),
                    match query.get("stage").map(String::as_str) {
                        Some("failover") => Some(crate::approval::ApprovalStage::Failover),
                        Some("rpo_breach") => Some(crate::approval::ApprovalStage::RpoBreach),
                        _ => None,
                    },
                ) {
                    let who = query.get("approver").cloned().unwrap_or_default();
                    crate::approval::decide::log_refusal(
                        deps,
                        &crate::approval::decide::Attempt {
                            run_id: &run_id,
                            stage,
                            channel: "email-link",
                            who: &who,
                            decision: None,
                        },
                        true,
                        &e.to_string(),
                    )
                    .await;
                }
            }
            warn!(error = %e, signed = e.is_signed(), "approval link refused");
            let (status, title) = match e {
                LinkError::Expired => (410, "This approval link expired"),
                _ => (400, "This approval link is not valid"),
            };
            return Ok(page(
                status,
                title,
                &format!(
                    "<p>{}</p><p>Nothing was decided.</p>",
                    escape(&e.to_string())
                ),
            ));
        }
    };
    let record_key = approval_key(&link.run_id, link.stage);
    let Some(record) = deps.ledger.get::<ApprovalRecord>(&record_key).await? else {
        return Ok(page(
            404,
            "No such approval request",
            "<p>Nothing was decided.</p>",
        ));
    };
    // A signed link for someone who is not an approver of this run (the plan changed, or a
    // key holder minted it) decides nothing and shows nothing.
    if let Err(reason) = crate::approval::votes::resolve_approver(&record.value, &link.approver) {
        let e = DecideError::NotAnApprover {
            run_id: link.run_id.0.clone(),
            who: link.approver.clone(),
            reason,
        };
        crate::approval::decide::log_refusal(
            deps,
            &crate::approval::decide::Attempt {
                run_id: &link.run_id,
                stage: link.stage,
                channel: "email-link",
                who: &link.approver,
                decision: Some(link.decision),
            },
            true,
            &e.to_string(),
        )
        .await;
        return Ok(page(
            403,
            "Not an approver",
            &format!(
                "<p>{}</p><p>Nothing was decided.</p>",
                escape(&e.to_string())
            ),
        ));
    }
    let what = format!(
        "<p><b>{}</b> for run <code>{}</code>, as <b>{}</b>.</p>",
        escape(&link.decision.as_str().to_uppercase()),
        escape(&link.run_id.0),
        escape(&link.approver)
    );
    match method.as_str() {
        "GET" | "HEAD" => {
            if let Some(d) = &record.value.decision {
                return Ok(page(
                    409,
                    "Already decided",
                    &format!(
                        "<p>This request was decided: {} by {}.</p>",
                        escape(d.decision.as_str()),
                        escape(&d.approver)
                    ),
                ));
            }
            let action = format!("?{}", crate::approval::link::query(&keys, &link));
            let body = format!(
                "{what}{evidence}<form method=\"post\" action=\"{action}\">\
                 <p><label>Comment (optional)<br><input name=\"comment\" size=\"40\"></label></p>\
                 <p><button type=\"submit\">Confirm: {decision}</button></p></form>\
                 <p>Opening this page decided nothing; only the button does.</p>",
                evidence = evidence_html(&record.value),
                action = escape(&action),
                decision = escape(link.decision.as_str()),
            );
            Ok(page(200, "Confirm your decision", &body))
        }
        "POST" => {
            let raw = event.get("body").and_then(Value::as_str).unwrap_or("");
            let body = if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
                base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
            } else {
                Some(raw.to_string())
            };
            // A body that cannot be read decides nothing (it may have carried a comment).
            let Some(body) = body else {
                return Ok(page(
                    400,
                    "The form could not be read",
                    "<p>The request body is not valid form data. Nothing was decided; open the link again.</p>",
                ));
            };
            let comment = form_pairs(&body)
                .remove("comment")
                .filter(|c| !c.trim().is_empty());
            match crate::approval::decide::decide(
                deps,
                crate::approval::decide::Ballot {
                    run_id: &link.run_id,
                    stage: link.stage,
                    decision: link.decision,
                    who: &link.approver,
                    channel: "email-link",
                    comment,
                },
            )
            .await
            {
                Ok(vote) => {
                    info!(run = %link.run_id, decision = link.decision.as_str(), settled = vote.settled, "decision by link");
                    let more = if vote.settled {
                        "<p>The execution continues accordingly.</p>".to_string()
                    } else {
                        format!(
                            "<p>{} of {} approvals; another approver is needed.</p>",
                            vote.approvals, vote.required
                        )
                    };
                    Ok(page(200, "Decision recorded", &format!("{what}{more}")))
                }
                Err(e @ DecideError::Expired(_)) => Ok(page(
                    410,
                    "This approval request expired",
                    &format!("<p>{}</p>", escape(&e.to_string())),
                )),
                Err(e @ DecideError::CommentTooLong { .. }) => Ok(page(
                    413,
                    "The comment is too long",
                    &format!(
                        "<p>{}</p><p>Nothing was decided.</p>",
                        escape(&e.to_string())
                    ),
                )),
                Err(e @ DecideError::NotAnApprover { .. }) => Ok(page(
                    403,
                    "Not an approver",
                    &format!(
                        "<p>{}</p><p>Nothing was decided.</p>",
                        escape(&e.to_string())
                    ),
                )),
                Err(e @ DecideError::NotDelivered { .. }) => {
                    warn!(error = %e, "decision not delivered");
                    Ok(page(
                        502,
                        "The decision could not be delivered",
                        &format!(
                            "<p>{}</p><p>Your vote is recorded; press the button again, or use the CLI.</p>",
                            escape(&e.to_string())
                        ),
                    ))
                }
                Err(
                    e @ (DecideError::AlreadyDecided { .. } | DecideError::SameApprover { .. }),
                ) => Ok(page(
                    409,
                    "Already decided",
                    &format!("<p>{}</p>", escape(&e.to_string())),
                )),
                Err(e @ DecideError::NoRequest(_)) => Ok(page(
                    404,
                    "No such approval request",
                    &format!("<p>{}</p>", escape(&e.to_string())),
                )),
                Err(DecideError::Step(e)) => {
                    warn!(error = %e, "decision could not be recorded");
                    Ok(page(
                        503,
                        "The decision could not be recorded",
                        "<p>The ledger could not be reached. Nothing was decided; try again.</p>",
                    ))
                }
            }
        }
        _ => Ok(page(
            405,
            "Method not allowed",
            "<p>Open the link from the e-mail.</p>",
        )),
    }
}
