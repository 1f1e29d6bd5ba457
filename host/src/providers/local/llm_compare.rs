//! The two offline LLMs on 20 everyday questions, with the host's default system prompt and
//! generation settings: each reply as a caller would hear it, the time to its first token and
//! the generation rate after it. A measurement printed for `docs/benchmarks.md` and a side by
//! side reading of the replies; it asserts only that each model answers every question.

use super::engine::{backend, generate, LlmThread};
use super::*;
use crate::behaviour::{ChatMessage, GenerationSettings, Role};
use crate::providers::local::models::LlmModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use std::time::{Duration, Instant};

const QUESTIONS: [&str; 20] = [
    "What's the weather usually like in Paris in spring?",
    "How do I boil an egg?",
    "Can you recommend a good book?",
    "What time is it in Tokyo when it's noon in London?",
    "How far is the moon?",
    "What should I cook for dinner tonight?",
    "How do I get rid of hiccups?",
    "What's the capital of Australia?",
    "Can you set a timer for ten minutes?",
    "How many cups are in a litre?",
    "Tell me a joke.",
    "Why is the sky blue?",
    "What's a good way to fall asleep faster?",
    "How do I say thank you in Spanish?",
    "What's the difference between a virus and bacteria?",
    "Should I take an umbrella today?",
    "How long should I walk each day?",
    "What is two plus two?",
    "Who wrote Romeo and Juliet?",
    "I'm feeling a bit stressed. Any advice?",
];

/// One reply: its text, the time to the first token and tokens per second after it.
fn ask(thread: &mut LlmThread, style: PromptStyle, question: &str) -> (String, Duration, f64) {
    let request = LlmRequest {
        session_id: "compare".into(),
        turn: 1,
        messages: vec![
            ChatMessage::new(Role::System, crate::config::DEFAULT_SYSTEM_PROMPT),
            ChatMessage::new(Role::User, question),
        ],
        settings: GenerationSettings::default(),
        model: None,
    };
    let generation = Generation::from_request(&request, style);
    let (tx, mut rx) = mpsc::channel(4096);
    let start = Instant::now();
    let drain = std::thread::spawn(move || {
        let (mut text, mut first, mut last, mut n) = (String::new(), None, start, 0u32);
        while let Some(e) = rx.blocking_recv() {
            if let LlmEvent::Token(t) = e {
                first.get_or_insert_with(|| start.elapsed());
                last = Instant::now();
                n += 1;
                text.push_str(&t);
            }
        }
        (text, first, last, n)
    });
    // Each question from a cold cache, as the figures in docs/benchmarks.md were measured.
    thread.contexts[0].forget();
    generate(thread, &generation, &tx).expect("generation");
    drop(tx);
    let (text, first, last, n) = drain.join().unwrap();
    let first = first.unwrap_or_default();
    let after = (last - start).saturating_sub(first).as_secs_f64();
    let rate = if after > 0.0 {
        f64::from(n.saturating_sub(1)) / after
    } else {
        0.0
    };
    (text, first, rate)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "measurement, a few minutes: --ignored compare_models --nocapture"]
fn compare_models() {
    let Some(models) = crate::providers::local::test_models() else {
        return;
    };
    let backend = backend().expect("backend");
    for llm in LlmModel::ALL {
        let models = models.clone().with_llm(llm);
        let model: &'static LlamaModel = Box::leak(Box::new(
            LlamaModel::load_from_file(backend, models.llm_path(), &LlamaModelParams::default())
                .expect("model"),
        ));
        let mut thread = LlmThread::new(backend, model, &[2]).expect("context");
        let style = style_of(llm);
        let (mut firsts, mut rates) = (Vec::new(), Vec::new());
        for q in QUESTIONS {
            let (text, first, rate) = ask(&mut thread, style, q);
            println!("compare: {} | {q} | {text:?}", llm.name());
            assert!(
                !text.trim().is_empty(),
                "{} gave no answer to {q:?}",
                llm.name()
            );
            firsts.push(first.as_secs_f64() * 1000.0);
            rates.push(rate);
        }
        println!(
            "compare: {} | first token p50 {:.0} ms, max {:.0} ms | {:.1} tokens/s p50",
            llm.name(),
            median(firsts.clone()),
            firsts.iter().copied().fold(0.0, f64::max),
            median(rates)
        );
    }
}
