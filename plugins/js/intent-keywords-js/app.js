// Reference intent analyzer in JavaScript: phrase rules, configurable through `init`; the same
// rules, configuration keys and answers as the Rust `plugins/intent-keywords`.
//
// Built with componentize-js (SpiderMonkey) into a component for the `intent-analyzer` world
// (see scripts/build-plugins.sh), with every optional WASI feature disabled: the component
// imports nothing but `voice:policy/log`.
//
// A rule names an intent and the phrases that signal it; a rule matches when one of its phrases
// occurs in the transcript as whole words (case and punctuation ignored). The longest matching
// phrase wins (on a tie, the rule defined last). Slots capture the word right after a trigger
// word.
//
// Configuration keys (`[plugins.intent.config]`):
// - `intent.<name>` = "phrase one, phrase two": add (or replace) a rule.
// - `slot.<name>` = "trigger": capture the word after `trigger` as slot `<name>`
//   (e.g. `slot.city = "in"` turns "weather in paris" into `city = paris`).
// - `defaults` = `false`: start without the built-in rules.
// Other keys are logged as a warning and ignored; an empty `<name>` refuses the configuration.
//
// Built-in rules: `repeat`, `goodbye`, `help`, `weather` (with slot `city` after "in").
//
// The top level of this module runs once, when the component is built, and is snapshotted into
// it; each session's instance then keeps its rules in the module globals below.
import { log } from 'voice:policy/log@0.1.2';

const DEFAULT_INTENTS = [
  ['repeat', 'repeat that, say that again, repeat, come again, what did you say, pardon'],
  ['goodbye', "goodbye, bye, bye bye, that's all, hang up"],
  ['help', 'help, what can you do, how does this work'],
  ['weather', 'weather, forecast, is it raining, temperature outside'],
];

const DEFAULT_SLOTS = [['city', 'in']];

