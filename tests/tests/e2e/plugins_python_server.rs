//! A Python plug-in (componentize-py) serving a running host next to a Rust one: the Python
//! intent analyzer's result reaches the Rust prompt shaper, which puts it into the LLM request
//! or answers a goodbye directly without the LLM.

use super::guest_plugins::{answered_directly, ask, served_without_fallbacks, start};
use voice_tests::plugins;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_intent_analyzer_drives_the_rust_prompt_shaper() {
    let reply = "It is sunny in New York.";
    let (s, mut c) = start(&plugins::component("intent-regex-py"), reply).await;
    let system = ask(&s, &mut c, "What's the weather in New York?", reply).await;
    assert!(
        system.contains("\"weather\"") && system.contains("new york"),
        "the Python plug-in's intent and slot reach the prompt: {system}"
    );

    // The Python plug-in's `goodbye` makes the Rust shaper answer without the LLM.
    let bye = answered_directly(&s, &mut c, "ok bye", "goodbye").await;
    assert!(bye.contains("Goodbye"), "{bye}");
    served_without_fallbacks(&s, c).await;
}
