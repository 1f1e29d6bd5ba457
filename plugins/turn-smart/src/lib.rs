//! An end-of-turn policy that combines the words with the end-of-turn model:
//! - **hold** (`wait(hold_ms)`) when the words promise more: they end in a conjunction that
//!   cannot end a sentence ("and", "because"), a filler ("um"), a preposition or article ("for",
//!   "the"; not when the recogniser heard a question: "where are you from?"), a subject with its
//!   verb contracted ("it's", "I'm": English never ends a clause on one), a verb that needs what
//!   follows ("is", "could"; not in an elliptical answer the recogniser closed: "Yes, it is."),
//!   a comma, a number without its stop ("the address is 22", "my number is 4 1 5"), trail off
//!   ("for..."), or are only an opener ("well", "hmm"). Words that can also end a sentence
//!   ("that", "then", "so", "like": "I didn't know that.") hold only when the recogniser wrote no
//!   stop, question or exclamation mark after them. A preposition, a pronoun or a verb that can
//!   also end a sentence, closed by the recogniser's stop ("what are you talking about.", "I
//!   think you're on."), holds once, until `hold_ms` of silence, not to the host's cap;
//! - **hold while the model doubts**: when the model runs and answers a probability under
//!   `hold_below`, nothing above decided and the recogniser heard no question (a question mark),
//!   wait until the silence reaches `doubt_ms`, then leave it to the silence rules. On human
//!   speech the model is rarely that sure of "unfinished" at a finished sentence, and a full
//!   stop does not veto it: a recogniser that hears a segment alone writes stops at pauses
//!   inside sentences ("Uh, book." | "Capital in the 21st century"). The price: a finished turn
//!   the model doubts ends `doubt_ms` after the voice instead of the silence rules' 600 ms;
//! - **end the turn** at the first pause when the turn sounds finished: the model's probability
//!   and what the words say, weighed together (`end_score`). The words count for more where the
//!   audio misleads the model (synthetic voices) and carry it alone when no model runs: a
//!   question, a sentence with its final stop, or a short answer to the agent's question;
//! - **hold while the words read unfinished**: when the host runs a text end-of-turn model
//!   (`turn-signals.words-probability`, since 0.1.2) and its probability that the sentence ends
//!   where the words stop is under `text_hold`, an end of turn decided above waits instead until
//!   the silence reaches `doubt_ms`. It holds what no word list catches ("can you tell me |
//!   the way", "I'd like to order | a pizza") and what the audio model hears as finished;
//! - otherwise **leave it to the host's silence rules** (`wait(0)`).
//!
//! Configuration keys: `end_score` (0.6: the weighed score at which a turn ends early),
//! `model_weight` (0.5: the model's share of the score when it runs), `hold_ms` (1500),
//! `hold_below` (0.2; 0 turns the model's hold off), `doubt_ms` (1000: the silence, in ms, up
//! to which the model's doubt holds the turn), `text_hold` (0.02; 0 turns the words' hold
//! off). docs/benchmarks.md ("End of turn: labelled
//! utterances") measures them.
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
    hold_below: f32,
    doubt_ms: u32,
    text_hold: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            end_score: 0.6,
            model_weight: 0.5,
            hold_ms: 1500,
            hold_below: HOLD_BELOW_DEFAULT,
            doubt_ms: DOUBT_MS_DEFAULT,
            text_hold: TEXT_HOLD_DEFAULT,
        }
    }
}

/// Below this probability the model's doubt holds the turn (see the module doc).
const HOLD_BELOW_DEFAULT: f32 = 0.2;
/// The silence up to which the model's doubt holds the turn, in ms.
const DOUBT_MS_DEFAULT: u32 = 1000;
/// Below this words probability an end of turn waits for `doubt_ms` of silence: the knee on the
/// labelled set (docs/benchmarks.md, "The text end-of-turn model in the host"); above it short
/// answers read as unfinished and finished turns wait.
const TEXT_HOLD_DEFAULT: f32 = 0.02;

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings::default());
}

