//! AWS clients, built once per Lambda container (or once per local host).
//!
//! Endpoints follow the SDK's own configuration (`AWS_ENDPOINT_URL`, ...), which is how the
//! local environment points every client at moto. S3 then needs path-style addressing.

use aws_config::BehaviorVersion;

/// The AWS SDK clients the steps use.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub sns: aws_sdk_sns::Client,
    pub route53: aws_sdk_route53::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The default event bus: Lifeboat's lifecycle events.
    pub events: aws_sdk_eventbridge::Client,
}

impl AwsClients {
    /// Loads configuration from the environment (credentials chain, region, endpoint
    /// overrides). With an endpoint override S3 uses path-style addressing.
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_config(&config)
    }

    /// Builds clients for an explicit endpoint (the local environment's moto).
    pub async fn for_endpoint(endpoint: &str, region: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "local",
            ))
            .load()
            .await;
        Self::from_config(&config)
    }

    fn from_config(config: &aws_config::SdkConfig) -> Self {
        let path_style = config.endpoint_url().is_some();
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sfn: aws_sdk_sfn::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            route53: aws_sdk_route53::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
        }
    }
}

/// A short, secret-free description of an SDK error (service code and message).
pub fn sdk_error_message<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            format!(
                "{}: {}",
                inner.code().unwrap_or("ServiceError"),
                inner.message().unwrap_or("")
            )
        }
        SdkError::TimeoutError(_) => "timeout".to_string(),
        SdkError::DispatchFailure(_) => "dispatch failure (endpoint unreachable)".to_string(),
        other => other.to_string(),
    }
}
