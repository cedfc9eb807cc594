//! A poll of the AWS Health API: the fallback when EventBridge delivery of `aws.health` events
//! is late or lost. It asks for open `issue` events in one region and renders each one in the
//! EventBridge shape `health-ingest` already parses, so both paths share one decision.
//!
//! Availability: the Health API needs a Business, Enterprise On-Ramp or Enterprise support plan
//! (newer plan names: Business Support+, Enterprise, Unified Operations); without one every call
//! fails with `SubscriptionRequiredException`, reported here as
//! [`HealthApiError::NotSubscribed`] — callers log it and rely on EventBridge alone.
//!
//! Endpoint: the Health API is active-passive across two regions. `us-east-1` is active,
//! `us-east-2` takes over on failover, and `global.health.amazonaws.com` is a DNS name that
//! points at whichever is active (the request must be signed for that region). Build the client
//! for [`ACTIVE_REGION`]; a caller that wants the failover builds a second adapter for
//! [`PASSIVE_REGION`] and tries it when the first is unreachable. The organizational view
//! (`*ForOrganization` operations) is out of scope: this polls the account the Lambda runs in.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_health::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_health::types::{EventFilter, EventStatusCode, EventTypeCategory};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

/// The Health API's active region (its endpoint is `health.us-east-1.amazonaws.com`).
pub const ACTIVE_REGION: &str = "us-east-1";
/// The Health API's passive region, active only during a failover of the Health API itself.
pub const PASSIVE_REGION: &str = "us-east-2";
/// The service code AWS uses for broad regional incidents; always polled.
pub const MULTIPLE_SERVICES: &str = "MULTIPLE_SERVICES";
/// `deliveredBy` marker in the rendered event, so a run's trigger shows it came from a poll.
pub const DELIVERED_BY: &str = "health-api-poll";

/// `DescribeEvents` page size (the API allows 10..=100).
const PAGE_SIZE: i32 = 100;
/// Page cap: open issues in one region are few; more pages mean a filter bug, not an outage.
const MAX_PAGES: usize = 5;
/// `DescribeEventDetails` accepts at most 10 ARNs per call.
const DETAILS_BATCH: usize = 10;

/// What to poll for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthFilter {
    /// The region the events are about (the primary's), not the region of the API endpoint.
    pub region: String,
    /// Health service codes, e.g. `EC2`, `S3` (upper-cased before the call: Health's codes are).
    pub services: Vec<String>,
}

/// One open issue as the Health API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEventRecord {
    pub event_arn: String,
    pub service: String,
    pub event_type_code: String,
    pub event_type_category: String,
    pub status_code: String,
    /// The region the event is about (EventBridge's `detail.eventRegion`).
    pub region: String,
    pub start_time: Option<DateTime<Utc>>,
    pub last_updated_time: Option<DateTime<Utc>>,
    /// `PUBLIC`, `ACCOUNT_SPECIFIC` or `NONE`.
    pub event_scope_code: Option<String>,
    /// Empty when `DescribeEventDetails` could not return it: the event still counts.
    pub latest_description: String,
}

/// Why a poll produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthApiError {
    /// The account has no support plan that includes the Health API. Not fatal: EventBridge
    /// delivery (which needs no plan) keeps working; report it once and stop polling.
    #[error("the AWS Health API needs a Business or Enterprise support plan (SubscriptionRequiredException)")]
    NotSubscribed,
    /// Throttled after the SDK's own retries; poll again later.
    #[error("the AWS Health API throttled the poll")]
    Throttled,
    /// Anything else: a short, secret-free description (service code and message).
    #[error("AWS Health API: {0}")]
    Other(String),
}

/// The poll, as a port: `Arc<dyn HealthApi>` in handlers, a fake in their tests.
#[async_trait]
pub trait HealthApi: Send + Sync {
    /// Open `issue` events about `filter.region` for the services in the filter (plus
    /// `MULTIPLE_SERVICES`), with their latest descriptions.
    async fn open_issues(
        &self,
        filter: &HealthFilter,
    ) -> Result<Vec<HealthEventRecord>, HealthApiError>;
}

