//! Log lines that text from outside (plug-in output, caller-supplied ids such as a CallSid or a
//! session id) cannot forge or use to drive an operator's terminal: control characters are
//! written as escapes.

use std::borrow::Cow;
use std::io::{self, Write};

/// `text` with every control character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`, ...).
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Escapes the control characters of one formatted log record, keeping its final newline and
/// the colour sequences (`ESC [ digits ; m`) the text formatter itself writes. C1 controls
/// (U+0080 to U+009F, e.g. U+009B, a one-character CSI to some terminals) are escaped as well
/// as the ASCII ones; bytes that are not UTF-8 are replaced.
fn escape_record(record: &[u8]) -> Vec<u8> {
    let (body, newline) = match record.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (record, false),
    };
    let body = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(body.len() + 8);
    let mut rest: &str = &body;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' {
            if let Some(len) = colour_sequence(rest.as_bytes()) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if c.is_ascii_control() {
            out.extend(std::ascii::escape_default(c as u8).map(char::from));
        } else if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    if newline {
        out.push('\n');
    }
    out.into_bytes()
}

/// Length of an SGR colour sequence at the start of `bytes`, if one is there.
fn colour_sequence(bytes: &[u8]) -> Option<usize> {
    let rest = bytes.strip_prefix(b"\x1b[")?;
    let params = rest
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b';')
        .count();
    (rest.get(params) == Some(&b'm')).then_some(2 + params + 1)
}

/// A writer for `tracing_subscriber`'s text format: each record (one `write`) has its control
/// characters escaped. The JSON format needs none of this: JSON strings are escaped already.
pub struct EscapingWriter<W>(pub W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_record(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `MakeWriter` for stdout through [`EscapingWriter`].
pub fn stdout() -> EscapingWriter<io::Stdout> {
    EscapingWriter(io::stdout())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("plain text"), "plain text");
        assert!(matches!(escape_control("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_control("CA1\n2024-01-01 ERROR forged\r\x1b[2J"),
            "CA1\\n2024-01-01 ERROR forged\\r\\u{1b}[2J"
        );
    }

    #[test]
    fn records_keep_their_newline_and_colours_only() {
        let record = b"\x1b[32m INFO\x1b[0m session id=a\nb\x1b[2J\x07\n";
        let out = String::from_utf8(escape_record(record)).unwrap();
        assert_eq!(out, "\x1b[32m INFO\x1b[0m session id=a\\nb\\x1b[2J\\x07\n");
    }

    #[test]
    fn c1_controls_and_invalid_bytes_are_escaped_and_text_is_kept() {
        let record = "call=CA\u{9b}2J caf\u{e9} \u{85}x\n".as_bytes();
        let out = String::from_utf8(escape_record(record)).unwrap();
        assert_eq!(out, "call=CA\\u{9b}2J caf\u{e9} \\u{85}x\n");
        let out = String::from_utf8(escape_record(b"id=\xff\x9b\n")).unwrap();
        assert_eq!(out, "id=\u{fffd}\u{fffd}\n");
        assert_eq!(escape_control("CA\u{9b}1"), "CA\\u{9b}1");
    }

    #[test]
    fn writer_passes_escaped_records_through() {
        let mut w = EscapingWriter(Vec::new());
        w.write_all(b"id=\"x\ry\"\n").unwrap();
        assert_eq!(w.0, b"id=\"x\\ry\"\n");
    }
}
