//! Where announcements go, and their wire formats.
//!
//! - **SNS broadcast topic** (the deployment's `TOPIC_ARN`, never the approval topic): subject =
//!   title (ASCII, ≤ 100 characters, as SNS requires), body = text, facts, report link.
//! - **Slack** incoming webhook: `POST` a Block Kit message (`text` fallback, `header`,
//!   `section` with mrkdwn text and up to 10 fields, `context` with the run and the report).
//! - **Microsoft Teams** workflow webhook: `POST {"type": "message", "attachments": [{
//!   "contentType": "application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard 1.4>}]}`.
//! - **Generic webhook**: `POST` the [`Announcement`] as JSON with the event's `detail`.
//!
//! A webhook URL is a credential (whoever holds it can post to the channel), so it lives in
//! Secrets Manager: the secret's value is `{"type": "slack" | "teams" | "webhook", "url":
//! "https://…"}`. No error or record ever carries the URL.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Announcement, Tone};
use crate::retry::RetryPolicy;

/// The kind of a webhook channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Slack incoming webhook (Block Kit).
    Slack,
    /// Microsoft Teams workflow webhook (Adaptive Card).
    Teams,
    /// Any HTTPS endpoint taking JSON.
    Webhook,
}

/// A webhook channel read from its secret.
#[derive(Debug, Clone)]
pub struct Channel {
    /// The secret's id (what records and errors name).
    pub secret_id: String,
    /// Its kind.
    pub kind: ChannelKind,
    /// The URL (a credential: never logged, recorded or put in an error).
    url: reqwest::Url,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelSecret {
    #[serde(rename = "type")]
    kind: ChannelKind,
    url: String,
}

impl Channel {
    /// Pure: parses a secret's value. HTTPS only, except a loopback address (the local stack's
    /// receiver). Errors name the secret and the field, never the value.
    pub fn parse(secret_id: &str, value: &str) -> Result<Channel, String> {
        let secret: ChannelSecret = serde_json::from_str(value).map_err(|e| {
            // serde's message names the field (or the unknown variant) without echoing values
            // for these shapes; its position is not useful here.
            let msg = e.to_string();
            let msg = msg.split(" at line").next().unwrap_or_default().to_string();
            format!(
                "secret {secret_id}: expected {{\"type\": \"slack\"|\"teams\"|\"webhook\", \"url\": \"https://…\"}}: {}",
                if msg.contains("unknown variant") || msg.contains("missing field") || msg.contains("unknown field") {
                    msg
                } else {
                    "not such a JSON object".to_string()
                }
            )
        })?;
        let url = reqwest::Url::parse(&secret.url)
            .map_err(|_| format!("secret {secret_id}: field `url` is not a URL"))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(format!(
                "secret {secret_id}: field `url` must be https:// (a webhook URL is a credential)"
            ));
        }
        Ok(Channel {
            secret_id: secret_id.to_string(),
            kind: secret.kind,
            url,
        })
    }

    /// Pure: the request body for this channel.
    pub fn payload(&self, a: &Announcement, detail: &Value) -> Value {
        match self.kind {
            ChannelKind::Slack => slack(a),
            ChannelKind::Teams => teams(a),
            ChannelKind::Webhook => webhook(a, detail),
        }
    }

    /// The name records use: `slack:<secret id>`.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Webhook => "webhook",
        };
        format!("{kind}:{}", self.secret_id)
    }
}

/// Escapes text for Slack mrkdwn (`&`, `<`, `>` are control characters there: `<url|text>`
/// would otherwise let a workspace name forge a link).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

