//! The four worlds behind one trait, so instantiation, limits and fault handling are written
//! once; plus the conversions between the session's records and the WIT records.

use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::Store;

use super::bindings::{barge_in, intent, prompt, turn, types, HostState};
use super::settings::Slot;
use crate::behaviour::{
    BargeInDecision, BargeInEvent, ChatMessage, GenerationSettings, Intent, IntentInput,
    PromptInput, PromptOutput, Role, TurnDecision, TurnEvent, TurnTrigger,
};

/// What the runtime needs of a world's generated bindings.
pub(crate) trait World: Sized + Send + 'static {
    /// Pre-instantiated component with its exports already type-checked.
    type Pre: Clone + Send + Sync + 'static;
    /// The slot this world serves.
    const SLOT: Slot;

    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()>;
    /// Fails when the component's exports do not match the world.
    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;
    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self>;
    // `&Vec` because the generated bindings take the WIT `list` that way.
    #[allow(clippy::ptr_arg)]
    fn init(
        &self,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>>;
    /// One representative call, made before a new version is used.
    fn self_check(&self, store: &mut Store<HostState>) -> wasmtime::Result<()>;
}

/// Implements [`World`] for a world's generated bindings: everything but the self-check is
/// the same call on each. `|this, store| { .. }` is the self-check's body.
macro_rules! world {
    ($world:ty, $pre:ty, $slot:expr, |$this:ident, $store:ident| $check:block) => {
        impl World for $world {
            type Pre = $pre;
            const SLOT: Slot = $slot;

            fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
                <$world>::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
            }
            fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
                <$pre>::new(pre)
            }
            fn instantiate(
                pre: &Self::Pre,
                store: &mut Store<HostState>,
            ) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }
            fn init(
                &self,
                store: &mut Store<HostState>,
                config: &Vec<(String, String)>,
            ) -> wasmtime::Result<Result<(), String>> {
                self.call_init(store, config)
            }
            fn self_check(&self, $store: &mut Store<HostState>) -> wasmtime::Result<()> {
                let $this = self;
                $check
            }
        }
    };
}

world!(
    intent::IntentAnalyzer,
    intent::IntentAnalyzerPre<HostState>,
    Slot::Intent,
    |this, store| {
        let input = IntentInput {
            transcript: "hello, can you repeat that".into(),
            turn: 1,
            history: vec![ChatMessage::new(Role::Assistant, "Hi, how can I help?")],
        };
        this.call_analyze(store, &intent_input(&input)).map(drop)
    }
);

world!(
    prompt::PromptShaper,
    prompt::PromptShaperPre<HostState>,
    Slot::Prompt,
    |this, store| {
        let input = PromptInput {
            system_prompt: "You are a helpful voice agent.".into(),
            history: vec![ChatMessage::new(Role::Assistant, "Hi, how can I help?")],
            user_turn: "hello".into(),
            turn: 1,
            intent: None,
        };
        let out = this.call_shape(store, &prompt_input(&input))?;
        match prompt_output(out) {
            Some(_) => Ok(()),
            None => Err(wasmtime::format_err!(
                "shape returned an LLM request without messages"
            )),
        }
    }
);

world!(
    barge_in::BargeInPolicy,
    barge_in::BargeInPolicyPre<HostState>,
    Slot::BargeIn,
    |this, store| {
        let event = BargeInEvent {
            interim_text: "hello there".into(),
            word_count: 2,
            user_speech_ms: 400,
            agent_spoken_ms: 1200,
            spoken_text: "Sure, the weather in Paris".into(),
            remaining_text: "is sunny today.".into(),
            protected_playing: false,
            turn: 1,
        };
        this.call_decide(store, &barge_in_event(&event)).map(drop)
    }
);

world!(
    turn::EndOfTurnPolicy,
    turn::EndOfTurnPolicyPre<HostState>,
    Slot::Turn,
    |this, store| {
        let event = TurnEvent {
            trigger: TurnTrigger::Pause,
            silence_ms: 200,
            speech_ms: 1400,
            text: "what's the weather in paris".into(),
            word_count: 5,
            text_final: false,
            model_probability: Some(0.9),
            words_probability: Some(0.4),
            agent_last_sentence: "How can I help?".into(),
            turn: 1,
        };
        store.data_mut().words_probability = event.words_probability;
        this.call_decide(store, &turn_event(&event)).map(drop)
    }
);

fn role(role: Role) -> types::Role {
    match role {
        Role::System => types::Role::System,
        Role::User => types::Role::User,
        Role::Assistant => types::Role::Assistant,
    }
}

