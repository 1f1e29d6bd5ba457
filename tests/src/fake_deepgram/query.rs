//! The handshake's query string, checked as the service checks it: a value it cannot read is
//! refused with HTTP 400 `INVALID_QUERY_PARAMETER` before the socket opens. Parameters the
//! fake does not use are accepted and ignored, as the service accepts its many others.

/// What the stream was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub sample_rate: u32,
    pub channels: u32,
    pub interim_results: bool,
    /// `None` when endpointing is off (`endpointing=false`).
    pub endpointing_ms: Option<u32>,
    pub utterance_end_ms: Option<u32>,
    pub vad_events: bool,
    pub smart_format: bool,
}

/// Encodings the service knows; the fake decodes only `linear16`.
const ENCODINGS: &[&str] = &[
    "linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus",
    "speex", "g729",
];

/// Endpointing when the query does not say (the service's default).
const DEFAULT_ENDPOINTING_MS: u32 = 10;

/// Reads the query; `Err` is the refusal's message.
pub fn parse(query: &[(String, String)]) -> Result<Query, String> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let flag = |name: &str| match param(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(format!(
            "Invalid `{name}`: expected true or false, got {v:?}."
        )),
    };
    let whole = |name: &str, v: &str| {
        v.parse::<u32>()
            .map_err(|_| format!("Invalid `{name}`: expected a whole number, got {v:?}."))
    };
    let sample_rate = match (param("encoding"), param("sample_rate")) {
        (Some(enc), _) if !ENCODINGS.contains(&enc) => {
            return Err(format!(
                "Invalid `encoding`: {enc:?} is not a known encoding."
            ))
        }
        (Some(enc), _) if enc != "linear16" => {
            return Err(format!(
                "This local server decodes linear16 only, not {enc:?}."
            ))
        }
        (Some(_), None) => return Err("`sample_rate` is required with `encoding`.".into()),
        (_, Some(rate)) => match whole("sample_rate", rate)? {
            r @ 8000..=48_000 => r,
            r => {
                return Err(format!(
                    "Invalid `sample_rate`: {r} is outside 8000..48000."
                ))
            }
        },
        (None, None) => 16_000,
    };
    let channels = match param("channels") {
        None => 1,
        Some(v) => match whole("channels", v)? {
            0 => return Err("Invalid `channels`: must be at least 1.".into()),
            n => n,
        },
    };
    let endpointing_ms = match param("endpointing") {
        None | Some("true") => Some(DEFAULT_ENDPOINTING_MS),
        Some("false") => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| {
            format!("Invalid `endpointing`: expected milliseconds (a whole number) or false, got {v:?}.")
        })?),
    };
    let utterance_end_ms = param("utterance_end_ms")
        .map(|v| whole("utterance_end_ms", v))
        .transpose()?;
    Ok(Query {
        sample_rate,
        channels,
        interim_results: flag("interim_results")?,
        endpointing_ms,
        utterance_end_ms,
        vad_events: flag("vad_events")?,
        smart_format: flag("smart_format")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn readable_values_pass_and_unreadable_ones_are_named() {
        let ok = parse(&q(&[
            ("encoding", "linear16"),
            ("sample_rate", "8000"),
            ("endpointing", "false"),
            ("punctuate", "true"),
        ]))
        .unwrap();
        assert_eq!((ok.sample_rate, ok.endpointing_ms), (8000, None));
        for (name, value) in [
            ("endpointing", "-5"),
            ("endpointing", "soon"),
            ("interim_results", "yes"),
            ("channels", "0"),
        ] {
            let e = parse(&q(&[(name, value)])).unwrap_err();
            assert!(e.contains(name), "{e}");
        }
    }
}
