//! The context cache on the real model: a conversation's next turn evaluates only what it adds
//! to the last one, and answers exactly as it would from an empty cache.

use super::engine::{backend, generate, LlmThread};
use super::*;
use crate::behaviour::{ChatMessage, Role};
use crate::providers::local::models::LlmModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

const SYSTEM: &str = crate::config::DEFAULT_SYSTEM_PROMPT;

fn thread_for(llm: LlmModel) -> Option<(LlmThread, PromptStyle)> {
    let models = crate::providers::local::test_models()?.with_llm(llm);
    let backend = backend().expect("backend");
    let model: &'static LlamaModel = Box::leak(Box::new(
        LlamaModel::load_from_file(backend, models.llm_path(), &LlamaModelParams::default())
            .expect("model"),
    ));
    let thread = LlmThread::new(backend, model, &[2]).expect("context");
    Some((thread, style_of(models.llm)))
}

fn thread() -> Option<(LlmThread, PromptStyle)> {
    thread_for(LlmModel::default())
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

/// Both models: Gemma 3's sliding-window layers keep their whole cache for this.
#[test]
fn the_next_turn_reuses_the_conversation_so_far_and_answers_as_from_scratch() {
    for llm in LlmModel::ALL {
        next_turn_reuses_the_conversation(llm);
    }
}

fn next_turn_reuses_the_conversation(llm: LlmModel) {
    let Some((mut thread, style)) = thread_for(llm) else {
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
        "{llm:?}: the whole first prompt is reused ({reused} of {second_len} tokens; the first had {first_len})"
    );

    thread.contexts[0].forget();
    let (scratch, reused) = reply(&mut thread, style, &second);
    assert_eq!(reused, 0);
    assert_eq!(
        cached, scratch,
        "{llm:?}: the cache must not change the reply"
    );
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

/// Time to the first token of a conversation's fifth turn, its prompt evaluated whole (cold)
/// and with the fourth turn's prompt and reply in the cache (warm), alternating, median of 5.
/// A measurement for docs/benchmarks.md (`--ignored first_token_cold_and_warm --nocapture`).
#[test]
#[ignore = "measurement: --ignored first_token_cold_and_warm --nocapture"]
fn first_token_cold_and_warm() {
    let Some((mut thread, style)) = thread() else {
        return;
    };
    let questions = [
        "What's the weather usually like in Paris in spring?",
        "And what should I pack for a week there?",
        "Which museums should I see first?",
        "How do I get from the airport to the centre?",
        "Thanks. Any tips for ordering food in French?",
    ];
    let mut messages = vec![ChatMessage::new(Role::System, SYSTEM)];
    for question in &questions[..4] {
        messages.push(ChatMessage::new(Role::User, *question));
        let (answer, _) = reply(&mut thread, style, &messages);
        messages.push(ChatMessage::new(Role::Assistant, answer.trim()));
    }
    let history = messages.clone();
    messages.push(ChatMessage::new(Role::User, questions[4]));
    let first_token = |thread: &mut LlmThread| {
        let generation = Generation {
            prompt: build_prompt(style, &messages),
            style,
            max_tokens: 1,
            temperature: 0.0,
            max_sentences: 3,
        };
        let (tx, _rx) = mpsc::channel(16);
        let start = std::time::Instant::now();
        let reused = generate(thread, &generation, &tx).expect("generation");
        (start.elapsed().as_secs_f64() * 1000.0, reused)
    };
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        thread.contexts[0].forget();
        cold.push(first_token(&mut thread));
        // The state the fifth turn finds: the fourth turn's prompt and reply in the cache.
        thread.contexts[0].forget();
        let mut previous = history.clone();
        let last_answer = previous.pop().expect("an answer");
        let (_, _) = reply(&mut thread, style, &previous);
        previous.push(last_answer);
        warm.push(first_token(&mut thread));
    }
    let median = |runs: &mut Vec<(f64, usize)>| {
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        runs[runs.len() / 2]
    };
    let (cold, warm) = (median(&mut cold), median(&mut warm));
    let total = tokens(&thread, style, &messages);
    println!(
        "first_token: prompt {total} tokens | cold {:.1} ms (reused {}) | warm {:.1} ms (reused {}) | ratio {:.2}",
        cold.0, cold.1, warm.0, warm.1, warm.0 / cold.0
    );
    assert!(warm.1 > cold.1);
}