fn role_back(role: types::Role) -> Role {
    match role {
        types::Role::System => Role::System,
        types::Role::User => Role::User,
        types::Role::Assistant => Role::Assistant,
    }
}

fn messages(history: &[ChatMessage]) -> Vec<types::ChatMessage> {
    history
        .iter()
        .map(|m| types::ChatMessage {
            role: role(m.role),
            content: m.content.clone(),
        })
        .collect()
}

fn wit_intent(intent: &Intent) -> types::Intent {
    types::Intent {
        name: intent.name.clone(),
        confidence: intent.confidence,
        slots: intent.slots.clone(),
    }
}

/// The session's intent input as the WIT record.
pub(crate) fn intent_input(input: &IntentInput) -> intent::IntentInput {
    intent::IntentInput {
        transcript: input.transcript.clone(),
        turn: input.turn,
        history: messages(&input.history),
    }
}

/// A plug-in's intent, with the confidence clamped to 0..=1 (NaN becomes 0).
pub(crate) fn intent_back(intent: types::Intent) -> Intent {
    let confidence = if intent.confidence.is_nan() {
        0.0
    } else {
        intent.confidence.clamp(0.0, 1.0)
    };
    Intent {
        name: intent.name,
        confidence,
        slots: intent.slots,
    }
}

/// The session's prompt input as the WIT record.
pub(crate) fn prompt_input(input: &PromptInput) -> prompt::PromptInput {
    prompt::PromptInput {
        system_prompt: input.system_prompt.clone(),
        history: messages(&input.history),
        user_turn: input.user_turn.clone(),
        turn: input.turn,
        intent: input.intent.as_ref().map(wit_intent),
    }
}

/// A plug-in's prompt output; `None` when it cannot be sent (an LLM request without messages).
pub(crate) fn prompt_output(out: prompt::PromptOutput) -> Option<PromptOutput> {
    match out {
        prompt::PromptOutput::Direct(text) => Some(PromptOutput::Direct { text }),
        prompt::PromptOutput::Llm(request) if request.messages.is_empty() => None,
        prompt::PromptOutput::Llm(request) => Some(PromptOutput::Llm {
            messages: request
                .messages
                .into_iter()
                .map(|m| ChatMessage {
                    role: role_back(m.role),
                    content: m.content,
                })
                .collect(),
            settings: GenerationSettings {
                temperature: request.settings.temperature.filter(|t| t.is_finite()),
                max_tokens: request.settings.max_tokens,
            },
        }),
    }
}

/// The session's barge-in event as the WIT record.
pub(crate) fn barge_in_event(ev: &BargeInEvent) -> barge_in::BargeInEvent {
    barge_in::BargeInEvent {
        interim_text: ev.interim_text.clone(),
        word_count: ev.word_count,
        user_speech_ms: ev.user_speech_ms,
        agent_spoken_ms: ev.agent_spoken_ms,
        spoken_text: ev.spoken_text.clone(),
        remaining_text: ev.remaining_text.clone(),
        protected_playing: ev.protected_playing,
    }
}

/// A plug-in's barge-in decision.
pub(crate) fn decision_back(d: barge_in::Decision) -> BargeInDecision {
    match d {
        barge_in::Decision::Ignore => BargeInDecision::Ignore,
        barge_in::Decision::Interrupt => BargeInDecision::Interrupt,
        barge_in::Decision::Pause => BargeInDecision::Pause,
        barge_in::Decision::Wait => BargeInDecision::Wait,
    }
}

/// The session's turn event as the WIT record.
pub(crate) fn turn_event(ev: &TurnEvent) -> turn::TurnEvent {
    turn::TurnEvent {
        trigger: match ev.trigger {
            TurnTrigger::Pause => turn::TurnTrigger::Pause,
            TurnTrigger::SpeechEnd => turn::TurnTrigger::SpeechEnd,
            TurnTrigger::Transcript => turn::TurnTrigger::Transcript,
            TurnTrigger::Timer => turn::TurnTrigger::Timer,
        },
        silence_ms: ev.silence_ms,
        speech_ms: ev.speech_ms,
        text: ev.text.clone(),
        word_count: ev.word_count,
        text_final: ev.text_final,
        model_probability: ev.model_probability,
        agent_last_sentence: ev.agent_last_sentence.clone(),
    }
}

/// A plug-in's end-of-turn decision.
pub(crate) fn turn_decision_back(d: turn::TurnDecision) -> TurnDecision {
    match d {
        turn::TurnDecision::EndTurn => TurnDecision::EndTurn,
        turn::TurnDecision::Wait(ms) => TurnDecision::Wait(ms),
    }
}
