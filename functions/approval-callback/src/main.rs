//! Lambda `approval-callback`: wires the runtime, then hands every event to
//! [`lifeboat_core::steps::approval_callback`] through [`lifeboat_core::steps::invoke`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat_core::lambda::run(lifeboat_core::steps::Step::ApprovalCallback).await
}
