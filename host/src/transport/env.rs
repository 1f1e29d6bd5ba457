//! What a session's transport receives from the server at the upgrade: the session's
//! dependencies and the server's drain signals. With the [`crate::admission::Admitted`] value
//! this is all a transport sees, so it never reaches back into the server's state.

use crate::session::SessionDeps;
use std::sync::Arc;
use tokio::sync::watch;

/// The server-side context of one session.
pub struct SessionEnv {
    pub deps: Arc<SessionDeps>,
    /// Becomes true when the server starts draining.
    pub drain: watch::Receiver<bool>,
    /// Becomes true when the drain timeout passed: close now.
    pub force: watch::Receiver<bool>,
}
