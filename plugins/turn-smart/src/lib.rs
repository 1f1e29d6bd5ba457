//! An end-of-turn policy that combines the words with the end-of-turn model:
//! - **hold** (`wait(hold_ms)`) when the words promise more: they end in a conjunction ("and",
//!   "because"), a filler ("um"), a preposition or article ("for", "the"; not when the
//!   recogniser heard a question: "where are you from?"), a comma, or a number being dictated
//!   ("my number is 4 1 5"), trail off ("for..."), or are only an opener ("well", "hmm");
//! - **end the turn** at the first pause when the turn sounds finished: the model's probability
//!   and what the words say, weighed together (`end_score`). The words count for more where the
//!   audio misleads the model (synthetic voices) and carry it alone when no model runs: a
//!   question, a sentence with its final stop, or a short answer to the agent's question;
//! - otherwise **leave it to the host's silence rules** (`wait(0)`).
//!
//! Configuration keys: `end_score` (0.6: the weighed score at which a turn ends early),
//! `model_weight` (0.5: the model's share of the score when it runs), `hold_ms` (1500).
// The generated bindings lift a record into one argument per field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "end-of-turn-policy",
    path: "../../wit",
});

use std::cell::RefCell;

struct Settings {
    end_score: f32,
    model_weight: f32,
    hold_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            end_score: 0.6,
            model_weight: 0.5,
            hold_ms: 1500,
        }
    }
}

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings::default());
}

/// Words after which a speaker has rarely finished: conjunctions and fillers.
const UNFINISHED: &[&str] = &[
    // conjunctions
    "and", "but", "or", "so", "because", "cause", "then", "if", "when", "while", "that", "which",
    "who", "whether", "although", "unless", "until", "than", // fillers
    "um", "uh", "uhm", "er", "erm", "hm", "hmm", "like", "mean",
];

/// Words that need what follows, unless the recogniser heard a question ("where are you from?",
/// "what is it for?").
const OPEN_ENDED: &[&str] = &[
    // prepositions, articles, possessives
    "to", "for", "with", "of", "in", "on", "at", "from", "by", "about", "into", "a", "an", "the",
    "my", "your", "our", "their", "his", "her", "its", "this", "some",
    // verbs that need what follows
    "is", "are", "was", "were", "be", "am", "want", "need", "would", "could", "should",
];

/// Words that open an answer without being one: said alone, more is coming ("well...").
const OPENERS: &[&str] = &["well", "ah", "um", "uh", "uhm", "er", "erm", "hm", "hmm"];

/// Words that open a question.
const QUESTION_OPENERS: &[&str] = &[
    "what", "what's", "whats", "where", "where's", "when", "who", "who's", "whom", "whose", "how",
    "how's", "why", "which", "can", "could", "would", "will", "is", "are", "do", "does", "did",
    "should", "shall", "may", "have", "has",
];

const NUMBER_WORDS: &[&str] = &[
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "double",
];

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn is_number(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_digit() || c == '-') || NUMBER_WORDS.contains(&word)
}

/// Whether the words promise more.
fn unfinished(text: &str, words: &[String]) -> bool {
    let Some(last) = words.last() else {
        return false;
    };
    let text = text.trim_end();
    // A comma, or words trailing off ("for..."), promise more.
    if text.ends_with([',', ';', ':', '-', '…']) || text.ends_with("..") {
        return true;
    }
    if UNFINISHED.contains(&last.as_str()) || words.iter().all(|w| OPENERS.contains(&w.as_str())) {
        return true;
    }
    if OPEN_ENDED.contains(&last.as_str()) && !text.ends_with('?') {
        return true;
    }
    // Digits being dictated: the last two words are numbers and no stop closes them.
    let numbers = words.iter().rev().take_while(|w| is_number(w)).count();
    numbers >= 2 && !text.ends_with(['.', '?', '!'])
}

/// How finished the words sound, 0..=1.
fn text_score(text: &str, words: &[String], agent_last_sentence: &str) -> f32 {
    let trimmed = text.trim_end();
    if trimmed.ends_with(['.', '?', '!']) {
        return 0.9;
    }
    let first = words.first().map(String::as_str).unwrap_or("");
    if words.len() >= 3 && QUESTION_OPENERS.contains(&first) {
        return 0.8;
    }
    if words.len() <= 3 && agent_last_sentence.trim_end().ends_with('?') {
        // A short answer to the agent's question ("yes", "no thanks", "tomorrow at noon").
        return 0.8;
    }
    if words.len() >= 3 {
        0.5
    } else {
        0.3
    }
}

fn decide_with(s: &Settings, e: &TurnEvent) -> TurnDecision {
    let w = words(&e.text);
    if w.is_empty() {
        // The recogniser has not caught up: the silence rules wait for its words.
        return TurnDecision::Wait(0);
    }
    if unfinished(&e.text, &w) {
        return TurnDecision::Wait(s.hold_ms);
    }
    let text = text_score(&e.text, &w, &e.agent_last_sentence);
    let score = match e.model_probability {
        Some(p) if p.is_finite() => {
            s.model_weight * p.clamp(0.0, 1.0) + (1.0 - s.model_weight) * text
        }
        _ => text,
    };
    if score >= s.end_score {
        TurnDecision::EndTurn
    } else {
        TurnDecision::Wait(0)
    }
}

fn parse_unit(key: &str, value: &str) -> Result<f32, String> {
    match value.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{key} must be a number in 0..=1, got {value:?}")),
    }
}

struct Plugin;

impl Guest for Plugin {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut s = Settings::default();
        for (key, value) in &config {
            match key.as_str() {
                "end_score" => s.end_score = parse_unit(key, value)?,
                "model_weight" => s.model_weight = parse_unit(key, value)?,
                "hold_ms" => {
                    s.hold_ms = value.trim().parse().map_err(|_| {
                        format!("hold_ms must be a whole number of ms, got {value:?}")
                    })?
                }
                _ => {}
            }
        }
        SETTINGS.with(|cell| *cell.borrow_mut() = s);
        Ok(())
    }

    fn decide(event: TurnEvent) -> TurnDecision {
        SETTINGS.with(|cell| decide_with(&cell.borrow(), &event))
    }
}

export!(Plugin);
