//! {{name}}: a prompt shaper for voice-host (slot `prompt`, world `prompt-shaper`).
//!
//! `shape` is called once per final user turn and says what the LLM is asked (or answers
//! directly, without the LLM). This stub passes the conversation through as the host's built-in
//! behaviour does: the system prompt (when there is one), the history, then the user's turn.

// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "prompt-shaper",
    path: "wit",
});

#[allow(unused_imports)]
use voice::policy::log::{log, Level};
use voice::policy::types::Role;

struct Plugin;

impl Guest for Plugin {
    /// Called once per session instance with `[plugins.prompt] config` from the host's
    /// configuration. Return `Err("reason")` to refuse it; this stub accepts anything.
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    /// The request for the LLM, or `PromptOutput::Direct("text".into())` to speak without it.
    fn shape(input: PromptInput) -> PromptOutput {
        let mut messages = Vec::with_capacity(input.history.len() + 2);
        if !input.system_prompt.is_empty() {
            messages.push(ChatMessage {
                role: Role::System,
                content: input.system_prompt,
            });
        }
        messages.extend(input.history);
        messages.push(ChatMessage {
            role: Role::User,
            content: input.user_turn,
        });
        PromptOutput::Llm(LlmRequest {
            messages,
            // `None` keeps the host's settings (LLM_TEMPERATURE, LLM_MAX_TOKENS).
            settings: GenerationSettings {
                temperature: None,
                max_tokens: None,
            },
        })
    }
}

export!(Plugin);
