"""{{name}}: a barge-in policy for voice-host (slot `barge_in`, world `barge-in-policy`).

`decide` is called when the user starts speaking while the agent speaks, and again on each new
interim transcript of that barge-in until it answers something other than WAIT. This stub is a
simple rule in the spirit of the host's built-in one: backchannels ("uh-huh", "yeah") are
ignored; five words interrupt once the agent has spoken three seconds, unless a protected phrase
is playing; anything else waits for more words.

The barge-in policy is called on every interim transcript while the agent speaks: Python's
per-call cost (50-100 us) and memory (5.5 MiB per session) make Rust the better fit for it.
"""
import wit_world
from wit_world import Decision
from wit_world.imports import log  # log.log(log.Level.DEBUG, "...") writes to the host log
from componentize_py_types import Err  # raise Err("reason") in init to refuse a configuration

# Words a listener says without meaning to take the turn.
BACKCHANNELS = {"uh-huh", "mm-hmm", "yeah", "yes", "okay", "ok", "right"}
# Words that interrupt the agent.
THRESHOLD_WORDS = 5
# The agent is never interrupted before it has been heard this long.
MIN_AGENT_MS = 3000


def is_backchannel(text):
    words = [w.strip(".,!?;:") for w in text.lower().split()]
    return bool(words) and all(w in BACKCHANNELS for w in words)


class WitWorld(wit_world.WitWorld):
    def init(self, config):
        """Receives `[plugins.barge_in] config` as (key, value) pairs (the host adds
        threshold_words, min_agent_ms and protect_phrases); this stub accepts anything."""
        return None

    def decide(self, event):
        if event.word_count > 0 and is_backchannel(event.interim_text):
            return Decision.IGNORE
        # Not IGNORE while held back: the host asks again on the next event.
        held_back = event.protected_playing or event.agent_spoken_ms < MIN_AGENT_MS
        if not held_back and event.word_count >= THRESHOLD_WORDS:
            return Decision.INTERRUPT
        return Decision.WAIT
