"""{{name}}: an intent analyzer for voice-host (slot `intent`, world `intent-analyzer`).

`analyze` is called once per final user turn; its answer goes to the prompt shaper. This stub
finds no intent, as the host's built-in behaviour does: replace it with your rules.

componentize-py makes a new `WitWorld` object for every call: keep a session's state in module
globals. Work done at import time is snapshotted into the component when it is built, so build
tables and compile patterns there rather than in `init`.
"""
import wit_world
from wit_world.imports import log, types  # log.log(log.Level.DEBUG, "...") writes to the host log
from componentize_py_types import Err  # raise Err("reason") in init to refuse a configuration


class WitWorld(wit_world.WitWorld):
    def init(self, config):
        """Receives `[plugins.intent] config` as (key, value) pairs; this stub accepts anything."""
        return None

    def analyze(self, input):
        """The intent of the turn, e.g. `types.Intent("weather", 0.9, [("city", "paris")])`,
        or None when nothing matched. `input` has `transcript`, `turn` and `history`."""
        return None
