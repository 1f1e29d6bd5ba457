"""{{name}}: an end-of-turn policy for voice-host (slot `turn`, world `end-of-turn-policy`).

`decide` is called while the user holds the floor: at each short pause in their speech, at the
end of speech, on new words after a pause and when a wait runs out. `TurnDecision_EndTurn()`
answers at once; `TurnDecision_Wait(ms)` holds the turn open at least that long, counted from the
moment the event describes (its `silence_ms`); `Wait(0)` leaves it to the host's silence rules.
This stub keeps the host's rules except after a word that promises more ("and", "um", "to"...):
then it holds the turn open for 1.5 s.
"""
import wit_world
from wit_world import TurnDecision_Wait
from wit_world.imports import log  # log.log(log.Level.DEBUG, "...") writes to the host log
from componentize_py_types import Err  # raise Err("reason") in init to refuse a configuration

# Words after which a speaker is rarely done.
HOLD_AFTER = {"and", "but", "or", "so", "um", "uh", "to", "the", "a", "for"}
# How long to hold the turn after one of them, in ms.
HOLD_MS = 1500


class WitWorld(wit_world.WitWorld):
    def init(self, config):
        """Receives `[plugins.turn] config` as (key, value) pairs; this stub accepts anything."""
        return None

    def decide(self, event):
        words = event.text.split()
        last = words[-1].strip(".,!?;:").lower() if words else ""
        if last in HOLD_AFTER:
            return TurnDecision_Wait(HOLD_MS)
        return TurnDecision_Wait(0)
