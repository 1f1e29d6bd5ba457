//! A JavaScript plug-in (componentize-js) serving a running host next to a Rust one: the
//! JavaScript intent analyzer's result reaches the Rust prompt shaper, which puts it into the LLM
//! request, repeats the last reply or says goodbye without the LLM.

use super::guest_plugins::{answered_directly, ask, served_without_fallbacks, start};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The component of the JavaScript plug-in `plugins/js/<name>/`, built by
/// `scripts/build-plugins.sh` (componentize-js; a no-op when it is up to date).
fn js_component(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let out = Command::new("bash")
        .current_dir(&root)
        .args(["scripts/build-plugins.sh", name])
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "building {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = root
        .join("target/js-plugins")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_intent_analyzer_drives_the_rust_prompt_shaper() {
    let reply = "It is sunny in Paris.";
    let (s, mut c) = start(&js_component("intent-keywords-js"), reply).await;
    let system = ask(&s, &mut c, "What's the weather in Paris tomorrow?", reply).await;
    assert!(
        system.contains("\"weather\"") && system.contains("city = paris"),
        "the JavaScript plug-in's intent and slot reach the prompt: {system}"
    );

    // Its `repeat` makes the Rust shaper say the last reply again, without the LLM.
    let again = answered_directly(&s, &mut c, "Sorry, can you say that again?", "repeat").await;
    assert_eq!(again, reply);

    // Its `goodbye` makes the Rust shaper answer without the LLM.
    let bye = answered_directly(&s, &mut c, "ok bye", "goodbye").await;
    assert!(bye.contains("Goodbye"), "{bye}");
    served_without_fallbacks(&s, c).await;
}
