// The voice-host browser client: microphone to /agent (protocol v1, docs/protocol.md), the
// agent's voice through a jitter buffer, the live transcript, and each turn's latency.

const $ = (id) => document.getElementById(id);
const ui = {
  form: $('connect-form'), url: $('ws-url'), agent: $('agent'), token: $('token'),
  start: $('start'), stop: $('stop'),
  state: $('state'), error: $('error'), mic: $('mic-level'), vad: $('vad'), stats: $('audio-stats'),
  transcript: $('transcript'), metrics: document.querySelector('#metrics tbody'),
};

const INPUT_RATE = 16000;
const PLAYBACK_REPORT_MS = 100;
const RECONNECT_MAX_MS = 10000;

const CLOSE_REASONS = {
  1001: 'the server is restarting',
  1008: 'the server ended the session (policy)',
  1009: 'a message was too large',
  1011: 'the server hit an internal error',
};

const state = {
  ctx: null, mic: null, capture: null, player: null,
  ws: null, wanted: false, retryMs: 1000, retryTimer: null, opened: false,
  outputRate: INPUT_RATE,
  reply: 0, // numbers the agent's replies, so playback reports name the reply being heard
  replyTurn: null, // the host's turn number of the reply being streamed
  lastReport: 0, lastPlayed: 0,
  receivedSamples: 0, playedSamples: 0, playedBefore: 0, underruns: 0, framesSent: 0,
  droppedSamples: 0, // queued agent audio dropped by barge-ins (never played)
  rows: new Map(), // "user:N" / "agent:N" -> <li>
};

function defaultUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return location.host ? `${scheme}//${location.host}/agent` : 'ws://127.0.0.1:4010/agent';
}

function setState(kind, text) {
  ui.state.className = `state ${kind}`;
  ui.state.textContent = text;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

function note(text) {
  const li = document.createElement('li');
  li.className = 'note';
  li.textContent = text;
  ui.transcript.append(li);
}

function row(kind, turn) {
  const key = `${kind}:${turn}`;
  let li = state.rows.get(key);
  if (!li || !li.isConnected) {
    li = document.createElement('li');
    li.className = kind;
    li.dataset.turn = String(turn);
    ui.transcript.append(li);
    state.rows.set(key, li);
  }
  return li;
}

function updateStats() {
  const sec = (samples) => (samples / state.outputRate).toFixed(1);
  const played = state.playedBefore + state.playedSamples;
  ui.stats.dataset.receivedMs = String(Math.round((state.receivedSamples / state.outputRate) * 1000));
  ui.stats.dataset.playedMs = String(Math.round((played / state.outputRate) * 1000));
  ui.stats.dataset.underruns = String(state.underruns);
  ui.stats.dataset.framesSent = String(state.framesSent);
  ui.stats.dataset.droppedMs = String(Math.round((state.droppedSamples / state.outputRate) * 1000));
  ui.stats.textContent = `Agent audio: ${sec(state.receivedSamples)} s received, ${sec(played)} s played`
    + (state.underruns ? `, ${state.underruns} gaps` : '');
}

// ---- audio -------------------------------------------------------------------------------

async function startAudio() {
  if (state.ctx) return;
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    throw new Error('This browser cannot capture audio here. Use a current browser over https or on localhost.');
  }
  const ctx = new AudioContext({ latencyHint: 'interactive' });
  await ctx.audioWorklet.addModule('worklet.js');
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (e) {
    await ctx.close();
    throw new Error(e && e.name === 'NotAllowedError'
      ? 'Microphone access was denied. Allow it in the browser and try again.'
      : `No microphone could be opened (${e && e.message ? e.message : e}).`);
  }
  // Ask the host for audio at the context's own rate so playback needs no resampling.
  state.outputRate = ctx.sampleRate >= 8000 && ctx.sampleRate <= 48000 ? ctx.sampleRate : INPUT_RATE;
  const capture = new AudioWorkletNode(ctx, 'pcm16-capture', { numberOfOutputs: 1, outputChannelCount: [1] });
  const player = new AudioWorkletNode(ctx, 'pcm16-player', {
    numberOfInputs: 0, outputChannelCount: [1],
    processorOptions: { sourceRate: state.outputRate, prebufferMs: 80 },
  });
  capture.port.onmessage = (e) => onCaptured(e.data);
  player.port.onmessage = (e) => (e.data.type === 'dropped' ? onDropped(e.data) : onPlayed(e.data));
  // The capture node's output is silent; connecting it keeps the graph pulling it.
  const mute = new GainNode(ctx, { gain: 0 });
  ctx.createMediaStreamSource(mic).connect(capture).connect(mute).connect(ctx.destination);
  player.connect(ctx.destination);
  if (ctx.state === 'suspended') await ctx.resume();
  Object.assign(state, { ctx, mic, capture, player });
}

