//! Whisper's non-speech annotations. Trained on subtitles, Whisper writes what it hears that is not
//! speech as a caption: "(water splashing)", "[laughter]", "[BLANK_AUDIO]", "♪ music ♪",
//! "*cough*". Those are not the user's words: a turn made of them would have the agent answer a
//! noise, so they are removed before the words leave the recogniser (a cloud recogniser writes
//! none).

/// `text` without the spans Whisper writes for sounds that are not speech: anything in round,
/// square or curly brackets (to the end of the text when the bracket is not closed yet, as in an
/// interim cut mid-caption), between asterisks or between music notes. Whitespace is collapsed and
/// punctuation a removed caption leaves at the start is dropped.
pub fn without_annotations(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut closing: Vec<char> = Vec::new();
    let mut between: Option<char> = None;
    for c in text.chars() {
        if let Some(end) = between {
            if c == end {
                between = None;
            }
            continue;
        }
        match c {
            '(' => closing.push(')'),
            '[' => closing.push(']'),
            '{' => closing.push('}'),
            _ if closing.last() == Some(&c) => {
                closing.pop();
            }
            _ if !closing.is_empty() => {}
            '*' | '♪' | '♫' => between = Some(c),
            _ => kept.push(c),
        }
    }
    let words = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    words
        .trim_start_matches(['.', ',', ';', ':', '-', ' '])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::without_annotations;

    #[test]
    fn a_caption_alone_is_no_words() {
        for caption in [
            "(water splashing)",
            "[laughter]",
            "[BLANK_AUDIO]",
            "♪ upbeat music ♪",
            "*cough*",
            " (speaking in foreign language) ",
            "(water",
        ] {
            assert_eq!(without_annotations(caption), "", "{caption:?}");
        }
    }

    #[test]
    fn the_words_around_a_caption_stay() {
        assert_eq!(
            without_annotations("[laughter] So what do you think?"),
            "So what do you think?"
        );
        assert_eq!(
            without_annotations("[laughter]. So what do you think?"),
            "So what do you think?"
        );
        assert_eq!(
            without_annotations("I paid *cough* ten dollars."),
            "I paid ten dollars."
        );
        assert_eq!(
            without_annotations("Book it (door closes) for tonight ♪ la ♪ please."),
            "Book it for tonight please."
        );
        assert_eq!(
            without_annotations("the meeting is at [inaudible (noise)] three"),
            "the meeting is at three"
        );
    }

    #[test]
    fn speech_without_captions_is_unchanged() {
        for text in [
            "Don't worry, it's fine.",
            "My number is 4 1 5, and the code is 22-B.",
            "What's the weather in Paris?",
            "",
        ] {
            assert_eq!(without_annotations(text), text);
        }
    }
}
