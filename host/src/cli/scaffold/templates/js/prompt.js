// {{name}}: a prompt shaper for voice-host (slot `prompt`, world `prompt-shaper`).
//
// `shape` is called once per final user turn and says what the LLM is asked (or answers
// directly, without the LLM). This stub passes the conversation through as the host's built-in
// behaviour does: the system prompt (when there is one), the history, then the user's turn.
//
// The module's top level runs once, when the component is built, and is snapshotted into it:
// build tables there. Module globals are the session's state (one instance per session).
// log('debug', '...') writes to the host's log, tagged with this plug-in's name and version.
import { log } from 'voice:policy/log@{{wit_version}}';

// Receives `[plugins.prompt] config` as [key, value] pairs. Return to accept it, or throw a
// string (`throw 'reason'`) to refuse it; this stub accepts anything.
export function init(config) {}

// An LLM request, or { tag: 'direct', val: 'text' } to speak without the LLM. Records have
// camelCase fields (input.systemPrompt, input.userTurn).
export function shape(input) {
  const messages = [];
  if (input.systemPrompt) messages.push({ role: 'system', content: input.systemPrompt });
  messages.push(...input.history);
  messages.push({ role: 'user', content: input.userTurn });
  // undefined keeps the host's settings (LLM_TEMPERATURE, LLM_MAX_TOKENS).
  return { tag: 'llm', val: { messages, settings: { temperature: undefined, maxTokens: undefined } } };
}
