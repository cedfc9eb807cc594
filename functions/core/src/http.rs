//! Lifeboat's HTTP clients (Databricks, webhooks, status pages): reqwest with rustls on `ring`.
//!
//! reqwest is built with `rustls-no-provider`, so a client built before a crypto provider is
//! installed would panic. [`client_builder`] installs `ring` as the process default first; every
//! reqwest client in Lifeboat starts here. Why `ring`: see [`crate::aws::https_client`].

/// Installs rustls' `ring` provider as the process default, once; a provider already installed
/// (by an earlier call, or by the embedding program) is kept.
pub fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Err means a provider is already installed: that one stays, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder, with the crypto provider installed.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// A reqwest client with default settings (tests, local tools).
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_with_no_provider_but_ring_compiled_in() {
        // reqwest's `rustls-no-provider` panics here unless a provider was installed first.
        assert!(super::client_builder().build().is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