/// The adapter over `aws-sdk-health`.
#[derive(Debug, Clone)]
pub struct SdkHealthApi {
    pub client: aws_sdk_health::Client,
}

impl SdkHealthApi {
    /// Wraps a client (build it for [`ACTIVE_REGION`], see the module docs).
    pub fn new(client: aws_sdk_health::Client) -> Self {
        Self { client }
    }

    /// A client from shared configuration, pinned to `region` (normally [`ACTIVE_REGION`] or
    /// [`PASSIVE_REGION`]); endpoint overrides in `config` still apply.
    pub fn from_sdk_config(config: &aws_config::SdkConfig, region: &str) -> Self {
        let conf = aws_sdk_health::config::Builder::from(config)
            .region(aws_sdk_health::config::Region::new(region.to_string()))
            .build();
        Self::new(aws_sdk_health::Client::from_conf(conf))
    }

    /// From the environment's credentials chain, pinned to [`ACTIVE_REGION`] whatever region
    /// the Lambda runs in (the Health API has no endpoint in most regions).
    pub async fn from_env() -> Self {
        let config = crate::aws::config_loader().load().await;
        Self::from_sdk_config(&config, ACTIVE_REGION)
    }

    fn event_filter(filter: &HealthFilter) -> EventFilter {
        let mut services: Vec<String> = Vec::new();
        for s in filter
            .services
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .chain(std::iter::once(MULTIPLE_SERVICES.to_string()))
        {
            if !s.is_empty() && !services.contains(&s) {
                services.push(s);
            }
        }
        EventFilter::builder()
            .regions(filter.region.clone())
            .set_services(Some(services))
            .event_status_codes(EventStatusCode::Open)
            .event_type_categories(EventTypeCategory::Issue)
            .build()
    }

    async fn describe_events(
        &self,
        filter: &HealthFilter,
    ) -> Result<Vec<HealthEventRecord>, HealthApiError> {
        let event_filter = Self::event_filter(filter);
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        let mut token: Option<String> = None;
        for page in 1..=MAX_PAGES {
            let out = self
                .client
                .describe_events()
                .filter(event_filter.clone())
                .max_results(PAGE_SIZE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| map_error(&e))?;
            for event in out.events() {
                match record_from_event(event) {
                    Some(r) if seen.insert(r.event_arn.clone()) => records.push(r),
                    Some(_) => {}
                    None => debug!("Health event without an ARN skipped"),
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
            if page == MAX_PAGES {
                warn!(
                    pages = MAX_PAGES,
                    events = records.len(),
                    "DescribeEvents still paginating; the rest is left for the next poll"
                );
            }
        }
        Ok(records)
    }

    /// Latest descriptions by ARN. Best effort: an event without details keeps an empty
    /// description, because the open issue itself is the signal.
    async fn descriptions(
        &self,
        arns: &[String],
    ) -> HashMap<String, (String, Option<DateTime<Utc>>)> {
        let mut found = HashMap::new();
        for batch in arns.chunks(DETAILS_BATCH) {
            let out = match self
                .client
                .describe_event_details()
                .set_event_arns(Some(batch.to_vec()))
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let e = map_error(&e);
                    warn!(
                        error = %e,
                        batch = batch.len(),
                        "DescribeEventDetails failed; descriptions stay empty"
                    );
                    if e == HealthApiError::Throttled {
                        break;
                    }
                    continue;
                }
            };
            for details in out.successful_set() {
                let Some(event) = details.event() else {
                    continue;
                };
                let Some(arn) = event.arn() else { continue };
                let text = details
                    .event_description()
                    .and_then(|d| d.latest_description())
                    .unwrap_or_default()
                    .to_string();
                found.insert(
                    arn.to_string(),
                    (text, event.last_updated_time().and_then(to_chrono)),
                );
            }
            for failed in out.failed_set() {
                warn!(
                    event_arn = failed.event_arn().unwrap_or_default(),
                    error_name = failed.error_name().unwrap_or_default(),
                    "no details for a Health event; its description stays empty"
                );
            }
        }
        found
    }
}

