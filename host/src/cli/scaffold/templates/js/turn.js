// {{name}}: an end-of-turn policy for voice-host (slot `turn`, world `end-of-turn-policy`).
//
// `decide` is called while the user holds the floor: at each short pause in their speech, at
// the end of speech, on new words after a pause and when a wait runs out. `{ tag: 'end-turn' }`
// answers at once; `{ tag: 'wait', val: ms }` holds the turn open at least that long, counted
// from the moment the event describes (its `silenceMs`); a wait of 0 leaves it to the host's
// silence rules. This stub keeps the host's rules except after a word that promises more ("and",
// "um", "to"...): then it holds the turn open for 1.5 s.
import { log } from 'voice:policy/log@{{wit_version}}';

// Words after which a speaker is rarely done.
const HOLD_AFTER = new Set(['and', 'but', 'or', 'so', 'um', 'uh', 'to', 'the', 'a', 'for']);
// How long to hold the turn after one of them, in ms.
const HOLD_MS = 1500;

// Receives `[plugins.turn] config` as [key, value] pairs. Return to accept it, or throw a
// string to refuse it; this stub accepts anything.
export function init(config) {}

// Records have camelCase fields.
export function decide(event) {
  const words = event.text.split(/\s+/).filter((w) => w !== '');
  const last = words.length ? words[words.length - 1].replace(/[.,!?;:]+$/g, '').toLowerCase() : '';
  if (HOLD_AFTER.has(last)) return { tag: 'wait', val: HOLD_MS };
  return { tag: 'wait', val: 0 };
}