async function stopAudio() {
  if (state.mic) state.mic.getTracks().forEach((t) => t.stop());
  if (state.ctx) await state.ctx.close();
  Object.assign(state, { ctx: null, mic: null, capture: null, player: null });
  ui.mic.value = 0;
}

function onCaptured({ frame, level }) {
  ui.mic.value = Math.min(1, level * 4);
  if (state.ws && state.ws.readyState === WebSocket.OPEN && state.opened) {
    state.ws.send(frame);
    state.framesSent += 1;
  }
}

function onDropped({ samples }) {
  state.droppedSamples += samples;
  updateStats();
}

function onPlayed({ reply, samples, underruns }) {
  state.underruns = underruns;
  if (reply !== state.lastPlayed) {
    state.playedBefore += state.playedSamples;
    state.playedSamples = 0;
    state.lastPlayed = reply;
  }
  state.playedSamples = samples;
  updateStats();
  // Tell the host how much of the current reply was heard (it keeps only that in memory).
  const now = performance.now();
  if (reply === state.reply && now - state.lastReport >= PLAYBACK_REPORT_MS) {
    state.lastReport = now;
    send({
      type: 'playback',
      turn: state.replyTurn,
      played_ms: Math.floor((samples / state.outputRate) * 1000),
    });
  }
}

function playAgentAudio(buffer) {
  if (!state.player) return;
  const pcm = new Int16Array(buffer);
  const samples = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
  state.receivedSamples += pcm.length;
  state.player.port.postMessage({ type: 'audio', reply: state.reply, samples }, [samples.buffer]);
  updateStats();
}

function endReply(flush) {
  if (state.player) state.player.port.postMessage(flush ? { type: 'flush' } : { type: 'end', reply: state.reply });
  state.reply += 1;
}

// ---- protocol ----------------------------------------------------------------------------

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function fmt(v) {
  return v === null || v === undefined ? '–' : (Math.round(v * 10) / 10).toString();
}

function onServerMessage(m) {
  switch (m.type) {
    case 'ready':
      state.retryMs = 1000;
      setState('live', 'Live: speak now');
      showError('');
      break;
    case 'vad':
      ui.vad.textContent = m.event === 'speech_start' ? 'you are speaking' : 'silent';
      ui.vad.classList.toggle('speaking', m.event === 'speech_start');
      break;
    case 'transcript': {
      const li = row('user', m.turn);
      li.textContent = m.text;
      li.classList.toggle('interim', !m.final);
      li.classList.toggle('final', !!m.final);
      break;
    }
    case 'agent_text': {
      state.replyTurn = m.turn;
      const li = row('agent', m.turn);
      li.append(document.createTextNode(m.delta));
      break;
    }
    case 'pause':
      // The user may be taking the turn: stop at once, keep what is buffered.
      if (state.player) state.player.port.postMessage({ type: 'pause' });
      break;
    case 'resume':
      if (state.player) state.player.port.postMessage({ type: 'resume' });
      break;
    case 'interrupt':
      endReply(true);
      if (state.rows.has(`agent:${m.turn}`)) row('agent', m.turn).classList.add('interrupted');
      break;
    case 'agent_done': {
      if (!m.interrupted) {
        endReply(false);
        row('agent', m.turn).classList.add('done');
        break;
      }
      // A reply dropped before any of it was shown leaves no row.
      if (!state.rows.has(`agent:${m.turn}`) && !m.text) break;
      // Show what the user heard (what the agent remembers) and strike the rest.
      const li = row('agent', m.turn);
      const said = li.textContent;
      li.classList.add('interrupted');
      if (m.text !== undefined && said.startsWith(m.text)) {
        const rest = document.createElement('span');
        rest.className = 'unheard';
        rest.textContent = said.slice(m.text.length);
        li.replaceChildren(document.createTextNode(m.text), rest);
      }
      break;
    }
    case 'turn_metrics': {
      const tr = document.createElement('tr');
      for (const v of [m.turn, m.transcript_final_ms, m.plugins_ms, m.llm_first_token_ms,
        m.first_sentence_ms, m.tts_first_audio_ms, m.first_audio_sent_ms, m.host_processing_ms]) {
        const td = document.createElement('td');
        td.textContent = fmt(v);
        tr.append(td);
      }
      ui.metrics.append(tr);
      break;
    }
    case 'error':
      showError(`${m.message} (${m.code})`);
      break;
    case 'shutdown':
      setState('reconnecting', 'Server restarting: will reconnect');
      break;
    default:
      break; // fields and messages are only ever added: ignore the unknown
  }
}

