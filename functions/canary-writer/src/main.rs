//! Lambda `canary-writer`: wires the runtime, then hands every event to
//! [`lifeboat_core::steps::canary_writer`] through [`lifeboat_core::steps::invoke`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat_core::lambda::run(lifeboat_core::steps::Step::CanaryWriter).await
}
