"""Golden values for the host's Smart Turn v3.2 end-of-turn model (host/src/turn), computed by
pipecat's own inference code: `LocalSmartTurnAnalyzerV3._predict_endpoint` (keep the last 8 s,
front-pad with zeros, its numpy Whisper log-mel features, ONNX Runtime with pipecat's session
options) on the speech fixtures in host/tests/fixtures/smart-turn/.

Run it in a private virtual environment with pipecat's pinned wheel and the runtime the host
loads (pipecat itself is installed without its many dependencies; its turn analyzer needs
only these):

    python3 -m venv /tmp/smart-turn-venv
    /tmp/smart-turn-venv/bin/pip install numpy onnxruntime==1.32.0 loguru soxr pydantic wait_for2
    /tmp/smart-turn-venv/bin/pip install --no-deps pipecat-ai==1.14.0
    /tmp/smart-turn-venv/bin/python scripts/smart-turn-reference.py

It rewrites host/tests/fixtures/smart-turn/reference.json. With --make-wavs it first speaks the
fixture WAVs again with espeak-ng and sox (different espeak-ng versions speak differently, which
is why the WAVs are committed rather than made by the tests).

Each case is a list of parts (a fixture WAV, or a stretch of silence) joined into one 16 kHz
recording, as a session would hand the model the audio from before the speech to the pause.
For each case the JSON keeps the probability and a summary of the [80, 800] features that
locates any difference: the mean of each mel band and of each frame (7 decimals), and 256
single values spread over the array (flat index `i * 7919 % 64000`, exact float32 values).
"""

import json
import subprocess
import sys
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "host" / "tests" / "fixtures" / "smart-turn"
RATE = 16000

# name -> (espeak-ng voice, words per minute, text)
UTTERANCES = {
    "weather": ("en-us", 150, "What's the weather like in Paris today?"),
    "table": ("en-us", 150, "I'd like to book a table for"),
    "number": ("en-gb", 140, "My phone number is five five five, two one"),
    "time": ("en-us+f3", 170, "Can you tell me what time it is?"),
}

# name -> parts: a fixture WAV name, or {"silence_ms": N}
CASES = {
    "complete_question": ["weather", {"silence_ms": 300}],
    "trailing_preposition": ["table", {"silence_ms": 300}],
    "dictated_number": ["number", {"silence_ms": 200}],
    "other_voice_complete": [{"silence_ms": 500}, "time", {"silence_ms": 400}],
    # Longer than 8 s: only the last 8 s reach the model.
    "longer_than_window": [
        "weather",
        {"silence_ms": 600},
        "number",
        {"silence_ms": 600},
        "time",
        {"silence_ms": 600},
        "table",
        {"silence_ms": 300},
    ],
    "silence_only": [{"silence_ms": 1000}],
}

SAMPLE_STRIDE = 7919
SAMPLES = 256


def make_wavs():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, (voice, wpm, text) in UTTERANCES.items():
        raw = FIXTURES / f"{name}.espeak.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), text], check=True
        )
        # 16 kHz mono PCM16 without dither, so the file depends only on espeak-ng's output.
        subprocess.run(
            ["sox", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16",
             str(FIXTURES / f"{name}.wav")],
            check=True,
        )
        raw.unlink()


def read_wav(path):
    import numpy as np

    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    # pipecat's BaseSmartTurn converts its int16 buffer the same way.
    return pcm.astype(np.float32) / 32768.0


def case_audio(parts):
    import numpy as np

    pieces = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(read_wav(FIXTURES / f"{part}.wav"))
        else:
            pieces.append(np.zeros(RATE * part["silence_ms"] // 1000, dtype=np.float32))
    return np.concatenate(pieces)


def main():
    if "--make-wavs" in sys.argv[1:]:
        make_wavs()

    import numpy as np
    from pipecat.audio.turn.smart_turn import local_smart_turn_v3 as v3

    analyzer = v3.LocalSmartTurnAnalyzerV3(sample_rate=RATE)
    # Keep the features pipecat computes inside `_predict_endpoint`, without changing them.
    captured = []
    compute = v3.compute_whisper_log_mel_features

    def capture(audio, **kwargs):
        features = compute(audio, **kwargs)
        captured.append(features)
        return features

    v3.compute_whisper_log_mel_features = capture

    cases = []
    for name, parts in CASES.items():
        audio = case_audio(parts)
        captured.clear()
        result = analyzer._predict_endpoint(audio)
        (features,) = captured
        assert features.shape == (80, 800) and features.dtype == np.float32
        flat = features.reshape(-1)
        indices = [i * SAMPLE_STRIDE % flat.size for i in range(SAMPLES)]
        cases.append(
            {
                "name": name,
                "parts": parts,
                "samples": int(audio.size),
                "probability": float(result["probability"]),
                "band_means": [round(float(v), 7) for v in features.astype(np.float64).mean(axis=1)],
                "frame_means": [round(float(v), 7) for v in features.astype(np.float64).mean(axis=0)],
                # The shortest decimal that reads back as the same float32.
                "values": [[i, float(str(flat[i]))] for i in indices],
            }
        )
        print(f"{name:22} {audio.size / RATE:5.2f} s  p(complete) = {result['probability']:.6f}")

    out = {
        "generated_by": "scripts/smart-turn-reference.py",
        "pipecat": "pipecat-ai==1.14.0 LocalSmartTurnAnalyzerV3._predict_endpoint",
        "onnxruntime": __import__("onnxruntime").__version__,
        "sample_stride": SAMPLE_STRIDE,
        "cases": cases,
    }
    path = FIXTURES / "reference.json"
    # One line per case: small diffs, a small file.
    head = json.dumps({k: v for k, v in out.items() if k != "cases"}, indent=1)[:-2]
    body = ",\n  ".join(json.dumps(case, separators=(",", ":")) for case in cases)
    path.write_text(f'{head},\n "cases": [\n  {body}\n ]\n}}\n')
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
