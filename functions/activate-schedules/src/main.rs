//! Lambda `activate-schedules`: wires the runtime, then hands every event to
//! [`lifeboat_core::steps::activate_schedules`] through its own
//! [`lifeboat_core::dispatch::entry`] only, so the binary links this step alone.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat_core::lambda::run(lifeboat_core::dispatch::entry::ACTIVATE_SCHEDULES).await
}