// The non-ASCII code points for which Rust's `char::is_alphanumeric` is true (Unicode
// Alphabetic or Numeric, as of Rust 1.95), as ranges: base-36 pairs of (distance from the end of
// the previous range, length - 1). Generated with rustc from `char::is_alphanumeric` over every
// code point; decoded once, when the component is built.
const ALNUM_RANGES = decodeRanges(
  '4q,0,8,1,2,0,4,1,2,2,2,m,2,u,2,cp,5,b,f,4,8,0,2,0,2f,0,u,h,2,1,3,3,2,0,7,0,2,2,2,0,2,j,2,' +
  '2a,2,3u,9,4l,2,11,3,0,7,14,14,d,2,0,2,1,2,1,2,0,9,q,5,3,u,a,6,1j,2,g,5,2t,2,7,5,7,5,f,3,0,' +
  'h,1b,e,2s,f,16,a,1,5,0,6,n,3,i,k,o,8,a,6,n,2,6,8,0,9,15,b,b,4,6,7,23,2,f,2,2,5,e,3,9,2,i,' +
  '2,7,3,1,3,l,2,6,2,0,4,3,4,7,3,1,3,1,2,0,9,0,5,1,2,4,3,b,3,5,3,0,5,2,2,5,5,1,3,l,2,6,2,1,2,' +
  '1,2,1,5,4,5,1,3,1,5,0,8,3,2,0,8,f,c,2,2,8,2,2,2,l,2,6,2,1,2,4,4,8,2,2,2,1,4,0,g,3,3,9,a,3,' +
  '5,2,2,7,3,1,3,l,2,6,2,1,2,4,4,7,3,1,3,1,a,1,5,1,2,4,3,9,2,6,b,1,2,5,4,2,2,3,4,1,2,0,2,1,4,' +
  '1,4,2,4,b,5,4,4,2,2,2,4,0,7,0,f,c,e,c,2,2,2,m,2,f,4,7,2,2,2,2,9,1,2,2,2,1,3,3,3,9,9,6,2,3,' +
  '2,7,2,2,2,m,2,9,2,4,4,7,2,2,2,2,9,1,6,2,2,3,3,9,2,2,d,c,2,2,2,14,3,7,2,2,2,2,2,0,6,f,3,i,' +
  '2,5,2,2,2,h,4,n,2,8,2,0,3,6,9,5,2,0,2,7,7,9,3,1,e,1l,6,6,7,0,3,9,14,1,2,0,2,4,2,n,2,0,2,i,' +
  '2,2,3,4,2,0,7,0,3,9,3,3,x,0,w,j,d,7,2,z,5,i,5,f,2,z,1w,1i,2,0,3,e,7,25,3,11,2,0,6,0,3,16,' +
  '2,98,2,3,3,6,2,0,2,3,3,14,2,3,3,w,2,3,3,6,2,0,2,3,3,e,2,1k,2,3,3,1u,f,j,4,f,h,2d,3,5,4,h7,' +
  '3,g,2,p,6,22,4,a,8,j,c,k,d,j,d,c,2,2,2,1,d,1f,3,i,f,0,5,0,4,9,7,9,n,9,7,2g,8,16,6,1x,b,u,' +
  '2,b,5,8,e,13,3,4,c,17,5,p,7,a,12,r,5,1q,3,j,c,9,7,9,e,0,o,1,c,2,1e,1f,2,e,2,7,4,9,13,15,3,' +
  '1l,2,a,f,1i,a,9,4,1c,3,a,6,16,3,2,16,3,2,5,2,1,4,0,6,5b,k,x,c,7p,3,5,3,11,3,5,3,7,2,0,2,0,' +
  '2,0,2,u,3,1g,2,6,2,0,4,2,2,6,4,3,3,5,5,c,6,2,2,6,38,1,3,5,6,a,7,c,2u,0,5,0,3,9,2,0,4,4,7,' +
  '0,2,0,2,0,2,3,2,a,3,3,6,4,5,0,2,1l,k7,1n,r,21,hj,t,vh,6c,7,3,4,1,a,0,3,11,2,0,6,0,3,1j,8,' +
  '0,h,m,a,6,2,6,2,6,2,6,2,6,2,6,2,6,2,6,2,v,1c,0,d2,2,q,8,8,4,3,4,5,2d,7,2,2,2h,2,3,6,16,2,' +
  '2l,4,3,b,v,1d,f,x,9,v,7,2,e,x,9,14,e,8x,533,1t,h3g,1w,19,3,7g,4,r,l,1a,6,7,4,34,14,8,3,2u,' +
  '3,29,l,k,2,w,9,5,b,1f,d,1v,2,0,b,9,p,5,4,0,2,19,6,y,e,s,4,1e,2,b,g,a,7,u,2,1i,a,d,3,9,7,m,' +
  '4,1w,2,0,2,0,p,2,3,f,3,3,c,5,3,5,3,5,a,6,2,6,2,16,2,d,7,3e,6,9,7,8mb,d,m,5,1c,6it,a5,3,2x,' +
  '13,6,d,4,6,b,2,c,2,4,2,0,2,1,2,1,2,2z,y,a2,j,1r,3,1h,15,b,39,4,2,3q,k,9,8,p,7,p,c,2g,4,5,' +
  '3,5,3,5,3,2,10,b,2,p,2,i,2,1,2,e,3,d,z,3e,d,18,d,1k,i,1,6t,s,4,1c,h,q,5,z,a,t,6,16,6,t,3,' +
  'z,5,7,2,4,17,4d,3,9,7,z,5,z,5,13,9,1f,d,a,2,e,2,6,2,1,2,a,2,e,2,6,2,1,4,1f,d,8m,a,l,b,7,p,' +
  '5,2,15,2,8,1y,5,3,0,2,17,2,1,4,0,3,m,3,u,3,11,9,8,1d,i,2,1,6,w,5,p,7,p,13,1j,5,j,3,1d,2,1,' +
  '6,7,2,2,2,s,b,8,o,u,2,v,x,7,2,r,7,4,h,1h,b,l,3,q,6,p,o,6,29,20,1k,1e,e,1e,8,19,9,9,7,11,4,' +
  '0,6,m,63,u,2,15,2,1,4,1,h,5,1f,2,4,13,9,l,c,3,s,h,1b,r,l,m,a,1x,d,t,2,4,b,1k,a,0,e,o,8,9,' +
  '7,1e,4,9,5,3,9,y,4,0,a,1r,2,3,a,c,2,0,5,j,c,h,2,x,3,0,7,3,1r,6,2,0,2,3,2,e,2,9,8,1k,8,9,7,' +
  '3,2,7,3,1,3,l,2,6,2,1,2,4,4,7,3,1,3,1,4,0,7,0,6,6,t,9,2,0,3,0,2,11,2,9,2,0,3,0,2,3,2,1,4,' +
  '0,2,0,19,1t,2,2,2,3,6,9,6,2,v,1t,3,1,2,0,9,9,4n,1h,3,6,q,5,z,1q,2,0,4,0,c,9,13,1h,3,0,8,9,' +
  '7,j,t,q,3,d,6,b,5,6,56,1k,2w,2a,d,7,3,0,3,7,2,1,2,t,2,1,3,1,3,3,e,9,1z,7,3,19,3,5,2,0,2,1,' +
  's,1e,3,9,i,1z,6,0,j,20,2w,7,2h,w,g,9,7,8,2,18,2,6,2,0,g,s,6,t,3,l,2,d,22,6,2,1,2,17,4,0,2,' +
  '1,2,2,2,0,3,1,9,9,7,5,2,1,2,10,2,1,2,3,2,0,8,9,7,17,5,9,6v,m,a,g,2,14,4,2,g,9,2f,0,g,k,18,' +
  'pl,2v,32,i,5f,219,2o,g,tr,i,5,q,32y,6,g6,5a2,1a,2,9,1c7,fs,8,u,2,9,7,26,2,9,7,t,j,1b,h,3,' +
  'd,9,2,6,2,k,6,i,c1,18,4,9,5j,2e,a,o,3,o,19,22,5,1k,8,g,1t,1,2,0,d,6,a,5p1,16,v,2q,36,6pq,' +
  '3,2,6,2,1,2,82,g,0,u,2,3,0,f,3,9,az,1s5,2y,6,c,4,8,8,9,5,0,382,9,153,j,d,j,31,o,3s,2c,2,' +
  '1y,2,1,3,0,3,1,3,3,2,b,2,0,2,6,2,1s,2,3,3,7,2,6,2,r,2,3,2,4,2,0,4,6,2,9f,3,o,2,o,2,u,2,o,' +
  '2,u,2,o,2,u,2,o,2,u,2,o,2,7,3,1d,1dt,u,7,5,5y,6,2,g,3,6,2,1,2,4,6,1p,y,0,35,18,b,6,3,9,5,' +
  '0,8y,t,j,17,5,9,d3,r,5,9,5z,t,3,a,5i,u,2,l,9,1,69,6,2,3,2,1,2,e,2,5g,3,8,1d,1v,4,0,4,0,5,' +
  '9,m0,1m,2,2,2,3,25,18,2,e,5f,3,2,q,2,1,2,0,3,0,2,9,2,3,2,0,2,0,7,0,5,0,2,0,2,0,2,2,2,1,2,' +
  '0,3,0,2,0,2,0,2,0,2,0,2,1,2,0,3,3,2,6,2,3,2,3,2,0,2,9,2,g,6,2,2,4,2,g,g5,c,10,p,7,p,7,p,' +
  '21z,9,sn,wyn,x,3dp,3,4gd,3,5rk,g,h9,1wj,f1,15v,3t6,6,6jt',
);

