//! What `voice-host talk` prints for the server's events: the user's final transcripts, the
//! agent's streamed text, per-turn latency, errors. Interim transcripts and VAD events are only
//! in `--json` output.

use serde_json::Value;
use std::io::Write;

/// Tallies of the conversation, for the summary and the exit status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Replies to user turns (turn >= 1) that finished, interrupted or not.
    pub replies: u32,
    pub interrupted: u32,
    pub errors: u32,
}

/// Prints server events as readable lines (or JSON lines).
pub struct Reporter<'a> {
    out: &'a mut dyn Write,
    json: bool,
    /// An `agent:` line is being streamed and has not ended yet.
    agent_line: Option<u64>,
    pub tally: Tally,
}

fn ms(v: &Value) -> Option<String> {
    let n = v.as_f64()?;
    Some(if n.fract() == 0.0 {
        format!("{n:.0} ms")
    } else {
        format!("{n:.2} ms")
    })
}

impl<'a> Reporter<'a> {
    pub fn new(out: &'a mut dyn Write, json: bool) -> Self {
        Self {
            out,
            json,
            agent_line: None,
            tally: Tally::default(),
        }
    }

    fn end_agent_line(&mut self) {
        if self.agent_line.take().is_some() {
            let _ = writeln!(self.out);
        }
    }

    /// Print a line of the client's own (not from the server).
    pub fn say(&mut self, text: &str) {
        if self.json {
            return;
        }
        self.end_agent_line();
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// Report one JSON event from the server.
    pub fn event(&mut self, m: &Value) {
        let turn = m["turn"].as_u64();
        match m["type"].as_str().unwrap_or("") {
            "agent_done" if turn.is_some_and(|t| t >= 1) => {
                self.tally.replies += 1;
                if m["interrupted"] == true {
                    self.tally.interrupted += 1;
                }
            }
            "error" => self.tally.errors += 1,
            _ => {}
        }
        if self.json {
            let _ = writeln!(self.out, "{m}");
            let _ = self.out.flush();
            return;
        }
        match m["type"].as_str().unwrap_or("") {
            "transcript" if m["final"] == true => {
                self.say(&format!("you:   {}", m["text"].as_str().unwrap_or("")));
            }
            "agent_text" => {
                if self.agent_line != turn {
                    self.end_agent_line();
                    let _ = write!(self.out, "agent: ");
                    self.agent_line = turn;
                }
                let _ = write!(self.out, "{}", m["delta"].as_str().unwrap_or(""));
                let _ = self.out.flush();
            }
            "agent_done" => {
                self.end_agent_line();
                if m["interrupted"] == true {
                    let heard = m["text"].as_str().unwrap_or("");
                    self.say(&format!("       [interrupted; the user heard: {heard:?}]"));
                }
            }
            "turn_metrics" => {
                let parts: Vec<String> = [
                    ("transcript", "transcript_final_ms"),
                    ("plug-ins", "plugins_ms"),
                    ("LLM first token", "llm_first_token_ms"),
                    ("first sentence", "first_sentence_ms"),
                    ("TTS first audio", "tts_first_audio_ms"),
                    ("first audio sent", "first_audio_sent_ms"),
                    ("host", "host_processing_ms"),
                ]
                .iter()
                .filter_map(|(label, key)| ms(&m[*key]).map(|v| format!("{label} {v}")))
                .collect();
                self.say(&format!(
                    "       turn {} latency: {}",
                    turn.unwrap_or(0),
                    parts.join(", ")
                ));
            }
            "error" => {
                let fatal = if m["fatal"] == true { " (fatal)" } else { "" };
                self.say(&format!(
                    "error: {} [{}]{fatal}",
                    m["message"].as_str().unwrap_or(""),
                    m["code"].as_str().unwrap_or("")
                ));
            }
            "shutdown" => self.say("the server is shutting down"),
            _ => {}
        }
    }

    /// End any open line (before the summary).
    pub fn finish(&mut self) {
        self.end_agent_line();
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn printed(events: &[Value]) -> (String, Tally) {
        let mut buf = Vec::new();
        let mut r = Reporter::new(&mut buf, false);
        for e in events {
            r.event(e);
        }
        r.finish();
        let tally = r.tally.clone();
        (String::from_utf8(buf).unwrap(), tally)
    }

    #[test]
    fn prints_a_turn_readably() {
        let (text, tally) = printed(&[
            json!({"type":"transcript","turn":1,"text":"what is the","final":false}),
            json!({"type":"transcript","turn":1,"text":"what is the weather","final":true}),
            json!({"type":"agent_text","turn":1,"delta":"It is "}),
            json!({"type":"agent_text","turn":1,"delta":"sunny."}),
            json!({"type":"agent_done","turn":1,"text":"It is sunny.","interrupted":false}),
            json!({"type":"turn_metrics","turn":1,"transcript_final_ms":120,"plugins_ms":null,
                   "llm_first_token_ms":310,"host_processing_ms":0.42}),
        ]);
        assert_eq!(
            text,
            "you:   what is the weather\nagent: It is sunny.\n       turn 1 latency: \
             transcript 120 ms, LLM first token 310 ms, host 0.42 ms\n"
        );
        assert_eq!(
            tally,
            Tally {
                replies: 1,
                interrupted: 0,
                errors: 0
            }
        );
    }

    #[test]
    fn a_barge_in_ends_the_agent_line() {
        let (text, tally) = printed(&[
            json!({"type":"agent_text","turn":1,"delta":"Let me tell you"}),
            json!({"type":"transcript","turn":2,"text":"stop","final":true}),
            json!({"type":"agent_done","turn":1,"text":"Let me","interrupted":true}),
            json!({"type":"error","code":"provider_unavailable","message":"TTS is down","fatal":false}),
        ]);
        assert_eq!(
            text,
            "agent: Let me tell you\nyou:   stop\n       [interrupted; the user heard: \"Let me\"]\n\
             error: TTS is down [provider_unavailable]\n"
        );
        assert_eq!(
            tally,
            Tally {
                replies: 1,
                interrupted: 1,
                errors: 1
            }
        );
    }

    #[test]
    fn greeting_is_not_counted_as_a_reply() {
        let (_, tally) =
            printed(&[json!({"type":"agent_done","turn":0,"text":"Hi","interrupted":false})]);
        assert_eq!(tally.replies, 0);
    }
}
