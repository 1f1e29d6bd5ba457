//! Incremental server-sent-events decoder (the WHATWG event-stream format) for streamed LLM
//! replies. Bytes may be split anywhere, including inside a line terminator or a UTF-8
//! character; comments (`:` lines, used as keep-alives) and `event`/`id`/`retry` fields are
//! skipped; multiple `data:` lines of one event are joined with `\n`.

/// Decodes a byte stream into the `data` payloads of its events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next chunk belongs to it.
    after_cr: bool,
    /// Data of the current event so far.
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes and appends the data of every event they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out);
                }
                _ => self.line.push(b),
            }
        }
    }

    /// Ends the stream: an event still unterminated when the body ends is discarded, as the
    /// standard requires (it may have been cut mid-way).
    pub fn finish(&mut self) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
    }

    fn end_line(&mut self, out: &mut Vec<String>) {
        if self.line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.data));
                self.has_data = false;
            }
            return;
        }
        let line = String::from_utf8_lossy(&self.line);
        let (field, value) = match line.find(':') {
            Some(0) => {
                self.line.clear();
                return;
            }
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&line[..], ""),
        };
        if field == "data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(stream: &[u8], sizes: &[usize]) -> Vec<String> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let mut rest = stream;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            d.push(&rest[..n], &mut out);
            rest = &rest[n..];
            i += 1;
        }
        out
    }

    const STREAM: &str = ": keep-alive\n\ndata: {\"a\":\"héllo ✓\"}\n\nevent: x\nid: 7\nretry: 10\ndata: {\"b\":1}\r\n\r\n:ping\r\ndata: [DONE]\n\n";

    #[test]
    fn events_survive_every_split_point() {
        let bytes = STREAM.as_bytes();
        let whole = decode_in_pieces(bytes, &[bytes.len()]);
        assert_eq!(whole, vec!["{\"a\":\"héllo ✓\"}", "{\"b\":1}", "[DONE]"]);
        for split in 1..bytes.len() {
            let mut d = SseDecoder::new();
            let mut out = Vec::new();
            d.push(&bytes[..split], &mut out);
            d.push(&bytes[split..], &mut out);
            assert_eq!(out, whole, "split at {split}");
        }
        for sizes in [&[1usize][..], &[2, 3], &[7, 1, 5]] {
            assert_eq!(decode_in_pieces(bytes, sizes), whole);
        }
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let out = decode_in_pieces(b"data: one\ndata:two\ndata:  three\n\n", &[4]);
        assert_eq!(out, vec!["one\ntwo\n three"]);
    }

    #[test]
    fn bare_carriage_returns_end_lines() {
        let out = decode_in_pieces(b"data: a\r\rdata: b\r\r", &[1]);
        assert_eq!(out, vec!["a", "b"]);
    }

    #[test]
    fn comments_alone_produce_no_events() {
        let out = decode_in_pieces(b": keep-alive\n\n:\n\n", &[3]);
        assert!(out.is_empty());
    }

    #[test]
    fn unterminated_event_is_not_emitted() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.push(b"data: partial", &mut out);
        d.finish();
        assert!(out.is_empty());
    }
}
