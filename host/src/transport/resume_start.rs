//! The resume part of an `/agent` handshake: a `start` carrying `"resume"` claims the dropped
//! session's snapshot and goes on as that session; a refused claim leaves a new session and the
//! code saying why (see `crate::resume`).

use super::protocol::ResumeRequest;
use crate::admission::Admitted;
use crate::resume::ResumeError;
use crate::session::{SessionDeps, StartParams};

/// Applies `request` to `start`: on success `start` becomes the resumed session (its id, agent
/// profile and snapshot); otherwise `start` stays a new session and the error says why.
pub async fn apply(
    deps: &SessionDeps,
    admitted: &Admitted,
    start: &mut StartParams,
    request: &ResumeRequest,
) -> Result<(), ResumeError> {
    let Some(resume) = start.resume.as_mut() else {
        // RESUME_TTL_S=0: resume is off on this host.
        return Err(ResumeError::Unavailable);
    };
    let id = &request.session_id;
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ResumeError::Expired);
    }
    let snapshot = deps.resume.claim(id, &request.token, &resume.token).await?;
    // The token in use now may be narrower than the one that began the conversation.
    let agent = admitted
        .agent(snapshot.agent.as_deref())
        .map_err(|_| ResumeError::BadToken)?;
    let profile = deps
        .config
        .agent_profile(agent)
        .ok_or(ResumeError::Expired)?
        .clone();
    start.session_id = id.clone();
    start.agent = profile;
    resume.agent = agent.map(str::to_string);
    resume.restored = Some(snapshot);
    Ok(())
}
