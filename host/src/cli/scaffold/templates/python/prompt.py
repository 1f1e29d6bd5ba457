"""{{name}}: a prompt shaper for voice-host (slot `prompt`, world `prompt-shaper`).

`shape` is called once per final user turn and says what the LLM is asked (or answers directly,
without the LLM). This stub passes the conversation through as the host's built-in behaviour
does: the system prompt (when there is one), the history, then the user's turn.

componentize-py makes a new `WitWorld` object for every call: keep a session's state in module
globals. Work done at import time is snapshotted into the component when it is built.
"""
import wit_world
from wit_world import GenerationSettings, LlmRequest, PromptOutput_Direct, PromptOutput_Llm
from wit_world.imports import log, types  # log.log(log.Level.DEBUG, "...") writes to the host log
from componentize_py_types import Err  # raise Err("reason") in init to refuse a configuration


class WitWorld(wit_world.WitWorld):
    def init(self, config):
        """Receives `[plugins.prompt] config` as (key, value) pairs; this stub accepts anything."""
        return None

    def shape(self, input):
        """An LLM request, or `PromptOutput_Direct("text")` to speak without the LLM."""
        messages = []
        if input.system_prompt:
            messages.append(types.ChatMessage(types.Role.SYSTEM, input.system_prompt))
        messages.extend(input.history)
        messages.append(types.ChatMessage(types.Role.USER, input.user_turn))
        # None keeps the host's settings (LLM_TEMPERATURE, LLM_MAX_TOKENS).
        return PromptOutput_Llm(LlmRequest(messages, GenerationSettings(None, None)))
