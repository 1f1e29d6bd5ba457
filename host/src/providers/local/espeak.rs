//! A minimal binding to libespeak-ng (Debian `espeak-ng` / `libespeak-ng1`), opened at run time
//! so a machine without it still runs the rest of the host.
//!
//! espeak-ng keeps global state, so the library is initialised once per process in synchronous
//! mode and every synthesis holds one lock; audio arrives through its callback on the calling
//! thread in chunks of about [`CHUNK_MS`] ms.

use libloading::Library;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_short, c_uint, c_void, CString};
use std::sync::{Mutex, OnceLock};

/// Audio chunk length espeak-ng delivers to the callback.
pub const CHUNK_MS: c_int = 100;
/// The default voice.
pub const DEFAULT_VOICE: &str = "en-us";

const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// Return errors instead of calling `exit()` when the data files are missing.
const INITIALIZE_DONT_EXIT: c_int = 0x8000;
const POS_CHARACTER: c_int = 1;
const CHARS_UTF8: c_uint = 1;
const EE_OK: c_int = 0;
const PARAM_RATE: c_int = 1;
/// Library names tried in order.
const LIBRARY_NAMES: [&str; 2] = ["libespeak-ng.so.1", "libespeak-ng.so"];

/// `espeak_EVENT` (only its size and layout matter here; events are not read).
#[repr(C)]
struct EspeakEvent {
    kind: c_int,
    unique_identifier: c_uint,
    text_position: c_int,
    length: c_int,
    audio_position: c_int,
    sample: c_int,
    user_data: *mut c_void,
    id: [u8; 8],
}

type SynthCallback = unsafe extern "C" fn(*mut c_short, c_int, *mut EspeakEvent) -> c_int;

struct Api {
    set_synth_callback: unsafe extern "C" fn(Option<SynthCallback>),
    synth: unsafe extern "C" fn(
        *const c_void,
        usize,
        c_uint,
        c_int,
        c_uint,
        c_uint,
        *mut c_uint,
        *mut c_void,
    ) -> c_int,
    set_voice_by_name: unsafe extern "C" fn(*const c_char) -> c_int,
    set_parameter: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int,
    _library: Library,
}

/// The initialised speech synthesiser (one per process).
pub struct Espeak {
    api: Api,
    sample_rate: u32,
    /// Serialises use of espeak-ng's global state; holds the voice currently set.
    lock: Mutex<String>,
}

/// Where the current synthesis on this thread sends audio; `false` from the sink aborts.
type Sink<'a> = &'a mut dyn FnMut(&[i16]) -> bool;

/// A sink with its lifetime erased, valid only during one `espeak_Synth` call.
type ErasedSink = *mut dyn FnMut(&[i16]) -> bool;

thread_local! {
    static SINK: RefCell<Option<ErasedSink>> = const { RefCell::new(None) };
}

unsafe extern "C" fn on_audio(wav: *mut c_short, count: c_int, _events: *mut EspeakEvent) -> c_int {
    if wav.is_null() || count <= 0 {
        return 0;
    }
    // SAFETY: espeak-ng hands `count` valid samples for the duration of the call.
    let samples = unsafe { std::slice::from_raw_parts(wav, count as usize) };
    SINK.with(|sink| match *sink.borrow() {
        // SAFETY: the pointer is set by `synthesize` on this thread for the duration of the
        // synchronous `espeak_Synth` call that invokes this callback.
        Some(f) if unsafe { (*f)(samples) } => 0,
        _ => 1,
    })
}

impl Espeak {
    /// The process-wide synthesiser, initialising libespeak-ng on first use.
    pub fn get() -> Result<&'static Espeak, String> {
        static INSTANCE: OnceLock<Result<Espeak, String>> = OnceLock::new();
        INSTANCE
            .get_or_init(Self::init)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn init() -> Result<Self, String> {
        let library = LIBRARY_NAMES
            .iter()
            // SAFETY: loading a system library whose initialisers have no preconditions.
            .find_map(|name| unsafe { Library::new(name) }.ok())
            .ok_or_else(|| "libespeak-ng is not installed".to_string())?;
        // SAFETY: the symbol types match espeak-ng's speak_lib.h.
        let api = unsafe {
            let initialize = *library
                .get::<unsafe extern "C" fn(c_int, c_int, *const c_char, c_int) -> c_int>(
                    b"espeak_Initialize\0",
                )
                .map_err(|e| e.to_string())?;
            let rate = initialize(
                AUDIO_OUTPUT_SYNCHRONOUS,
                CHUNK_MS,
                std::ptr::null(),
                INITIALIZE_DONT_EXIT,
            );
            if rate <= 0 {
                return Err("espeak-ng failed to initialise (is espeak-ng-data installed?)".into());
            }
            let api = Api {
                set_synth_callback: *library
                    .get(b"espeak_SetSynthCallback\0")
                    .map_err(|e| e.to_string())?,
                synth: *library.get(b"espeak_Synth\0").map_err(|e| e.to_string())?,
                set_voice_by_name: *library
                    .get(b"espeak_SetVoiceByName\0")
                    .map_err(|e| e.to_string())?,
                set_parameter: *library
                    .get(b"espeak_SetParameter\0")
                    .map_err(|e| e.to_string())?,
                _library: library,
            };
            (api.set_synth_callback)(Some(on_audio));
            (rate as u32, api)
        };
        let (sample_rate, api) = api;
        let espeak = Self {
            api,
            sample_rate,
            lock: Mutex::new(String::new()),
        };
        {
            let mut voice = espeak.lock.lock().unwrap_or_else(|p| p.into_inner());
            espeak.select_voice(&mut voice, DEFAULT_VOICE)?;
        }
        Ok(espeak)
    }

