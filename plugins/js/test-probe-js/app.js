// Test-only plug-in: reports what a JavaScript component (componentize-js) can reach inside the
// host's sandbox.
//
// `analyze` answers intent `probe` whose slots describe the environment, clocks, randomness and
// network as the guest sees them. The transcript `throw` makes it throw an exception, `loop`
// makes it loop forever, `clock` reads `performance.now()`, `fetch` calls `fetch()` and `print`
// writes to the console.

// Calls answered by this instance (module state: each session has its own instance).
let CALLS = 0;

/** `ok:<value>`, or `error:<name>` of what `action` threw. */
function attempt(action) {
  try {
    return 'ok:' + String(action());
  } catch (e) {
    return 'error:' + (e && e.name ? e.name : typeof e);
  }
}

export function init(config) {
  CALLS = 0;
}

export function analyze(input) {
  CALLS += 1;
  const command = input.transcript.trim().toLowerCase();
  if (command === 'throw') {
    throw new Error('probe threw on purpose');
  } else if (command === 'loop') {
    for (;;) {}
  } else if (command === 'clock') {
    return { name: 'probe', confidence: 1, slots: [['clock', String(performance.now())]] };
  } else if (command === 'print') {
    console.log('probe says hello on stdout');
    console.error('probe says hello on stderr');
  } else if (command === 'fetch') {
    // `fetch` is defined, but the engine was built without its HTTP feature.
    fetch('http://127.0.0.1:9/');
    return { name: 'probe', confidence: 1, slots: [['fetch', 'sent']] };
  }
  const slots = [
    ['calls', String(CALLS)],
    ['process', typeof process],
    ['env', attempt(() => Object.keys(process.env).length)],
    ['time', String(Date.now())],
    ['random', String(Math.random())],
    ['crypto', attempt(() => Array.from(crypto.getRandomValues(new Uint8Array(4))).join(','))],
  ];
  return { name: 'probe', confidence: 1, slots };
}