#[async_trait]
impl HealthApi for SdkHealthApi {
    async fn open_issues(
        &self,
        filter: &HealthFilter,
    ) -> Result<Vec<HealthEventRecord>, HealthApiError> {
        let mut records = self.describe_events(filter).await?;
        let arns: Vec<String> = records.iter().map(|r| r.event_arn.clone()).collect();
        let mut descriptions = self.descriptions(&arns).await;
        for r in &mut records {
            if let Some((text, updated)) = descriptions.remove(&r.event_arn) {
                r.latest_description = text;
                // The details may be one update newer than the summary; keep the time that
                // goes with the description, so the communicationId tracks it.
                if updated > r.last_updated_time {
                    r.last_updated_time = updated;
                }
            }
        }
        Ok(records)
    }
}

fn to_chrono(t: &aws_sdk_health::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn record_from_event(e: &aws_sdk_health::types::Event) -> Option<HealthEventRecord> {
    Some(HealthEventRecord {
        event_arn: e.arn()?.to_string(),
        service: e.service().unwrap_or_default().to_string(),
        event_type_code: e.event_type_code().unwrap_or_default().to_string(),
        event_type_category: e
            .event_type_category()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        status_code: e
            .status_code()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        region: e.region().unwrap_or_default().to_string(),
        start_time: e.start_time().and_then(to_chrono),
        last_updated_time: e.last_updated_time().and_then(to_chrono),
        event_scope_code: e.event_scope_code().map(|c| c.as_str().to_string()),
        latest_description: String::new(),
    })
}

fn map_error<E, R>(err: &SdkError<E, R>) -> HealthApiError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    if let SdkError::ServiceError(e) = err {
        match e.err().code() {
            Some("SubscriptionRequiredException") => return HealthApiError::NotSubscribed,
            Some(
                "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded",
            ) => return HealthApiError::Throttled,
            _ => {}
        }
    }
    HealthApiError::Other(crate::aws::sdk_error_message(err))
}