/** Whether code point `c` is part of a word: Rust's `char::is_alphanumeric`, or `'` or `-`. */
function isWordChar(c) {
  if (c < 0x80) {
    return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
      c === 0x27 || c === 0x2d;
  }
  // Binary search of ALNUM_RANGES (the SpiderMonkey of componentize-js has no `\p{...}` classes).
  let lo = 0;
  let hi = ALNUM_RANGES.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (c < ALNUM_RANGES[2 * mid]) hi = mid;
    else if (c > ALNUM_RANGES[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

// Calls run in SpiderMonkey's interpreter (no JIT inside WebAssembly): a loop over characters
// in JavaScript costs far more than the engine's own regular expressions and string methods, so
// the work below is done with those.
const NON_ASCII = /[^\x00-\x7f]/gu;
const ASCII_SEPARATORS = /[^a-zA-Z0-9'\-\x80-\uffff]+/g;
const LEADING_MARKS = /(^| )['-]+/g;
const TRAILING_MARKS = /['-]+(?= |$)/g;
const SPACES = / +/;

/** Lower-case words without punctuation (apostrophes and hyphens kept inside words). */
function words(text) {
  let lower = text.toLowerCase();
  if (lower.search(NON_ASCII) >= 0) {
    lower = lower.replace(NON_ASCII, (ch) => (isWordChar(ch.codePointAt(0)) ? ch : ' '));
  }
  const spaced = lower
    .replace(ASCII_SEPARATORS, ' ')
    .replace(LEADING_MARKS, '$1')
    .replace(TRAILING_MARKS, '')
    .trim();
  return spaced === '' ? [] : spaced.split(SPACES);
}

/** The phrases of a comma- or bar-separated list: their word count, and their words joined by
 * spaces and padded with a space at both ends, to be searched in a transcript padded alike. */
function parsePhrases(list) {
  return list
    .split(/[,|]/)
    .map(words)
    .filter((p) => p.length > 0)
    .map((p) => ({ length: p.length, key: ` ${p.join(' ')} ` }));
}

function setIntent(rules, name, phrases) {
  const parsed = parsePhrases(phrases);
  rules.intents = rules.intents.filter((r) => r.name !== name);
  if (parsed.length > 0) {
    rules.intents.push({ name, phrases: parsed });
  }
}

function setSlot(rules, name, trigger) {
  rules.slots = rules.slots.filter((s) => s.name !== name);
  const t = trigger.trim().toLowerCase();
  if (t.length > 0) {
    rules.slots.push({ name, trigger: t });
  }
}

/**
 * Every phrase of every rule, in the order the Rust plug-in prefers them: the longest phrase
 * wins, and on a tie the rule defined last (Rust's `max_by_key` keeps the last maximum). The
 * first phrase of this list found in a transcript decides its intent.
 */
function byPreference(intents) {
  const phrases = [];
  intents.forEach((rule, order) => {
    for (const p of rule.phrases) phrases.push({ name: rule.name, order, ...p });
  });
  return phrases.sort((a, b) => b.length - a.length || b.order - a.order);
}

function defaultRules() {
  const rules = { intents: [], slots: [] };
  for (const [name, phrases] of DEFAULT_INTENTS) setIntent(rules, name, phrases);
  for (const [name, trigger] of DEFAULT_SLOTS) setSlot(rules, name, trigger);
  return rules;
}

// Built once, when the component is built; copied by `init`.
const DEFAULTS = defaultRules();
const DEFAULT_PHRASES = byPreference(DEFAULTS.intents);

// The rules of this instance (the session's), set by `init`: phrases in order of preference
// (see `byPreference`) and slot rules.
let PHRASES = [];
let SLOTS = [];

const f32 = Math.fround;

/**
 * `init: func(config: config) -> result<_, string>`: returning is `ok`, throwing a string is
 * `err` with that reason.
 */
export function init(config) {
  const setting = config.find(([k]) => k === 'defaults');
  const useDefaults = setting === undefined || !['false', '0', 'no', 'off'].includes(setting[1].trim());
  const rules = useDefaults
    ? { intents: DEFAULTS.intents.slice(), slots: DEFAULTS.slots.slice() }
    : { intents: [], slots: [] };
  let ownIntents = !useDefaults;
  for (const [key, value] of config) {
    if (key.startsWith('intent.')) {
      const name = key.slice('intent.'.length);
      if (name === '') throw 'intent.<name>: the intent name is empty';
      setIntent(rules, name, value);
      ownIntents = true;
    } else if (key.startsWith('slot.')) {
      const name = key.slice('slot.'.length);
      if (name === '') throw 'slot.<name>: the slot name is empty';
      setSlot(rules, name, value);
    } else if (key !== 'defaults') {
      log('warn', `unknown config key ${JSON.stringify(key)} ignored`);
    }
  }
  // Most sessions keep the built-in rules, ordered when the component was built.
  PHRASES = ownIntents ? byPreference(rules.intents) : DEFAULT_PHRASES;
  SLOTS = rules.slots;
}

/** `analyze: func(input: intent-input) -> option<intent>`: `undefined` is `none`. */
export function analyze(input) {
  const text = words(input.transcript);
  if (text.length === 0) return undefined;
  const padded = ` ${text.join(' ')} `;
  let found = null;
  for (let i = 0; i < PHRASES.length; i++) {
    if (padded.includes(PHRASES[i].key)) {
      found = PHRASES[i];
      break;
    }
  }
  if (found === null) return undefined;
  const slots = [];
  for (let i = 0; i < SLOTS.length; i++) {
    const at = text.indexOf(SLOTS[i].trigger);
    if (at >= 0 && at + 1 < text.length) slots.push([SLOTS[i].name, text[at + 1]]);
  }
  // Longer phrases are stronger evidence; a phrase that is the whole turn is strongest. Computed
  // in single precision like the Rust plug-in, so both report the same number.
  const coverage = f32(f32(found.length) / f32(text.length));
  const confidence = Math.min(f32(f32(0.6) + f32(f32(0.4) * coverage)), 1);
  return { name: found.name, confidence, slots };
}

function decodeRanges(packed) {
  const numbers = packed.split(',').map((n) => parseInt(n, 36));
  const ranges = [];
  let end = 0;
  for (let i = 0; i < numbers.length; i += 2) {
    const start = end + numbers[i];
    end = start + numbers[i + 1];
    ranges.push(start, end);
  }
  return ranges;
}
