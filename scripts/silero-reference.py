"""Golden values for the host's Silero VAD stream (host/src/audio/vad/silero.rs), computed by
pipecat's own `SileroOnnxModel` (the 64-sample context, the recurrent state, ONNX Runtime with
pipecat's session options) on one recording made of the speech fixtures in
host/tests/fixtures/smart-turn/ with silence between them, one 512-sample window at a time.

Run it in the virtual environment of scripts/smart-turn-reference.py (pipecat 1.14.0 without its
dependencies, numpy, onnxruntime==1.32.0, loguru, soxr, pydantic, wait_for2):

    /tmp/smart-turn-venv/bin/python scripts/silero-reference.py

It rewrites host/tests/fixtures/silero/reference.json: the parts of the recording and the
probability of every window (no state resets: the model as a stream).
"""

import json
import sys
import types
import wave
from importlib import resources
from pathlib import Path

import numpy as np

# pipecat.audio.utils imports `loudness` (a C extension for volume meters) at module level; the
# model wrapper never calls it, so an empty module stands in rather than one more install.
sys.modules.setdefault("loudness", types.ModuleType("loudness"))
from pipecat.audio.vad.silero import SileroOnnxModel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "host/tests/fixtures/smart-turn"
OUT = ROOT / "host/tests/fixtures/silero/reference.json"
# (fixture WAV, or milliseconds of silence)
PARTS = [300, "weather.wav", 700, "number.wav", 500]


def read(name):
    with wave.open(str(FIXTURES / name)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def main():
    pieces = [np.zeros(p * 16, dtype=np.int16) if isinstance(p, int) else read(p) for p in PARTS]
    audio = np.concatenate(pieces).astype(np.float32) / 32768.0
    path = str(resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx"))
    model = SileroOnnxModel(path)
    probabilities = []
    for start in range(0, len(audio) - 511, 512):
        p = model(audio[start : start + 512], 16000)[0]
        probabilities.append(round(float(p.item()), 6))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"parts": PARTS, "probabilities": probabilities}, indent=1) + "\n")
    print(f"{len(probabilities)} windows -> {OUT}")


if __name__ == "__main__":
    main()