/// Pure: a Slack Block Kit message (header ≤ 150 chars, section ≤ 3000, ≤ 10 fields).
pub fn slack(a: &Announcement) -> Value {
    let emoji = match a.tone {
        Tone::Info => ":information_source:",
        Tone::Good => ":white_check_mark:",
        Tone::Warning => ":warning:",
        Tone::Bad => ":rotating_light:",
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip_chars(&a.title, 150), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip_chars(&format!("{emoji} {}", slack_escape(&a.text)), 3000)}}),
    ];
    let fields: Vec<Value> = a
        .facts
        .iter()
        .take(10)
        .map(|(k, v)| {
            json!({"type": "mrkdwn", "text": clip_chars(&format!("*{}*\n{}", slack_escape(k), slack_escape(v)), 2000)})
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut context = format!("Lifeboat · plan {}", slack_escape(&a.plan));
    if let Some(url) = &a.report_url {
        context.push_str(&format!(
            " · <{}|report>",
            url.replace('|', "%7C").replace('>', "%3E")
        ));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    json!({"text": clip_chars(&format!("{}: {}", a.title, a.text), 3000), "blocks": blocks})
}

/// Pure: a Teams workflow message holding an Adaptive Card 1.4.
pub fn teams(a: &Announcement) -> Value {
    let color = match a.tone {
        Tone::Info => "Accent",
        Tone::Good => "Good",
        Tone::Warning => "Warning",
        Tone::Bad => "Attention",
    };
    let facts: Vec<Value> = a
        .facts
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": a.title, "weight": "Bolder", "size": "Medium", "wrap": true, "color": color},
            {"type": "TextBlock", "text": a.text, "wrap": true},
            {"type": "FactSet", "facts": facts}
        ]
    });
    if let Some(url) = &a.report_url {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Open the report", "url": url}]);
    }
    json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": null,
        "content": card
    }]})
}

/// Pure: the generic webhook body: the announcement and the event's detail.
pub fn webhook(a: &Announcement, detail: &Value) -> Value {
    let facts: serde_json::Map<String, Value> =
        a.facts.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "source": "lifeboat",
        "detail_type": a.detail_type,
        "run_id": a.run_id,
        "plan": a.plan,
        "title": a.title,
        "text": a.text,
        "tone": a.tone,
        "facts": facts,
        "report_url": a.report_url,
        "detail": detail,
    })
}

/// Pure: the SNS subject (ASCII printable, ≤ 100 characters: SNS refuses anything else).
pub fn sns_subject(a: &Announcement) -> String {
    let ascii: String = format!("[Lifeboat] {}", a.title)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    ascii.chars().take(100).collect()
}

