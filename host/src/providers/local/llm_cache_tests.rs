//! The context cache on the real model: a conversation's next turn evaluates only what it adds
//! to the last one, and answers exactly as it would from an empty cache.

use super::engine::{backend, generate, LlmThread};
use super::*;
use crate::behaviour::{ChatMessage, Role};
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

const SYSTEM: &str = crate::config::DEFAULT_SYSTEM_PROMPT;

fn thread() -> Option<(LlmThread, PromptStyle)> {
    let models = crate::providers::local::test_models()?;
    let backend = backend().expect("backend");
    let model: &'static LlamaModel = Box::leak(Box::new(
        LlamaModel::load_from_file(backend, models.llm_path(), &LlamaModelParams::default())
            .expect("model"),
    ));
    let thread = LlmThread::new(backend, model, &[2]).expect("context");
    Some((thread, style_of(models.llm)))
}

/// A greedy reply to `messages`: its text and how many prompt tokens came from the cache.
fn reply(thread: &mut LlmThread, style: PromptStyle, messages: &[ChatMessage]) -> (String, usize) {
    let generation = Generation {
        prompt: build_prompt(style, messages),
        style,
        max_tokens: 24,
        temperature: 0.0,
        max_sentences: 3,
    };
    let (tx, mut rx) = mpsc::channel(4096);
    let reused = generate(thread, &generation, &tx).expect("generation");
    drop(tx);
    let mut text = String::new();
    while let Ok(event) = rx.try_recv() {
        if let LlmEvent::Token(t) = event {
            text.push_str(&t);
        }
    }
    (text, reused)
}

fn tokens(thread: &LlmThread, style: PromptStyle, messages: &[ChatMessage]) -> usize {
    let prompt = build_prompt(style, messages);
    thread
        .model
        .vocab()
        .tokenize(prompt.as_bytes(), true, style.special_tokens())
        .len()
}

#[test]
fn the_next_turn_reuses_the_conversation_so_far_and_answers_as_from_scratch() {
    let Some((mut thread, style)) = thread() else {
        return;
    };
    let first = [
        ChatMessage::new(Role::System, SYSTEM),
        ChatMessage::new(Role::User, "What is the capital of France?"),
    ];
    let (answer, reused) = reply(&mut thread, style, &first);
    assert_eq!(reused, 0, "a fresh context has nothing to reuse");
    assert!(!answer.trim().is_empty());

    let mut second = first.to_vec();
    second.push(ChatMessage::new(Role::Assistant, answer.trim()));
    second.push(ChatMessage::new(
        Role::User,
        "And what is the capital of Italy?",
    ));
    let (cached, reused) = reply(&mut thread, style, &second);
    let first_len = tokens(&thread, style, &first);
    let second_len = tokens(&thread, style, &second);
    assert!(
        reused + 1 >= first_len && reused < second_len,
        "the whole first prompt is reused ({reused} of {second_len} tokens; the first had {first_len})"
    );

    thread.contexts[0].forget();
    let (scratch, reused) = reply(&mut thread, style, &second);
    assert_eq!(reused, 0);
    assert_eq!(cached, scratch, "the cache must not change the reply");
}

#[test]
fn another_conversation_in_between_keeps_only_the_shared_system_prompt() {
    let Some((mut thread, style)) = thread() else {
        return;
    };
    let ask = |question: &str| {
        [
            ChatMessage::new(Role::System, SYSTEM),
            ChatMessage::new(Role::User, question),
        ]
    };
    reply(&mut thread, style, &ask("How do I boil an egg?"));
    let other = ask("Tell me a joke.");
    let (cached, reused) = reply(&mut thread, style, &other);
    let system_only = tokens(&thread, style, &[ChatMessage::new(Role::System, SYSTEM)]);
    assert!(
        reused > system_only / 2 && reused < tokens(&thread, style, &other),
        "the system prompt is reused, the question is not ({reused} tokens)"
    );
    thread.contexts[0].forget();
    assert_eq!(reply(&mut thread, style, &other).0, cached);
}
