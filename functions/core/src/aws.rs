//! AWS clients, built once per Lambda container (or once per local host).
//!
//! Endpoints follow the SDK's own configuration (`AWS_ENDPOINT_URL`, ...), which is how the
//! local environment points every client at moto. S3 then needs path-style addressing.

use aws_config::BehaviorVersion;

/// The AWS SDK clients the steps use, each built on first use ([`Lazy`]).
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub s3: Lazy<aws_sdk_s3::Client>,
    pub sfn: Lazy<aws_sdk_sfn::Client>,
    pub sns: Lazy<aws_sdk_sns::Client>,
    pub route53: Lazy<aws_sdk_route53::Client>,
    pub ssm: Lazy<aws_sdk_ssm::Client>,
    pub secrets: Lazy<aws_sdk_secretsmanager::Client>,
    /// The default event bus: Lifeboat's lifecycle events.
    pub events: Lazy<aws_sdk_eventbridge::Client>,
    /// The shared configuration, for clients whose endpoint is per call (ARC's cluster).
    sdk: aws_config::SdkConfig,
}

/// An SDK client built from the shared configuration the first time it is used.
///
/// Why: building every client eagerly references every SDK's configuration, endpoint resolver
/// and runtime plugins, so each Lambda binary linked all seven SDKs. Built on first `Deref`,
/// a binary links only the clients its step's code can reach (LTO drops the rest).
pub struct Lazy<C> {
    config: aws_config::SdkConfig,
    client: std::sync::OnceLock<C>,
}

impl<C> Lazy<C> {
    fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            config: config.clone(),
            client: std::sync::OnceLock::new(),
        }
    }
}

impl<C: Clone> Clone for Lazy<C> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            client: self.client.clone(),
        }
    }
}

impl<C> std::fmt::Debug for Lazy<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("built", &self.client.get().is_some())
            .finish_non_exhaustive()
    }
}

impl<C: FromSdkConfig> std::ops::Deref for Lazy<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.client.get_or_init(|| C::from_sdk_config(&self.config))
    }
}

/// How a client is built from the shared configuration.
pub trait FromSdkConfig {
    /// Builds the client.
    fn from_sdk_config(config: &aws_config::SdkConfig) -> Self;
}

macro_rules! plain_clients {
    ($($sdk:ident),*) => {$(
        impl FromSdkConfig for $sdk::Client {
            fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
                $sdk::Client::new(config)
            }
        }
    )*};
}
plain_clients!(
    aws_sdk_sfn,
    aws_sdk_sns,
    aws_sdk_route53,
    aws_sdk_ssm,
    aws_sdk_secretsmanager,
    aws_sdk_eventbridge
);

impl FromSdkConfig for aws_sdk_s3::Client {
    /// With an endpoint override (moto) S3 needs path-style addressing.
    fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        let path_style = config.endpoint_url().is_some();
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(config)
                .force_path_style(path_style)
                .build(),
        )
    }
}

/// The SDK's configuration loader (credentials chain, region, endpoint overrides) with
/// [`https_client`] as its HTTP client. Every AWS configuration in Lifeboat starts here.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client())
}

/// The SDK's default HTTPS client, with rustls on `ring` instead of `aws-lc`.
///
/// Why: aws-lc's C library was the largest part every function binary shared (issue 11), and
/// reqwest can use the same provider ([`crate::http`]). Everything else is as the SDK's own
/// default client does it: the client's timeouts, its sleep, proxies from the environment.
/// What is given up: aws-lc's post-quantum key exchange preference.
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

impl AwsClients {
    /// Loads configuration from the environment (credentials chain, region, endpoint
    /// overrides).
    pub async fn from_env() -> Self {
        let config = config_loader().load().await;
        Self::from_config(&config)
    }

    /// Builds clients for an explicit endpoint (the local environment's moto).
    pub async fn for_endpoint(endpoint: &str, region: &str) -> Self {
        let config = config_loader()
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
        Self {
            s3: Lazy::new(config),
            sfn: Lazy::new(config),
            sns: Lazy::new(config),
            route53: Lazy::new(config),
            ssm: Lazy::new(config),
            secrets: Lazy::new(config),
            events: Lazy::new(config),
            sdk: config.clone(),
        }
    }

    /// An EventBridge client for another region (the primary's, where the forwarder of
    /// AWS Health events runs), with the shared configuration otherwise (endpoint included:
    /// locally every region is the same moto).
    pub fn events_in(&self, region: &str) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(&self.sdk)
                .region(aws_config::Region::new(region.to_string()))
                .build(),
        )
    }

    /// An ARC cluster data-plane client for one of the cluster's regional endpoints (each is
    /// signed for its own region). One attempt and short timeouts: the caller moves on to the
    /// next endpoint rather than wait on one in a failing region (ARC's guidance).
    pub fn recovery_cluster(
        &self,
        endpoint: &str,
        region: &str,
    ) -> aws_sdk_route53recoverycluster::Client {
        use std::time::Duration;
        aws_sdk_route53recoverycluster::Client::from_conf(
            aws_sdk_route53recoverycluster::config::Builder::from(&self.sdk)
                .endpoint_url(endpoint)
                .region(aws_config::Region::new(region.to_string()))
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(2))
                        .operation_attempt_timeout(Duration::from_secs(5))
                        .build(),
                )
                .build(),
        )
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
