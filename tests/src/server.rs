//! Runs an axum router on 127.0.0.1 until its handle is dropped.

use axum::serve::ListenerExt;
use axum::Router;
use std::net::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running local server. Dropping it stops the listener and tells open connections to end.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A signal long-lived handlers (WebSockets, streams) watch to end when the server stops.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once the server is stopping.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

impl ServerHandle {
    /// Binds 127.0.0.1:`port` (0 = any free port) and serves `routes` with the state `state`
    /// builds from the shutdown signal (so handlers can stop with the server); the caller gets
    /// a clone of the state (a fake's log and faults).
    pub async fn start<S: Clone + Send + Sync + 'static>(
        port: u16,
        state: impl FnOnce(Shutdown) -> S,
        routes: Router<S>,
    ) -> std::io::Result<(Self, S)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let state = state(Shutdown(stopped.clone()));
        let router = routes.with_state(state.clone());
        let mut signal = Shutdown(stopped);
        // Like the real services, small writes (a token, an audio message) go out at once.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { signal.wait().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "fake server stopped with an error");
            }
        });
        Ok((Self { addr, stop, task }, state))
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}
