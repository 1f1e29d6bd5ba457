//! Reference prompt shaper: puts a persona and the detected intent into the system message, and
//! answers some intents directly without the LLM.
//!
//! - intent `repeat`: speaks the agent's last reply again (direct reply).
//! - intent `goodbye`: speaks a protected goodbye (direct reply, `<protect>` marked, so a
//!   barge-in cannot cut it).
//! - anything else: system message = persona + host system prompt + intent hint, then the
//!   history and the user's turn.
//!
//! Configuration keys: `persona`, `goodbye` (text of the goodbye), `temperature`, `max_tokens`,
//! `protect_hint` (`true` asks the LLM to mark must-hear sentences with `<protect>`).
// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "prompt-shaper",
    path: "../../wit",
});

use std::cell::RefCell;

use voice::policy::types::Role;

struct Persona {
    persona: String,
    goodbye: String,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    protect_hint: bool,
}

impl Default for Persona {
    fn default() -> Self {
        Self {
            persona: "You are a friendly voice assistant. Answer in one or two short spoken \
                      sentences, without lists or markdown."
                .into(),
            goodbye: "Goodbye, and thanks for calling.".into(),
            temperature: None,
            max_tokens: None,
            protect_hint: false,
        }
    }
}

thread_local! {
    static PERSONA: RefCell<Persona> = RefCell::new(Persona::default());
}

/// Below this confidence an intent is not trusted for a direct reply.
const DIRECT_REPLY_CONFIDENCE: f32 = 0.5;

const PROTECT_HINT: &str = "If a sentence must be heard in full (a number, a confirmation, a \
                            warning), wrap it in <protect>...</protect>.";

fn describe(intent: &Intent) -> String {
    let mut text = format!("The caller's intent appears to be \"{}\"", intent.name);
    if !intent.slots.is_empty() {
        let slots: Vec<String> = intent
            .slots
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        text.push_str(&format!(" ({})", slots.join(", ")));
    }
    text.push('.');
    text
}

fn strip_protect(text: &str) -> String {
    text.replace("<protect>", "").replace("</protect>", "")
}

struct PersonaShaper;

impl Guest for PersonaShaper {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut p = Persona::default();
        for (key, value) in config {
            match key.as_str() {
                "persona" => p.persona = value,
                "goodbye" => p.goodbye = value,
                "temperature" => {
                    let t: f32 = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("temperature: expected a number, got {value:?}"))?;
                    if !(0.0..=2.0).contains(&t) {
                        return Err(format!("temperature: {t} is outside 0..2"));
                    }
                    p.temperature = Some(t);
                }
                "max_tokens" => {
                    p.max_tokens = Some(value.trim().parse().map_err(|_| {
                        format!("max_tokens: expected a whole number, got {value:?}")
                    })?)
                }
                "protect_hint" => p.protect_hint = matches!(value.trim(), "true" | "1" | "yes"),
                _ => {}
            }
        }
        PERSONA.with(|cell| *cell.borrow_mut() = p);
        Ok(())
    }

    fn shape(input: PromptInput) -> PromptOutput {
        PERSONA.with(|cell| {
            let p = cell.borrow();
            let confident = input
                .intent
                .as_ref()
                .filter(|i| i.confidence >= DIRECT_REPLY_CONFIDENCE);
            match confident.map(|i| i.name.as_str()) {
                Some("repeat") => {
                    let last = input
                        .history
                        .iter()
                        .rev()
                        .find(|m| m.role == Role::Assistant)
                        .map(|m| strip_protect(&m.content));
                    return PromptOutput::Direct(match last {
                        Some(text) => text,
                        None => "I haven't said anything yet. What can I do for you?".into(),
                    });
                }
                Some("goodbye") => {
                    return PromptOutput::Direct(format!("<protect>{}</protect>", p.goodbye));
                }
                _ => {}
            }
            let mut system = p.persona.clone();
            if !input.system_prompt.is_empty() {
                system.push_str("\n\n");
                system.push_str(&input.system_prompt);
            }
            if let Some(intent) = &input.intent {
                system.push_str("\n\n");
                system.push_str(&describe(intent));
            }
            if p.protect_hint {
                system.push_str("\n\n");
                system.push_str(PROTECT_HINT);
            }
            let mut messages = Vec::with_capacity(input.history.len() + 2);
            messages.push(ChatMessage {
                role: Role::System,
                content: system,
            });
            messages.extend(input.history);
            messages.push(ChatMessage {
                role: Role::User,
                content: input.user_turn,
            });
            PromptOutput::Llm(LlmRequest {
                messages,
                settings: GenerationSettings {
                    temperature: p.temperature,
                    max_tokens: p.max_tokens,
                },
            })
        })
    }
}

export!(PersonaShaper);
