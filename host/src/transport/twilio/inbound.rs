//! Twilio's events as session input: caller audio from `media`, playback progress from `mark`
//! echoes, the end of the call from `stop`. Everything else is skipped.

use super::marks::PlaybackMarks;
use super::messages::{self, ParseOutcome, TwilioEvent};
use crate::session::Inbound;
use crate::transport::protocol::{ClientMessage, MAX_AUDIO_FRAME_BYTES};
use base64::Engine;
use std::sync::Mutex;

/// What one text frame from Twilio means for the session, if anything.
pub fn inbound(text: &str, marks: &Mutex<PlaybackMarks>) -> Option<Inbound> {
    match messages::parse(text) {
        ParseOutcome::Event(TwilioEvent::Media { media }) => {
            if media.track.as_deref().is_some_and(|t| t != "inbound") {
                return None;
            }
            match base64::engine::general_purpose::STANDARD.decode(media.payload.as_bytes()) {
                Ok(bytes) if bytes.len() <= MAX_AUDIO_FRAME_BYTES => {
                    Some(Inbound::Audio(bytes.into()))
                }
                Ok(_) => {
                    tracing::debug!("twilio media payload too large; skipped");
                    None
                }
                Err(_) => {
                    tracing::debug!("twilio media payload is not base64; skipped");
                    None
                }
            }
        }
        ParseOutcome::Event(TwilioEvent::Mark { mark }) => {
            let marks = marks.lock().unwrap_or_else(|p| p.into_inner());
            marks.on_echo(&mark.name).map(|(turn, played_ms)| {
                Inbound::Message(ClientMessage::Playback { played_ms, turn })
            })
        }
        ParseOutcome::Event(TwilioEvent::Stop {}) => Some(Inbound::Message(ClientMessage::Stop {})),
        ParseOutcome::Event(_) | ParseOutcome::Ignored(_) => None,
        ParseOutcome::Invalid(why) => {
            tracing::debug!(%why, "twilio frame skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_marks_and_stop_reach_the_session() {
        let marks = Mutex::new(PlaybackMarks::new(8000));
        let media = r#"{"event":"media","sequenceNumber":"2","streamSid":"MZ1",
            "media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"/38A"}}"#;
        match inbound(media, &marks) {
            Some(Inbound::Audio(b)) => assert_eq!(&b[..], &[0xff, 0x7f, 0x00]),
            other => panic!("media not passed on: {other:?}"),
        }
        let name = marks.lock().unwrap().on_audio(1600).unwrap();
        let echo = format!(r#"{{"event":"mark","streamSid":"MZ1","mark":{{"name":"{name}"}}}}"#);
        match inbound(&echo, &marks) {
            Some(Inbound::Message(ClientMessage::Playback { played_ms, .. })) => {
                assert_eq!(played_ms, 200)
            }
            other => panic!("mark not turned into playback: {other:?}"),
        }
        assert!(matches!(
            inbound(r#"{"event":"stop","streamSid":"MZ1","stop":{}}"#, &marks),
            Some(Inbound::Message(ClientMessage::Stop {}))
        ));
    }

    #[test]
    fn bad_frames_are_skipped() {
        let marks = Mutex::new(PlaybackMarks::new(8000));
        for f in [
            "garbage",
            r#"{"event":"media","media":{"payload":"!!not base64!!"}}"#,
            r#"{"event":"media","media":{"track":"outbound","payload":"AAAA"}}"#,
            r#"{"event":"mark","mark":{"name":"someone-elses"}}"#,
            r#"{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}"#,
        ] {
            assert!(inbound(f, &marks).is_none(), "{f}");
        }
    }
}
