//! Lambda `data-sources-check`: wires the runtime, then hands every event to
//! [`lifeboat_core::steps::data_sources_check`] through its own
//! [`lifeboat_core::dispatch::entry`] only, so the binary links this step alone.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat_core::lambda::run(lifeboat_core::dispatch::entry::DATA_SOURCES_CHECK).await
}