function connect() {
  clearTimeout(state.retryTimer);
  const url = ui.url.value.trim();
  // Browsers cannot set headers on a WebSocket: the session token travels as a subprotocol
  // entry (docs/security.md); the server answers with "voice-host.v1" only.
  const token = ui.token.value.trim();
  let ws;
  try {
    ws = token ? new WebSocket(url, ['voice-host.v1', `token.${token}`]) : new WebSocket(url);
  } catch (e) {
    fail(`"${url}" is not a WebSocket URL (it should look like ws://host:4010/agent).`);
    return;
  }
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  state.opened = false;
  setState('connecting', 'Connecting…');
  ws.onopen = () => {
    state.opened = true;
    const start = {
      type: 'start',
      audio: { encoding: 'pcm16', sample_rate: INPUT_RATE },
      output: { encoding: 'pcm16', sample_rate: state.outputRate },
    };
    const agent = ui.agent.value.trim();
    if (agent) start.agent = agent;
    ws.send(JSON.stringify(start));
  };
  ws.onmessage = (e) => {
    if (typeof e.data === 'string') {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      onServerMessage(m);
    } else {
      playAgentAudio(e.data);
    }
  };
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (state.player) endReply(true);
    if (!state.wanted) return;
    const why = !state.opened
      ? `Could not reach the agent at ${url}: the server may be down, full, or the address wrong.`
      : `The connection dropped${CLOSE_REASONS[e.code] ? `: ${CLOSE_REASONS[e.code]}` : ''}.`;
    showError(`${why} Reconnecting in ${Math.round(state.retryMs / 1000)} s…`);
    setState('reconnecting', 'Reconnecting…');
    note('connection lost');
    state.retryTimer = setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, RECONNECT_MAX_MS);
  };
}

function fail(text) {
  state.wanted = false;
  showError(text);
  setState('failed', 'Not connected');
  ui.start.disabled = false;
  ui.stop.disabled = true;
}

async function start() {
  showError('');
  state.wanted = true;
  ui.start.disabled = true;
  ui.stop.disabled = false;
  localStorage.setItem('voice-host.ws', ui.url.value.trim());
  try {
    await startAudio();
  } catch (e) {
    fail(e.message);
    return;
  }
  connect();
}

async function stop() {
  state.wanted = false;
  clearTimeout(state.retryTimer);
  if (state.ws) {
    send({ type: 'stop' });
    state.ws.close(1000);
    state.ws = null;
  }
  await stopAudio();
  setState('idle', 'Not connected');
  ui.start.disabled = false;
  ui.stop.disabled = true;
}

const params = new URLSearchParams(location.search);
ui.url.value = params.get('ws') || localStorage.getItem('voice-host.ws') || defaultUrl();
ui.agent.value = params.get('agent') || '';
ui.token.value = params.get('token') || '';
if (params.has('token')) {
  // Keep the token out of the address bar, history and bookmarks.
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : ''));
}
ui.form.addEventListener('submit', (e) => { e.preventDefault(); start(); });
ui.stop.addEventListener('click', () => { stop(); });
window.addEventListener('pagehide', () => send({ type: 'stop' }));
updateStats();
