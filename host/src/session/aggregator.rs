//! Sentence aggregation: LLM tokens in, speakable sentences out, so the first sentence reaches
//! text-to-speech while the rest of the reply is still being generated.
//!
//! It also strips protection markers: text between `<protect>` and `</protect>` is one sentence
//! that barge-in must not cut. Markers may be split across tokens; a possible partial marker is
//! held back until it can be decided.

const OPEN: &str = "<protect>";
const CLOSE: &str = "</protect>";

/// Words after which a full stop does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "no",
];

/// A unit of text for text-to-speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    /// Marked by the reply (`<protect>`) or matched by a configured pattern (decided by the caller).
    pub protected: bool,
}

/// Output of one `push`: the marker-free text to show the client and the sentences completed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    pub delta: String,
    pub sentences: Vec<Sentence>,
}

/// Streams tokens into sentences.
#[derive(Debug)]
pub struct SentenceAggregator {
    /// Raw input not yet classified (may hold a partial marker).
    pending: String,
    /// Clean text of the sentence being built.
    current: String,
    /// Length of `current` in characters.
    current_chars: usize,
    in_protect: bool,
    /// A clause is cut at `,;:` once a sentence grows past this many characters, and at a space
    /// past twice that, so long run-on replies do not delay audio.
    max_chars: usize,
}

impl SentenceAggregator {
    pub fn new(max_chars: usize) -> Self {
        Self {
            pending: String::new(),
            current: String::new(),
            current_chars: 0,
            in_protect: false,
            max_chars: max_chars.max(20),
        }
    }

    /// Add a token; returns the clean delta and any completed sentences.
    pub fn push(&mut self, token: &str) -> Pushed {
        let mut out = Pushed::default();
        self.pending.push_str(token);
        loop {
            let marker = if self.in_protect { CLOSE } else { OPEN };
            if let Some(pos) = self.pending.find(marker) {
                let before: String = self.pending[..pos].to_string();
                self.pending.drain(..pos + marker.len());
                self.take_text(&before, &mut out);
                self.end_unit(&mut out);
                self.in_protect = !self.in_protect;
                continue;
            }
            // Hold back a suffix that could be the start of the marker.
            let keep = partial_suffix(&self.pending, marker);
            let ready_len = self.pending.len() - keep;
            if ready_len > 0 {
                let ready: String = self.pending.drain(..ready_len).collect();
                self.take_text(&ready, &mut out);
            }
            break;
        }
        out
    }

    /// End of the reply: everything left is the last sentence.
    pub fn finish(&mut self) -> Pushed {
        let mut out = Pushed::default();
        let rest = std::mem::take(&mut self.pending);
        self.take_text(&rest, &mut out);
        self.end_unit(&mut out);
        self.in_protect = false;
        out
    }

    /// The reply broke off (its stream failed): the sentence being built is kept only when it
    /// is already complete ("It is sunny." waiting for the space that confirms it); a fragment
    /// is dropped, never spoken. Pending input that was not yet classified is dropped too.
    pub fn abandon(&mut self) -> Pushed {
        let mut out = Pushed::default();
        self.pending.clear();
        if self.ends_sentence() {
            self.end_unit(&mut out);
        }
        self.current.clear();
        self.current_chars = 0;
        self.in_protect = false;
        out
    }

    fn take_text(&mut self, text: &str, out: &mut Pushed) {
        for c in text.chars() {
            out.delta.push(c);
            self.current.push(c);
            self.current_chars += 1;
            // Boundaries are confirmed one character late (the space after the stop) so "3.5"
            // and "Dr. Smith" are not split; a protected unit is never split.
            if self.in_protect || !c.is_whitespace() {
                continue;
            }
            if self.ends_sentence() {
                self.end_unit(out);
            } else if self.current_chars > self.max_chars {
                self.cut_long_clause(out);
            }
        }
    }

    /// Whether the text built so far ends with a sentence stop (followed by the space just added).
    fn ends_sentence(&self) -> bool {
        let trimmed = self.current.trim_end();
        match trimmed.chars().last() {
            Some('.') => !ends_with_abbreviation(trimmed),
            Some('!' | '?' | '…') => true,
            _ => false,
        }
    }

    /// A sentence past `max_chars`: emit it up to its last clause mark (`,;:—` before a space),
    /// or whole at a space once it is past twice that.
    fn cut_long_clause(&mut self, out: &mut Pushed) {
        let cut = self
            .current
            .char_indices()
            .zip(self.current.chars().skip(1))
            .filter(|((_, c), next)| matches!(c, ',' | ';' | ':' | '—') && next.is_whitespace())
            .map(|((i, c), _)| i + c.len_utf8())
            .last();
        match cut {
            Some(at) => {
                let rest = self.current.split_off(at);
                self.end_unit(out);
                let rest = rest.trim_start();
                self.current.push_str(rest);
                self.current_chars = rest.chars().count();
            }
            None if self.current_chars > self.max_chars * 2 => self.end_unit(out),
            None => {}
        }
    }