/// EventBridge's time format for Health event times (`Thu, 27 Apr 2023 21:19:07 GMT`).
fn health_time(t: &DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

impl HealthEventRecord {
    /// A stand-in for EventBridge's `communicationId`: `poll-` + the first 40 hex digits of
    /// SHA-256(`eventArn` + `|` + `lastUpdatedTime` as RFC 3339, or empty). The same update seen
    /// by two polls gets the same id (ingest reports `Duplicate`); a new update gets a new one.
    /// It never equals AWS's own id, so a poll and an EventBridge delivery of one update both
    /// pass the ledger dedupe — the execution name, derived from the event ARN alone, is what
    /// makes them one run (`AlreadyStarted`).
    pub fn communication_id(&self) -> String {
        let updated = self
            .last_updated_time
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let digest = Sha256::digest(format!("{}|{updated}", self.event_arn).as_bytes());
        format!("poll-{}", &hex::encode(digest)[..40])
    }

    /// See [`to_eventbridge_shape`].
    pub fn to_eventbridge_shape(&self) -> serde_json::Value {
        to_eventbridge_shape(self)
    }
}

/// Renders a polled event as the EventBridge `aws.health` event `health-ingest` parses
/// (`crate::incident::HealthEvent`), plus `detail.deliveredBy`. The envelope's
/// `region` is the event's region (there is no delivering bus); unknown times are left out
/// rather than invented.
pub fn to_eventbridge_shape(record: &HealthEventRecord) -> serde_json::Value {
    let communication_id = record.communication_id();
    let mut detail = serde_json::json!({
        "eventArn": record.event_arn,
        "service": record.service,
        "eventTypeCode": record.event_type_code,
        "eventTypeCategory": record.event_type_category,
        "statusCode": record.status_code,
        "communicationId": communication_id,
        "eventRegion": record.region,
        "eventDescription": [{
            "language": "en_US",
            "latestDescription": record.latest_description,
        }],
        "affectedEntities": [],
        "deliveredBy": DELIVERED_BY,
    });
    if let Some(map) = detail.as_object_mut() {
        if let Some(scope) = &record.event_scope_code {
            map.insert("eventScopeCode".into(), scope.clone().into());
        }
        if let Some(t) = &record.start_time {
            map.insert("startTime".into(), health_time(t).into());
        }
        if let Some(t) = &record.last_updated_time {
            map.insert("lastUpdatedTime".into(), health_time(t).into());
        }
    }
    let mut event = serde_json::json!({
        "version": "0",
        "id": communication_id,
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "region": record.region,
        "resources": [],
        "detail": detail,
    });
    if let (Some(map), Some(t)) = (
        event.as_object_mut(),
        record.last_updated_time.or(record.start_time),
    ) {
        map.insert(
            "time".into(),
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into(),
        );
    }
    event
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_health::error::ErrorMetadata;
    use aws_sdk_health::operation::describe_event_details::{
        DescribeEventDetailsError, DescribeEventDetailsOutput,
    };
    use aws_sdk_health::operation::describe_events::{DescribeEventsError, DescribeEventsOutput};
    use aws_sdk_health::primitives::DateTime as SdkTime;
    use aws_sdk_health::types::{
        Event, EventDescription, EventDetails, EventDetailsErrorItem, EventScopeCode,
    };
    use aws_sdk_health::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use serde_json::Value;

    use super::*;
    use crate::incident::HealthEvent;

    const REGION: &str = "eu-west-1";

    fn filter() -> HealthFilter {
        HealthFilter {
            region: REGION.into(),
            services: vec!["EC2".into(), "s3".into()],
        }
    }

    fn arn(i: usize) -> String {
        format!("arn:aws:health:{REGION}::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_OPERATIONAL_ISSUE_{i:04}")
    }

    fn event(i: usize) -> Event {
        Event::builder()
            .arn(arn(i))
            .service("EC2")
            .event_type_code("AWS_EC2_OPERATIONAL_ISSUE")
            .event_type_category(EventTypeCategory::Issue)
            .region(REGION)
            .start_time(SdkTime::from_secs(1_764_493_140))
            .last_updated_time(SdkTime::from_secs(1_764_496_740 + i as i64))
            .status_code(EventStatusCode::Open)
            .event_scope_code(EventScopeCode::Public)
            .build()
    }

    /// Details for every requested ARN, as the API returns them.
    fn details_for(arns: &[String]) -> DescribeEventDetailsOutput {
        let mut out = DescribeEventDetailsOutput::builder();
        for a in arns {
            out = out.successful_set(
                EventDetails::builder()
                    .event(Event::builder().arn(a).service("EC2").build())
                    .event_description(
                        EventDescription::builder()
                            .latest_description(format!("description of {a}"))
                            .build(),
                    )
                    .build(),
            );
        }
        out.build()
    }

    // --- fixtures: the API reference's JSON shapes, turned into SDK outputs ---

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/health-api/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        v.get(key).and_then(Value::as_str)
    }

    fn t(v: &Value, key: &str) -> Option<SdkTime> {
        v.get(key)
            .and_then(Value::as_f64)
            .map(SdkTime::from_secs_f64)
    }

    fn event_from_json(v: &Value) -> Event {
        Event::builder()
            .set_arn(s(v, "arn").map(Into::into))
            .set_service(s(v, "service").map(Into::into))
            .set_event_type_code(s(v, "eventTypeCode").map(Into::into))
            .set_event_type_category(s(v, "eventTypeCategory").map(EventTypeCategory::from))
            .set_region(s(v, "region").map(Into::into))
            .set_availability_zone(s(v, "availabilityZone").map(Into::into))
            .set_start_time(t(v, "startTime"))
            .set_last_updated_time(t(v, "lastUpdatedTime"))
            .set_status_code(s(v, "statusCode").map(EventStatusCode::from))
            .set_event_scope_code(s(v, "eventScopeCode").map(EventScopeCode::from))
            .build()
    }

    fn events_output_from_json(v: &Value) -> DescribeEventsOutput {
        let events = v["events"].as_array().cloned().unwrap_or_default();
        DescribeEventsOutput::builder()
            .set_events(Some(events.iter().map(event_from_json).collect()))
            .set_next_token(s(v, "nextToken").map(Into::into))
            .build()
    }

    fn details_output_from_json(v: &Value) -> DescribeEventDetailsOutput {
        let ok = v["successfulSet"].as_array().cloned().unwrap_or_default();
        let failed = v["failedSet"].as_array().cloned().unwrap_or_default();
        DescribeEventDetailsOutput::builder()
            .set_successful_set(Some(
                ok.iter()
                    .map(|d| {
                        EventDetails::builder()
                            .event(event_from_json(&d["event"]))
                            .event_description(
                                EventDescription::builder()
                                    .set_latest_description(
                                        s(&d["eventDescription"], "latestDescription")
                                            .map(Into::into),
                                    )
                                    .build(),
                            )
                            .build()
                    })
                    .collect(),
            ))
            .set_failed_set(Some(
                failed
                    .iter()
                    .map(|f| {
                        EventDetailsErrorItem::builder()
                            .set_event_arn(s(f, "eventArn").map(Into::into))
                            .set_error_name(s(f, "errorName").map(Into::into))
                            .set_error_message(s(f, "errorMessage").map(Into::into))
                            .build()
                    })
                    .collect(),
            ))
            .build()
    }

    fn fixture_client() -> Client {
        let events = mock!(Client::describe_events)
            .then_output(|| events_output_from_json(&fixture("describe-events.json")));
        let details = mock!(Client::describe_event_details)
            .then_output(|| details_output_from_json(&fixture("describe-event-details.json")));
        mock_client!(aws_sdk_health, RuleMode::Sequential, [&events, &details])
    }

    #[tokio::test]
    async fn pages_then_details_in_batches_of_ten() {
        // Page 1: 12 events and a token; page 2: 3 events, no token. 15 ARNs → batches 10 + 5.
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let events = mock!(Client::describe_events).then_compute_output(move |req| {
            seen.lock().unwrap().push(req.clone());
            match req.next_token() {
                None => DescribeEventsOutput::builder()
                    .set_events(Some((0..12).map(event).collect()))
                    .next_token("page-2")
                    .build(),
                Some(_) => DescribeEventsOutput::builder()
                    .set_events(Some((12..15).map(event).collect()))
                    .build(),
            }
        });
        let batches = Arc::new(Mutex::new(Vec::new()));
        let sizes = batches.clone();
        let details = mock!(Client::describe_event_details).then_compute_output(move |req| {
            sizes.lock().unwrap().push(req.event_arns().len());
            details_for(req.event_arns())
        });
        let client = mock_client!(aws_sdk_health, RuleMode::MatchAny, [&events, &details]);
        let api: Arc<dyn HealthApi> = Arc::new(SdkHealthApi::new(client));

        let records = api.open_issues(&filter()).await.expect("poll succeeds");

        assert_eq!(records.len(), 15);
        assert_eq!(events.num_calls(), 2);
        assert_eq!(*batches.lock().unwrap(), vec![10, 5]);
        assert!(records
            .iter()
            .all(|r| r.latest_description == format!("description of {}", r.event_arn)));

        let requests = requests.lock().unwrap();
        assert_eq!(requests[0].next_token(), None);
        assert_eq!(requests[1].next_token(), Some("page-2"));
        for req in requests.iter() {
            assert_eq!(req.max_results(), Some(100));
            let f = req.filter().expect("filter sent");
            assert_eq!(f.regions(), [REGION.to_string()]);
            assert_eq!(f.services(), ["EC2", "S3", MULTIPLE_SERVICES]);
            assert_eq!(f.event_status_codes(), [EventStatusCode::Open]);
            assert_eq!(f.event_type_categories(), [EventTypeCategory::Issue]);
        }
    }

    #[tokio::test]
    async fn stops_after_five_pages() {
        let counter = Arc::new(Mutex::new(0usize));
        let c = counter.clone();
        let events = mock!(Client::describe_events).then_compute_output(move |_| {
            let mut page = c.lock().unwrap();
            *page += 1;
            DescribeEventsOutput::builder()
                .events(event(*page))
                .next_token(format!("page-{}", *page + 1))
                .build()
        });
        let details = mock!(Client::describe_event_details)
            .then_compute_output(|req| details_for(req.event_arns()));
        let client = mock_client!(aws_sdk_health, RuleMode::MatchAny, [&events, &details]);

        let records = SdkHealthApi::new(client)
            .open_issues(&filter())
            .await
            .expect("poll succeeds");

        assert_eq!(events.num_calls(), 5);
        assert_eq!(records.len(), 5);
    }

    #[tokio::test]
    async fn subscription_required_is_not_subscribed() {
        let events = mock!(Client::describe_events).then_error(|| {
            DescribeEventsError::generic(
                ErrorMetadata::builder()
                    .code("SubscriptionRequiredException")
                    .message(
                        "The AWS Premium Support Subscription is required to use this service.",
                    )
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_health, RuleMode::Sequential, [&events]);

        let err = SdkHealthApi::new(client)
            .open_issues(&filter())
            .await
            .expect_err("no subscription");

        assert_eq!(err, HealthApiError::NotSubscribed);
    }

    /// A CBOR text string (major type 3), enough to hand-encode an rpc-v2-cbor error body.
    fn cbor_text(out: &mut Vec<u8>, text: &str) {
        let n = text.len();
        if n < 24 {
            out.push(0x60 | n as u8);
        } else if n < 256 {
            out.extend([0x78, n as u8]);
        } else {
            out.push(0x79);
            out.extend((n as u16).to_be_bytes());
        }
        out.extend(text.as_bytes());
    }

    #[tokio::test]
    async fn subscription_required_on_the_wire_is_not_subscribed() {
        // The error as the service sends it: rpc-v2-cbor, `__type` with its namespace.
        let events = mock!(Client::describe_events).then_http_response(|| {
            let mut body = vec![0xa2];
            cbor_text(&mut body, "__type");
            cbor_text(
                &mut body,
                "com.amazonaws.health#SubscriptionRequiredException",
            );
            cbor_text(&mut body, "message");
            cbor_text(
                &mut body,
                "The AWS Premium Support Subscription is required to use this service.",
            );
            let status = 400u16.try_into().expect("valid status");
            let mut response = aws_sdk_health::config::http::HttpResponse::new(status, body.into());
            response
                .headers_mut()
                .insert("smithy-protocol", "rpc-v2-cbor");
            response
                .headers_mut()
                .insert("content-type", "application/cbor");
            response
        });
        let client = mock_client!(aws_sdk_health, RuleMode::Sequential, [&events]);

        let err = SdkHealthApi::new(client).open_issues(&filter()).await;

        assert_eq!(err, Err(HealthApiError::NotSubscribed));
    }

    #[tokio::test]
    async fn throttling_and_other_errors_are_classified() {
        let throttled = mock!(Client::describe_events).then_error(|| {
            DescribeEventsError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_health, RuleMode::Sequential, [&throttled], |b| b
            .retry_config(aws_sdk_health::config::retry::RetryConfig::disabled()));
        let err = SdkHealthApi::new(client).open_issues(&filter()).await;
        assert_eq!(err, Err(HealthApiError::Throttled));

        let denied = mock!(Client::describe_events).then_error(|| {
            DescribeEventsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform health:DescribeEvents")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_health, RuleMode::Sequential, [&denied]);
        let err = SdkHealthApi::new(client).open_issues(&filter()).await;
        match err {
            Err(HealthApiError::Other(m)) => assert!(m.contains("AccessDeniedException"), "{m}"),
            other => panic!("expected Other, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn fixture_round_trip_parses_as_eventbridge_health_event() {
        let records = SdkHealthApi::new(fixture_client())
            .open_issues(&filter())
            .await
            .expect("poll succeeds");
        assert_eq!(records.len(), 3);

        let ec2 = &records[0];
        assert_eq!(ec2.service, "EC2");
        assert_eq!(ec2.event_scope_code.as_deref(), Some("PUBLIC"));
        assert!(ec2.latest_description.contains("increased API error rates"));
        assert_eq!(
            ec2.start_time.map(|t| t.to_rfc3339()),
            Some("2025-11-30T08:59:00+00:00".to_string())
        );

        for record in &records {
            let shape = to_eventbridge_shape(record);
            assert_eq!(shape["detail"]["deliveredBy"], DELIVERED_BY);
            let parsed: HealthEvent =
                serde_json::from_value(shape.clone()).expect("ingest parses the shape");
            assert_eq!(parsed.source, "aws.health");
            assert_eq!(parsed.detail_type, "AWS Health Event");
            let d = &parsed.detail;
            assert_eq!(d.event_arn, record.event_arn);
            assert_eq!(d.service, record.service);
            assert_eq!(d.event_type_category, "issue");
            assert_eq!(d.status_code, "open");
            assert_eq!(d.event_region.as_deref(), Some(REGION));
            assert_eq!(d.communication_id, record.communication_id());
            assert_eq!(
                d.event_description[0].latest_description,
                record.latest_description
            );
        }
        assert_eq!(records[1].service, MULTIPLE_SERVICES);
        assert_eq!(
            to_eventbridge_shape(&records[0])["detail"]["startTime"],
            "Sun, 30 Nov 2025 08:59:00 GMT"
        );
    }

    #[tokio::test]
    async fn fixture_round_trip_failed_details_keep_empty_description() {
        let records = SdkHealthApi::new(fixture_client())
            .open_issues(&filter())
            .await
            .expect("a failedSet entry does not fail the poll");

        let s3 = records
            .iter()
            .find(|r| r.service == "S3")
            .expect("the event without details is still reported");
        assert_eq!(s3.latest_description, "");
        let parsed: HealthEvent =
            serde_json::from_value(to_eventbridge_shape(s3)).expect("ingest parses the shape");
        assert_eq!(parsed.detail.event_description[0].latest_description, "");
    }

    #[tokio::test]
    async fn details_call_failure_keeps_events() {
        let events = mock!(Client::describe_events).then_output(|| {
            DescribeEventsOutput::builder()
                .events(event(1))
                .events(event(2))
                .build()
        });
        let details = mock!(Client::describe_event_details).then_error(|| {
            DescribeEventDetailsError::generic(
                ErrorMetadata::builder()
                    .code("InternalFailure")
                    .message("internal error")
                    .build(),
            )
        });
        let client = mock_client!(
            aws_sdk_health,
            RuleMode::MatchAny,
            [&events, &details],
            |b| b.retry_config(aws_sdk_health::config::retry::RetryConfig::disabled())
        );

        let records = SdkHealthApi::new(client)
            .open_issues(&filter())
            .await
            .expect("details are best effort");
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.latest_description.is_empty()));
    }

    #[test]
    fn communication_id_is_stable_per_update() {
        let mut record = HealthEventRecord {
            event_arn: arn(1),
            service: "EC2".into(),
            event_type_code: "AWS_EC2_OPERATIONAL_ISSUE".into(),
            event_type_category: "issue".into(),
            status_code: "open".into(),
            region: REGION.into(),
            start_time: DateTime::from_timestamp(1_764_493_140, 0),
            last_updated_time: DateTime::from_timestamp(1_764_496_740, 0),
            event_scope_code: None,
            latest_description: String::new(),
        };
        let first = record.communication_id();
        assert_eq!(first, record.clone().communication_id());
        assert!(first.starts_with("poll-") && first.len() == 45);

        record.latest_description = "text changes alone do not matter".into();
        assert_eq!(record.communication_id(), first);

        record.last_updated_time = DateTime::from_timestamp(1_764_497_000, 0);
        assert_ne!(record.communication_id(), first);

        // No times known: still renders, without invented times.
        record.start_time = None;
        record.last_updated_time = None;
        let shape = to_eventbridge_shape(&record);
        assert!(shape.get("time").is_none());
        assert!(shape["detail"].get("startTime").is_none());
        assert!(serde_json::from_value::<HealthEvent>(shape).is_ok());
    }
}