    /// Native output rate (22,050 Hz for espeak-ng).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Synthesises `text` with `voice` (an espeak-ng voice name; unknown names fall back to
    /// [`DEFAULT_VOICE`]) at `words_per_minute` (None = espeak's default), passing audio chunks
    /// to `sink` as they are produced. `sink` returning `false` aborts the synthesis.
    /// Returns whether synthesis ran to the end.
    pub fn synthesize(
        &self,
        text: &str,
        voice: Option<&str>,
        words_per_minute: Option<u32>,
        sink: Sink<'_>,
    ) -> Result<bool, String> {
        let mut current = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let wanted = voice.filter(|v| !v.is_empty()).unwrap_or(DEFAULT_VOICE);
        if *current != wanted && self.select_voice(&mut current, wanted).is_err() {
            self.select_voice(&mut current, DEFAULT_VOICE)?;
        }
        let rate = words_per_minute.map_or(175, |r| r.clamp(80, 450)) as c_int;
        // SAFETY: plain parameter setter.
        unsafe { (self.api.set_parameter)(PARAM_RATE, rate, 0) };

        let text = CString::new(text.replace('\0', " ")).map_err(|e| e.to_string())?;
        let mut completed = true;
        let mut tracking = |samples: &[i16]| {
            let keep_going = sink(samples);
            completed &= keep_going;
            keep_going
        };
        let tracking: &mut dyn FnMut(&[i16]) -> bool = &mut tracking;
        // SAFETY: only the lifetime is erased; the pointer is cleared before `tracking` dies.
        let erased: *mut (dyn FnMut(&[i16]) -> bool + 'static) =
            unsafe { std::mem::transmute(tracking) };
        SINK.with(|s| *s.borrow_mut() = Some(erased));
        // SAFETY: `text` is NUL-terminated UTF-8; synchronous mode calls back on this thread.
        let status = unsafe {
            (self.api.synth)(
                text.as_ptr().cast(),
                text.as_bytes_with_nul().len(),
                0,
                POS_CHARACTER,
                0,
                CHARS_UTF8,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        SINK.with(|s| *s.borrow_mut() = None);
        drop(current);
        if status != EE_OK && completed {
            return Err(format!("espeak-ng synthesis failed (code {status})"));
        }
        Ok(completed)
    }

    fn select_voice(&self, current: &mut String, name: &str) -> Result<(), String> {
        let c_name = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: NUL-terminated name; called with the lock held.
        let status = unsafe { (self.api.set_voice_by_name)(c_name.as_ptr()) };
        if status != EE_OK {
            return Err(format!("espeak-ng has no voice {name:?}"));
        }
        *current = name.to_string();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skips (loudly) where libespeak-ng is absent, except in CI where it must be installed.
    fn espeak() -> Option<&'static Espeak> {
        match Espeak::get() {
            Ok(e) => Some(e),
            Err(reason) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED: {reason}; run scripts/install-deps.sh");
                None
            }
            Err(reason) => panic!("{reason} (CI must install espeak-ng)"),
        }
    }

    #[test]
    fn synthesises_audible_speech_at_its_native_rate() {
        let Some(espeak) = espeak() else { return };
        assert_eq!(espeak.sample_rate(), 22_050);
        let mut audio = Vec::new();
        let mut chunks = 0;
        let done = espeak
            .synthesize(
                "What is the weather in Paris?",
                None,
                None,
                &mut |s: &[i16]| {
                    chunks += 1;
                    audio.extend_from_slice(s);
                    true
                },
            )
            .unwrap();
        assert!(done);
        assert!(chunks > 1, "audio is delivered in several chunks");
        let seconds = audio.len() as f64 / 22_050.0;
        assert!(
            (0.8..4.0).contains(&seconds),
            "a short sentence lasts about 1.5 s, got {seconds}"
        );
        let rms =
            (audio.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / audio.len() as f64).sqrt();
        assert!(rms > 500.0, "speech is audible, rms {rms}");
    }

    #[test]
    fn a_sink_returning_false_stops_synthesis_early() {
        let Some(espeak) = espeak() else { return };
        let mut got = 0usize;
        let long = "This is a long sentence that keeps going for quite a while. ".repeat(5);
        let done = espeak
            .synthesize(&long, Some("no-such-voice"), None, &mut |s: &[i16]| {
                got += s.len();
                false
            })
            .unwrap();
        assert!(!done);
        assert!(
            got <= (espeak.sample_rate() as usize * CHUNK_MS as usize / 1000) * 2,
            "stopped after the first chunk: {got}"
        );
    }
}
