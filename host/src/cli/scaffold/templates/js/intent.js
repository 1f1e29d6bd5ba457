// {{name}}: an intent analyzer for voice-host (slot `intent`, world `intent-analyzer`).
//
// `analyze` is called once per final user turn; its answer goes to the prompt shaper. This stub
// finds no intent, as the host's built-in behaviour does: replace it with your rules.
//
// The module's top level runs once, when the component is built, and is snapshotted into it:
// build tables there. Module globals are the session's state (one instance per session).
// log('debug', '...') writes to the host's log, tagged with this plug-in's name and version.
import { log } from 'voice:policy/log@{{wit_version}}';

// Receives `[plugins.intent] config` as [key, value] pairs. Return to accept it, or throw a
// string (`throw 'reason'`) to refuse it; this stub accepts anything.
export function init(config) {}

// The intent of the turn, e.g. { name: 'weather', confidence: 0.9, slots: [['city', 'paris']] },
// or undefined when nothing matched. `input` has `transcript`, `turn` and `history`.
export function analyze(input) {
  return undefined;
}
