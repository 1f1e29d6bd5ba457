// {{name}}: a barge-in policy for voice-host (slot `barge_in`, world `barge-in-policy`).
//
// `decide` is called when the user starts speaking while the agent speaks, and again on each
// new interim transcript of that barge-in until it answers something other than 'wait'. This
// stub is a simple rule in the spirit of the host's built-in one: backchannels ("uh-huh",
// "yeah") are ignored; five words interrupt once the agent has spoken three seconds, unless a
// protected phrase is playing; anything else waits for more words.
//
// The barge-in policy is called on every interim transcript while the agent speaks: the
// JavaScript engine's per-call cost (~0.3 ms) makes Rust the better fit for it.
import { log } from 'voice:policy/log@{{wit_version}}';

// Words a listener says without meaning to take the turn.
const BACKCHANNELS = new Set(['uh-huh', 'mm-hmm', 'yeah', 'yes', 'okay', 'ok', 'right']);
// Words that interrupt the agent.
const THRESHOLD_WORDS = 5;
// The agent is never interrupted before it has been heard this long.
const MIN_AGENT_MS = 3000;

function isBackchannel(text) {
  const words = text.toLowerCase().split(/\s+/).filter((w) => w !== '')
    .map((w) => w.replace(/^[.,!?;:]+|[.,!?;:]+$/g, ''));
  return words.length > 0 && words.every((w) => BACKCHANNELS.has(w));
}

// Receives `[plugins.barge_in] config` as [key, value] pairs (the host adds threshold_words,
// min_agent_ms and protect_phrases). Return to accept it, or throw a string to refuse it; this
// stub accepts anything.
export function init(config) {}

// Records have camelCase fields; the answer is 'ignore', 'interrupt', 'pause' or 'wait'.
export function decide(event) {
  if (event.wordCount > 0 && isBackchannel(event.interimText)) return 'ignore';
  // Not 'ignore' while held back: the host asks again on the next event.
  const heldBack = event.protectedPlaying || event.agentSpokenMs < MIN_AGENT_MS;
  if (!heldBack && event.wordCount >= THRESHOLD_WORDS) return 'interrupt';
  return 'wait';
}
