//! Lambda `readiness-check`: wires the runtime, then hands every event to
//! [`lifeboat_core::steps::readiness_check`] through its own
//! [`lifeboat_core::steps::entry`] only, so the binary links this step alone.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat_core::lambda::run(lifeboat_core::steps::entry::READINESS_CHECK).await
}