/// Words after which a speaker has not finished, whatever punctuation follows: conjunctions that
/// cannot end a sentence, and fillers.
const UNFINISHED: &[&str] = &[
    // conjunctions
    "and", "but", "or", "because", "cause", "if", "whether", "although", "unless", "until", "than",
    // fillers
    "um", "uh", "uhm", "er", "erm", "hm", "hmm",
];

/// Words that usually lead on to more but can also end a sentence ("I didn't know that.", "See
/// you then.", "for a while.", "I know what you mean."): they hold unless the recogniser wrote a
/// stop, question or exclamation mark after them.
const UNFINISHED_UNLESS_STOPPED: &[&str] = &[
    "so", "then", "when", "while", "that", "which", "who", "like", "mean",
];

/// Words that need what follows, unless the recogniser heard a question ("where are you from?",
/// "what is it for?"), whatever other punctuation follows.
const OPEN_ENDED: &[&str] = &[
    // articles and possessives that never stand alone
    "a", "an", "the", "my", "your", "our", "their", "its",
    // a subject and its verb contracted, which never end a clause ("it's", not "yes, it is")
    "it's", "that's", "there's", "here's", "what's", "where's", "who's", "how's", "he's", "she's",
    "i'm", "you're", "we're", "they're", "i've", "you've", "we've", "they've", "i'll", "you'll",
    "we'll", "they'll", "it'll", "i'd", "you'd", "we'd", "they'd", "let's", "gonna", "wanna",
    "gotta",
];

/// Words that usually need what follows but also end sentences: a preposition or particle
/// ("what are you talking about.", "I think you're on."), a word that is also a pronoun ("I
/// told her.", "I like this."), a verb that can stand alone ("if you want.", "it could be.").
/// Without a stop they hold like [`OPEN_ENDED`]; closed by the recogniser's stop they hold once,
/// until `hold_ms` of silence (a stop is also written at pauses inside sentences: "about." |
/// "not finding out why").
const OPEN_UNLESS_STOPPED: &[&str] = &[
    "to", "for", "with", "of", "in", "on", "at", "from", "by", "about", "into", "his", "her",
    "this", "some", "is", "are", "was", "were", "be", "am", "want", "need", "would", "could",
    "should",
];

/// Verbs that end a clause only when what they stand for was said before: "Yes, it is.", "I
/// wish I could.", "We were."
const ELLIPTICAL_VERBS: &[&str] = &["is", "are", "was", "were", "am", "would", "could", "should"];

/// Subjects before which such a verb ends an elliptical answer.
const SUBJECT_PRONOUNS: &[&str] = &[
    "i", "you", "he", "she", "it", "we", "they", "there", "that", "this",
];

/// Whether the words end in a subject pronoun and a verb the recogniser closed with a stop or
/// exclamation mark: an elliptical answer ("Yes, it is.", "I wish I could."), which is finished.
/// A noun or "to" before the verb ("the thing is.", "the need to be.") still holds: a stop written
/// at a pause inside a sentence leaves those open.
fn elliptical(words: &[String], stopped: bool) -> bool {
    let [.., subject, verb] = words else {
        return false;
    };
    stopped
        && ELLIPTICAL_VERBS.contains(&verb.as_str())
        && SUBJECT_PRONOUNS.contains(&subject.as_str())
}

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
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '\u{2019}')
                .to_lowercase()
                // A typographic apostrophe ("it’s") is the same word.
                .replace('\u{2019}', "'")
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether the recogniser closed the words with a sentence's stop, question or exclamation mark
/// (before any closing quote: `he said "Oh!"`).
fn ends_sentence(text: &str) -> bool {
    closing(text).ends_with(['.', '?', '!'])
}

/// The text without trailing spaces and closing quotes or brackets.
fn closing(text: &str) -> &str {
    text.trim_end()
        .trim_end_matches(['"', '\'', ')', '\u{201d}', '\u{2019}'])
}

fn is_number(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_digit() || c == '-') || NUMBER_WORDS.contains(&word)
}

/// What the words promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Promise {
    /// Nothing: the model and the words' finish decide.
    Nothing,
    /// More is coming: hold (`hold_ms`, asked again until the host's cap).
    More,
    /// Probably more, though the recogniser closed the sentence: hold until `hold_ms` of
    /// silence, then let the silence rules decide.
    Perhaps,
}

