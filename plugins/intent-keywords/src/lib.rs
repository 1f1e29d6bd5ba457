//! Reference intent analyzer: phrase rules, configurable through `init`.
//!
//! A rule names an intent and the phrases that signal it; a rule matches when one of its phrases
//! occurs in the transcript as whole words (case and punctuation ignored). The longest matching
//! phrase wins. Slots capture the word(s) right after a trigger word.
//!
//! Configuration keys:
//! - `intent.<name>` = `"phrase one, phrase two"`: add (or replace) a rule.
//! - `slot.<name>` = `"trigger"`: capture the word after `trigger` as slot `<name>`
//!   (e.g. `slot.city = "in"` turns "weather in paris" into `city = paris`).
//! - `defaults` = `false`: start without the built-in rules.
//!
//! Built-in rules: `repeat`, `goodbye`, `help`, `weather` (with slot `city` after "in").
// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "intent-analyzer",
    path: "../../wit",
});

use std::cell::RefCell;

use voice::policy::log::{log, Level};

/// One intent rule: normalised phrases, each a list of words.
struct Rule {
    name: String,
    phrases: Vec<Vec<String>>,
}

/// A slot captured after a trigger word.
struct SlotRule {
    name: String,
    trigger: String,
}

#[derive(Default)]
struct Rules {
    intents: Vec<Rule>,
    slots: Vec<SlotRule>,
}

const DEFAULT_INTENTS: &[(&str, &str)] = &[
    (
        "repeat",
        "repeat that, say that again, repeat, come again, what did you say, pardon",
    ),
    ("goodbye", "goodbye, bye, bye bye, that's all, hang up"),
    ("help", "help, what can you do, how does this work"),
    (
        "weather",
        "weather, forecast, is it raining, temperature outside",
    ),
];

const DEFAULT_SLOTS: &[(&str, &str)] = &[("city", "in")];

thread_local! {
    static RULES: RefCell<Rules> = RefCell::new(Rules::default());
}

/// Lower-case words without punctuation (apostrophes and hyphens kept inside words).
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '-').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

fn parse_phrases(list: &str) -> Vec<Vec<String>> {
    list.split([',', '|'])
        .map(words)
        .filter(|p| !p.is_empty())
        .collect()
}

fn set_intent(rules: &mut Rules, name: &str, phrases: &str) {
    let phrases = parse_phrases(phrases);
    rules.intents.retain(|r| r.name != name);
    if !phrases.is_empty() {
        rules.intents.push(Rule {
            name: name.to_string(),
            phrases,
        });
    }
}

fn set_slot(rules: &mut Rules, name: &str, trigger: &str) {
    rules.slots.retain(|s| s.name != name);
    let trigger = trigger.trim().to_lowercase();
    if !trigger.is_empty() {
        rules.slots.push(SlotRule {
            name: name.to_string(),
            trigger,
        });
    }
}

/// Length of the longest phrase of `rule` found in `text`, if any.
fn best_match(rule: &Rule, text: &[String]) -> Option<usize> {
    rule.phrases
        .iter()
        .filter(|p| text.windows(p.len()).any(|w| w == p.as_slice()))
        .map(Vec::len)
        .max()
}

struct Keywords;

impl Guest for Keywords {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let use_defaults = config
            .iter()
            .find(|(k, _)| k == "defaults")
            .map(|(_, v)| !matches!(v.trim(), "false" | "0" | "no" | "off"))
            .unwrap_or(true);
        let mut rules = Rules::default();
        if use_defaults {
            for (name, phrases) in DEFAULT_INTENTS {
                set_intent(&mut rules, name, phrases);
            }
            for (name, trigger) in DEFAULT_SLOTS {
                set_slot(&mut rules, name, trigger);
            }
        }
        for (key, value) in &config {
            if let Some(name) = key.strip_prefix("intent.") {
                if name.is_empty() {
                    return Err("intent.<name>: the intent name is empty".into());
                }
                set_intent(&mut rules, name, value);
            } else if let Some(name) = key.strip_prefix("slot.") {
                if name.is_empty() {
                    return Err("slot.<name>: the slot name is empty".into());
                }
                set_slot(&mut rules, name, value);
            } else if key != "defaults" {
                log(Level::Warn, &format!("unknown config key {key:?} ignored"));
            }
        }
        RULES.with(|r| *r.borrow_mut() = rules);
        Ok(())
    }

    fn analyze(input: IntentInput) -> Option<Intent> {
        let text = words(&input.transcript);
        if text.is_empty() {
            return None;
        }
        RULES.with(|rules| {
            let rules = rules.borrow();
            let (rule, len) = rules
                .intents
                .iter()
                .filter_map(|r| best_match(r, &text).map(|len| (r, len)))
                .max_by_key(|(_, len)| *len)?;
            let slots = rules
                .slots
                .iter()
                .filter_map(|s| {
                    let at = text.iter().position(|w| *w == s.trigger)?;
                    text.get(at + 1).map(|v| (s.name.clone(), v.clone()))
                })
                .collect();
            // Longer phrases are stronger evidence; a phrase that is the whole turn is strongest.
            let coverage = len as f32 / text.len() as f32;
            Some(Intent {
                name: rule.name.clone(),
                confidence: (0.6 + 0.4 * coverage).min(1.0),
                slots,
            })
        })
    }
}

export!(Keywords);
