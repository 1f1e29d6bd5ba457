//! The connection's watch over its session task: a panic is contained and reported, and a
//! session still winding down a moment after its client left is stopped.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a session may take to wind down once its client's side is over.
const WIND_DOWN: Duration = Duration::from_secs(2);

/// Waits for the session task to end. Once `client_gone` resolves (the client left or broke a
/// limit) the session has [`WIND_DOWN`] to end, then it is stopped. A session that panicked is
/// counted and `on_panic` tells the client.
pub(crate) async fn supervise(
    mut session: JoinHandle<()>,
    client_gone: impl Future,
    on_panic: impl FnOnce(),
) {
    let result = tokio::select! {
        // A session that panics as its client leaves is still reported.
        biased;
        result = &mut session => result,
        _ = client_gone => match tokio::time::timeout(WIND_DOWN, &mut session).await {
            Ok(result) => result,
            Err(_) => {
                session.abort();
                return;
            }
        },
    };
    if result.is_err_and(|e| e.is_panic()) {
        crate::metrics::global().session_panics.inc();
        tracing::error!("session task panicked");
        on_panic();
    }
}
