//! Arbitrary bytes through `voice_host::fuzzing::deepgram_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| voice_host::fuzzing::deepgram_message(data));