/// Pure: the SNS body (plain text).
pub fn sns_body(a: &Announcement) -> String {
    let mut body = a.text.clone();
    body.push_str("\n\n");
    for (k, v) in &a.facts {
        body.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(url) = &a.report_url {
        body.push_str(&format!("\nReport: {url}\n"));
    }
    body
}

/// What happened to one delivery (recorded in the ledger, shown in the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `sns`, `slack:<secret id>`, ….
    pub channel: String,
    /// Delivered.
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Why not (never the URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Per-attempt timeout of a webhook post (the attempts and waits are
/// [`RetryPolicy::WEBHOOK`]'s).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Pure: whether an HTTP status is worth another attempt (429 and 5xx; other 4xx mean the
/// request or the URL is wrong and will stay so).
pub fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

/// Posts `body` to the channel, retrying transient failures with backoff.
pub async fn post(
    http: &reqwest::Client,
    channel: &Channel,
    body: &Value,
    retry: &RetryPolicy,
) -> Delivery {
    let mut attempts = 0;
    let error = loop {
        attempts += 1;
        let sent = http
            .post(channel.url.clone())
            .timeout(WEBHOOK_TIMEOUT)
            .json(body)
            .send()
            .await;
        let (error, again) = match sent {
            Ok(r) if r.status().is_success() => {
                return Delivery {
                    channel: channel.label(),
                    ok: true,
                    attempts,
                    error: None,
                }
            }
            Ok(r) => (
                format!("HTTP {}", r.status().as_u16()),
                retryable(r.status().as_u16()),
            ),
            // Without the URL: it is the credential.
            Err(e) => (e.without_url().to_string(), true),
        };
        if !again || !retry.may_retry(attempts) {
            break error;
        }
        tokio::time::sleep(retry.backoff(attempts)).await;
    };
    Delivery {
        channel: channel.label(),
        ok: false,
        attempts,
        error: Some(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Announcement {
        Announcement {
            detail_type: "Lifeboat DNS Switched",
            run_id: "r1".into(),
            plan: "sales".into(),
            title: "sales: clients switched to the DR site".into(),
            text: "Use https://dr <b>&".into(),
            facts: vec![("Now".into(), "<https://evil|click>".into())],
            tone: Tone::Info,
            report_url: Some("https://s3.console.aws.amazon.com/s3/object/x?prefix=a|b".into()),
        }
    }

    #[test]
    fn secrets_parse_or_name_the_problem_without_the_url() {
        let rows: Vec<(&str, Result<ChannelKind, &str>)> = vec![
            (
                r#"{"type":"slack","url":"https://hooks.slack.com/services/T/B/X"}"#,
                Ok(ChannelKind::Slack),
            ),
            (
                r#"{"type":"teams","url":"https://prod.westus.logic.azure.com/wf"}"#,
                Ok(ChannelKind::Teams),
            ),
            (
                r#"{"type":"webhook","url":"http://127.0.0.1:9/x"}"#,
                Ok(ChannelKind::Webhook),
            ),
            (
                r#"{"type":"webhook","url":"http://hooks.example.com/secret-token"}"#,
                Err("must be https"),
            ),
            (
                r#"{"type":"pager","url":"https://x"}"#,
                Err("unknown variant"),
            ),
            (r#"{"type":"slack"}"#, Err("missing field `url`")),
            (
                r#"{"type":"slack","url":"https://x","token":"y"}"#,
                Err("unknown field"),
            ),
            (
                "https://hooks.slack.com/services/T/B/SECRETPART",
                Err("not such a JSON object"),
            ),
            (
                r#"{"type":"slack","url":"not a url SECRETPART"}"#,
                Err("`url` is not a URL"),
            ),
        ];
        for (value, want) in rows {
            let got = Channel::parse("lifeboat/notify/slack", value);
            match (got, want) {
                (Ok(c), Ok(kind)) => assert_eq!(c.kind, kind),
                (Err(e), Err(part)) => {
                    assert!(
                        e.contains(part) && e.contains("lifeboat/notify/slack"),
                        "{value}: {e}"
                    );
                    assert!(
                        !e.contains("SECRETPART") && !e.contains("secret-token"),
                        "leaks: {e}"
                    );
                }
                (got, want) => panic!("{value}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn slack_text_cannot_forge_links_or_markup() {
        let body = slack(&sample()).to_string();
        assert!(!body.contains("<https://evil|click>"), "{body}");
        assert!(body.contains("&lt;https://evil|click&gt;"), "{body}");
        assert!(body.contains("&lt;b&gt;&amp;"), "{body}");
        // The report link keeps its own delimiters intact.
        assert!(body.contains("prefix=a%7Cb|report>"), "{body}");
        let v = slack(&sample());
        assert_eq!(v["blocks"][0]["type"], "header");
        assert!(v["text"]
            .as_str()
            .unwrap()
            .starts_with("sales: clients switched"));
    }

    #[test]
    fn teams_carries_an_adaptive_card_with_the_report_action() {
        let v = teams(&sample());
        assert_eq!(v["type"], "message");
        let att = &v["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(att["content"]["type"], "AdaptiveCard");
        assert_eq!(att["content"]["body"][2]["facts"][0]["title"], "Now");
        assert_eq!(att["content"]["actions"][0]["type"], "Action.OpenUrl");
    }

    #[test]
    fn sns_subjects_obey_sns() {
        let mut a = sample();
        a.title = format!("ünïcode\nnewline {}", "y".repeat(300));
        let s = sns_subject(&a);
        assert!(
            s.len() <= 100 && s.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "{s}"
        );
        assert!(sns_body(&a).contains("Report: https://"));
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for (status, want) in [
            (200, false),
            (400, false),
            (403, false),
            (404, false),
            (410, false),
            (429, true),
            (500, true),
            (503, true),
        ] {
            assert_eq!(retryable(status), want, "{status}");
        }
    }
}
