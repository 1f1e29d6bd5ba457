"""Intent analyzer written in Python: regular-expression rules whose named groups become slots.

Built with componentize-py into a component for the `intent-analyzer` world (see
scripts/build-plugins.sh). It shows a plug-in in a language other than Rust; the host gives such
components inert WASI stand-ins (empty environment, no files, frozen clocks).

Configuration keys (`[plugins.intent.config]`):
- `intent.<name>` = a regular expression (case-insensitive, searched in the transcript); named
  groups such as `(?P<city>...)` become slots. Adds or replaces a rule.
- `confidence` = the confidence reported for a match (default 0.9).
- `defaults` = `false`: start without the built-in rules.

Rules are tried in order (built-in ones first, then configured ones by key order); the first
match wins.

componentize-py creates a fresh `WitWorld` object for every call, so state that must last from
`init` to later calls (the session's instance keeps it) lives in module globals. Work done at
import time is snapshotted into the component when it is built, so the built-in rules are
compiled there: a session's `init` then costs microseconds instead of milliseconds.
"""
import re

import wit_world
from wit_world.imports import log, types
from componentize_py_types import Err

DEFAULT_RULES = [
    ("repeat", r"\b(?:repeat that|say that again|come again|pardon)\b"),
    ("goodbye", r"\b(?:good ?bye|bye|see you|hang up)\b"),
    ("time", r"\bwhat time is it\b|\bthe time\b(?: in (?P<city>[a-z]+(?: [a-z]+)?))?"),
    ("weather", r"\b(?:weather|forecast|raining)\b(?:.*?\bin (?P<city>[a-z]+(?: [a-z]+)?))?"),
]

# Compiled once, at build time (see above).
DEFAULT_COMPILED = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in DEFAULT_RULES}

# The compiled rules of this instance (set by `init`) and the confidence reported on a match.
RULES = []
CONFIDENCE = 0.9


class WitWorld(wit_world.WitWorld):
    def init(self, config):
        global RULES, CONFIDENCE
        settings = dict(config)
        use_defaults = settings.get("defaults", "true").strip().lower() != "false"
        rules = dict(DEFAULT_COMPILED) if use_defaults else {}
        for key, value in config:
            if key.startswith("intent."):
                name = key[len("intent."):]
                try:
                    rules[name] = re.compile(value, re.IGNORECASE)
                except re.error as e:
                    raise Err(f"{key}: {e}")
            elif key not in ("confidence", "defaults"):
                raise Err(f"unknown key {key!r}")
        try:
            CONFIDENCE = float(settings.get("confidence", "0.9"))
        except ValueError:
            raise Err(f"confidence is not a number: {settings['confidence']!r}")
        RULES = list(rules.items())
        log.log(log.Level.DEBUG, f"{len(RULES)} rules")

    def analyze(self, input):
        text = " ".join(input.transcript.split())
        for name, rule in RULES:
            found = rule.search(text)
            if found:
                slots = [(k, v.strip().lower()) for k, v in found.groupdict().items() if v]
                return types.Intent(name=name, confidence=CONFIDENCE, slots=slots)
        return None