/// What the words promise.
fn promise(text: &str, words: &[String]) -> Promise {
    let Some(last) = words.last() else {
        return Promise::Nothing;
    };
    let last = last.as_str();
    let text = text.trim_end();
    // A comma, or words trailing off ("for..."), promise more.
    if text.ends_with([',', ';', ':', '-', '…']) || text.ends_with("..") {
        return Promise::More;
    }
    let stopped = ends_sentence(text);
    if UNFINISHED.contains(&last) || words.iter().all(|w| OPENERS.contains(&w.as_str())) {
        return Promise::More;
    }
    if UNFINISHED_UNLESS_STOPPED.contains(&last) && !stopped {
        return Promise::More;
    }
    let question = text.ends_with('?');
    if OPEN_ENDED.contains(&last) && !question {
        return Promise::More;
    }
    if OPEN_UNLESS_STOPPED.contains(&last) && !question && !elliptical(words, stopped) {
        return if stopped {
            Promise::Perhaps
        } else {
            Promise::More
        };
    }
    // A number no stop closes: digits being dictated ("my number is 4 1 5") or a number with
    // more to come ("the address is 22", "on the twenty"). "one" and "oh" alone are words too.
    let numbers = words.iter().rev().take_while(|w| is_number(w)).count();
    if !stopped && (numbers >= 2 || (numbers == 1 && !matches!(last, "one" | "oh"))) {
        Promise::More
    } else {
        Promise::Nothing
    }
}

/// How finished the words sound, 0..=1.
fn text_score(text: &str, words: &[String], agent_last_sentence: &str) -> f32 {
    if ends_sentence(text) {
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

/// The policy's answer, held while the words read unfinished (`words`: the text model's
/// probability, when the host runs one).
fn decide_with(s: &Settings, e: &TurnEvent, words: Option<f32>) -> TurnDecision {
    let decision = decide_on_sound(s, e);
    let unfinished = words.is_some_and(|p| p.is_finite() && p < s.text_hold);
    if matches!(decision, TurnDecision::EndTurn) && unfinished && e.silence_ms < s.doubt_ms {
        TurnDecision::Wait(s.doubt_ms - e.silence_ms)
    } else {
        decision
    }
}

/// The answer from the words' form and the audio model.
fn decide_on_sound(s: &Settings, e: &TurnEvent) -> TurnDecision {
    let w = words(&e.text);
    if w.is_empty() {
        // The recogniser has not caught up: the silence rules wait for its words.
        return TurnDecision::Wait(0);
    }
    match promise(&e.text, &w) {
        Promise::More => return TurnDecision::Wait(s.hold_ms),
        Promise::Perhaps => return TurnDecision::Wait(s.hold_ms.saturating_sub(e.silence_ms)),
        Promise::Nothing => {}
    }
    let text = text_score(&e.text, &w, &e.agent_last_sentence);
    let p = e
        .model_probability
        .filter(|p| p.is_finite())
        .map(|p| p.clamp(0.0, 1.0));
    let score = match p {
        Some(p) => s.model_weight * p + (1.0 - s.model_weight) * text,
        None => text,
    };
    if score >= s.end_score {
        TurnDecision::EndTurn
    } else if p.is_some_and(|p| p < s.hold_below)
        && e.silence_ms < s.doubt_ms
        && !closing(&e.text).ends_with('?')
    {
        // The model is sure the speaker is mid-sentence, and the recogniser heard no question:
        // hold until the silence reaches `doubt_ms`, then let the silence rules decide.
        TurnDecision::Wait(s.doubt_ms - e.silence_ms)
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
                "hold_below" => s.hold_below = parse_unit(key, value)?,
                "text_hold" => s.text_hold = parse_unit(key, value)?,
                "doubt_ms" => {
                    s.doubt_ms = value.trim().parse().map_err(|_| {
                        format!("doubt_ms must be a whole number of ms, got {value:?}")
                    })?
                }
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
        let words = voice::policy::turn_signals::words_probability();
        SETTINGS.with(|cell| decide_with(&cell.borrow(), &event, words))
    }
}

export!(Plugin);
