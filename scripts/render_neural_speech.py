"""Speaks the end-of-turn report's labelled utterances with a neural voice (Piper, VITS).

Usage: render_neural_speech.py SET VOICE_ONNX VOICE_JSON OUT_DIR

Reads the labelled set (host/tests/fixtures/turn-set/utterances.toml) and writes, into OUT_DIR,
one 16-bit mono WAV at the voice's own rate (22,050 Hz for en_US-joe-medium) per segment of each
utterance, for each length scale and each way of speaking it, and `manifest.json`, which the
report (`--neural`, host/examples/end_of_turn_report/neural.rs) reads:

- "sentence": the whole utterance synthesised as one sentence, then cut at the word boundaries
  where the labels put a pause: the voice before a pause has the prosody of a sentence that
  goes on, as a speaker who stops mid-sentence has (the cut is faded over 10 ms, the rest faded
  in over 5 ms);
- "segments": each segment synthesised alone, as the espeak-ng sources are (each ends with a
  finished sentence's fall).

The word boundary is found from the voice's phoneme alignments (the model's phoneme durations,
exposed by piper's own patch): the k-th pause comes after as many of the sentence's words as
the segments before it have when each is phonemised alone. The model's two random-noise nodes
are seeded, so the same set renders the same audio on the same machine.
"""

import json
import sys
import tomllib
import wave
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig
from piper.patch_voice_with_alignment import add_alignment_output

# Faster, the voice's own pace, slower (a speaker's rate varies about that much).
LENGTH_SCALES = [0.85, 1.0, 1.2]
MODES = ["sentence", "segments"]
SEED = 1234
FADE_OUT_MS = 10
FADE_IN_MS = 5


def load_voice(model_path: str, config_path: str) -> PiperVoice:
    """The voice with phoneme alignments exposed and its noise seeded."""
    model = onnx.load(model_path)
    add_alignment_output(model)
    for i, node in enumerate(model.graph.node):
        if node.op_type.startswith("Random"):
            node.attribute.append(onnx.helper.make_attribute("seed", float(SEED + i)))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    with open(config_path, encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    return PiperVoice(session=session, config=config)


def words(voice: PiperVoice, text: str) -> int:
    """How many words espeak-ng makes of `text` ("22" is two: "twenty two")."""
    n = 0
    for sentence in voice.phonemize(text):
        n += sum(1 for w in "".join(sentence).split(" ") if any(c.isalpha() for c in w))
    return n


def synthesize(voice: PiperVoice, text: str, scale: float):
    """The audio of `text` as float samples and its phonemes as (phoneme, start, end) samples."""
    config = SynthesisConfig(length_scale=scale, normalize_audio=True, volume=0.5)
    audio, phonemes, at = [], [], 0
    for chunk in voice.synthesize(text, config, include_alignments=True):
        if chunk.phoneme_alignments is None:
            raise SystemExit(f"render_neural_speech: no phoneme alignments for {text!r}")
        samples = chunk.audio_float_array
        aligned = sum(int(a.num_samples) for a in chunk.phoneme_alignments)
        if aligned != len(samples):
            raise SystemExit(
                f"render_neural_speech: {text!r}: alignments cover {aligned} samples of {len(samples)}"
            )
        for a in chunk.phoneme_alignments:
            phonemes.append((a.phoneme, at, at + int(a.num_samples)))
            at += int(a.num_samples)
        # A sentence boundary separates words too.
        phonemes.append((" ", at, at))
        audio.append(samples)
    return np.concatenate(audio), phonemes


def word_gaps(phonemes):
    """(start, end) of each gap between two words, in samples."""
    gaps, seen_word = [], False
    for phoneme, start, end in phonemes:
        if phoneme == " ":
            if seen_word:
                gaps.append((start, end))
            seen_word = False
        elif phoneme.isalpha():
            seen_word = True
    return gaps


def fade(audio: np.ndarray, rate: int, out: bool) -> np.ndarray:
    n = min(len(audio), rate * (FADE_OUT_MS if out else FADE_IN_MS) // 1000)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    audio = audio.copy()
    if out:
        audio[len(audio) - n :] *= ramp[::-1]
    else:
        audio[:n] *= ramp
    return audio


def sentence_segments(voice: PiperVoice, say: list[str], scale: float) -> list[np.ndarray]:
    """The utterance spoken as one sentence, cut where the labels pause."""
    audio, phonemes = synthesize(voice, " ".join(say), scale)
    gaps = word_gaps(phonemes)
    counts = [words(voice, s) for s in say]
    # Each word is followed by a gap (the last by the sentence's end).
    if sum(counts) != len(gaps):
        raise SystemExit(
            f"render_neural_speech: {say!r}: the segments make {sum(counts)} words, "
            f"the sentence {len(gaps)}"
        )
    rate = voice.config.sample_rate
    out, begin, boundary = [], 0, 0
    for count in counts[:-1]:
        boundary += count
        gap_start, gap_end = gaps[boundary - 1]
        part = audio[begin:gap_start]
        out.append(fade(part, rate, out=True) if begin == 0 else fade(fade(part, rate, True), rate, False))
        begin = gap_end
    out.append(fade(audio[begin:], rate, out=False))
    return out


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def main() -> None:
    if len(sys.argv) != 5:
        raise SystemExit(__doc__.split("\n\n")[1])
    set_path, model_path, config_path, out_dir = sys.argv[1:]
    with open(set_path, "rb") as f:
        labelled = tomllib.load(f)
    items = [[c["text"]] for c in labelled["complete"]] + [i["say"] for i in labelled["incomplete"]]
    voice = load_voice(model_path, config_path)
    rate = voice.config.sample_rate
    out = Path(out_dir)
    sources = []
    for mode in MODES:
        for scale in LENGTH_SCALES:
            name = f"{mode}-{scale:.2f}"
            (out / name).mkdir(parents=True, exist_ok=True)
            clips = []
            for n, say in enumerate(items):
                if mode == "sentence":
                    parts = sentence_segments(voice, say, scale)
                else:
                    parts = [synthesize(voice, s, scale)[0] for s in say]
                files = []
                for k, part in enumerate(parts):
                    file = f"{name}/{n:03}-{k}.wav"
                    write_wav(out / file, part, rate)
                    files.append(file)
                clips.append({"say": say, "files": files})
            sources.append({"mode": mode, "length_scale": scale, "clips": clips})
            print(f"render_neural_speech: {name}: {len(clips)} utterances", file=sys.stderr)
    manifest = {"voice": Path(model_path).stem, "sample_rate": rate, "sources": sources}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