    fn end_unit(&mut self, out: &mut Pushed) {
        let text = self.current.trim();
        if !text.is_empty() {
            out.sentences.push(Sentence {
                text: text.to_string(),
                protected: self.in_protect,
            });
        }
        self.current.clear();
        self.current_chars = 0;
    }
}

/// Length of the longest suffix of `s` that is a proper prefix of `marker`.
fn partial_suffix(s: &str, marker: &str) -> usize {
    let max = marker.len().saturating_sub(1).min(s.len());
    (1..=max)
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && marker.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

fn ends_with_abbreviation(trimmed: &str) -> bool {
    let without_stop = &trimmed[..trimmed.len() - 1];
    let last_word = without_stop
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_lowercase();
    ABBREVIATIONS.contains(&last_word.as_str())
        || (last_word.len() == 1 && last_word.chars().all(|c| c.is_alphabetic()))
}

/// Remove protection markers from a complete text (e.g. a direct reply).
pub fn strip_markers(text: &str) -> String {
    text.replace(OPEN, "").replace(CLOSE, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandon_keeps_a_complete_sentence_and_drops_a_fragment() {
        let mut a = SentenceAggregator::new(120);
        let first = a.push("It is sunny. The wind");
        assert_eq!(
            first.sentences.len(),
            1,
            "the first sentence is confirmed by its space"
        );
        let rest = a.abandon();
        assert!(
            rest.sentences.is_empty(),
            "the fragment is never spoken: {rest:?}"
        );
        a.push("Bring a coat.");
        let rest = a.abandon();
        assert_eq!(rest.sentences[0].text, "Bring a coat.");
    }

    fn run(tokens: &[&str]) -> (String, Vec<Sentence>) {
        let mut a = SentenceAggregator::new(60);
        let mut text = String::new();
        let mut sentences = Vec::new();
        for t in tokens {
            let p = a.push(t);
            text.push_str(&p.delta);
            sentences.extend(p.sentences);
        }
        let p = a.finish();
        text.push_str(&p.delta);
        sentences.extend(p.sentences);
        (text, sentences)
    }

    fn texts(s: &[Sentence]) -> Vec<&str> {
        s.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn emits_each_sentence_as_soon_as_it_ends() {
        let mut a = SentenceAggregator::new(60);
        assert!(a.push("Hello").sentences.is_empty());
        assert!(a.push(" there.").sentences.is_empty());
        let p = a.push(" How");
        assert_eq!(texts(&p.sentences), vec!["Hello there."]);
        assert!(a.push(" are you?").sentences.is_empty());
        assert_eq!(texts(&a.finish().sentences), vec!["How are you?"]);
    }

    #[test]
    fn does_not_split_numbers_or_abbreviations() {
        let (_, s) = run(&["It costs 3.5 dollars, says Dr. Smith. ", "Ok."]);
        assert_eq!(
            texts(&s),
            vec!["It costs 3.5 dollars, says Dr. Smith.", "Ok."]
        );
    }

    #[test]
    fn splits_long_clauses() {
        let long = "This is a rather long sentence that keeps going and going, and then it continues with more words without a stop";
        let (_, s) = run(&[long]);
        assert!(s.len() >= 2, "{s:?}");
        assert!(s[0].text.ends_with(','));
        assert_eq!(
            s.iter().map(|s| s.text.len()).sum::<usize>() + s.len() - 1,
            long.len()
        );
    }

    #[test]
    fn protected_markers_split_across_tokens_are_stripped() {
        let (text, s) = run(&[
            "Sure. <pro",
            "tect>Your code is 4 4 1. Write it down.</prot",
            "ect> Anything else?",
        ]);
        assert_eq!(
            text,
            "Sure. Your code is 4 4 1. Write it down. Anything else?"
        );
        assert_eq!(
            s,
            vec![
                Sentence {
                    text: "Sure.".into(),
                    protected: false
                },
                Sentence {
                    text: "Your code is 4 4 1. Write it down.".into(),
                    protected: true
                },
                Sentence {
                    text: "Anything else?".into(),
                    protected: false
                },
            ]
        );
    }

    #[test]
    fn a_lone_angle_bracket_is_not_held_forever() {
        let (text, s) = run(&["a < b", " is true."]);
        assert_eq!(text, "a < b is true.");
        assert_eq!(texts(&s), vec!["a < b is true."]);
    }

    #[test]
    fn strip_markers_removes_tags() {
        assert_eq!(
            strip_markers("<protect>Code 12.</protect> Bye."),
            "Code 12. Bye."
        );
    }
}
