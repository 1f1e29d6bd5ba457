// Drives the voice-host page in headless Chromium whose microphone is a speech WAV file of three
// utterances, against a running host wired to the fake providers, and checks what a user would
// see and hear: each turn's transcript (interim then final, with the words spoken), the agent's
// reply to those words, its voice played without gaps, a barge-in that stops the agent at once
// (the queued audio is dropped, what was heard is kept), the page's playback reports reaching the
// host, the latency rows, and plain-words errors with reconnection once a dead endpoint comes back.
//
// Environment: HOST_URL (http://127.0.0.1:PORT, required), SPEECH_WAV (absolute path, required),
// EXPECT_TRANSCRIPTS (the three utterances, separated by "|"), STORY (the reply to the second,
// which the third interrupts), SCREENSHOT (PNG path), CHROMIUM (default /usr/bin/chromium),
// SESSION_TOKEN, TIMEOUT_MS (default 60000).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import net from 'node:net';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) {
    console.error(`browser test: ${name} must be set`);
    process.exit(2);
  }
  return v;
};

const hostUrl = env('HOST_URL').replace(/\/$/, '');
const wav = env('SPEECH_WAV');
const [askWeather, askStory, bargeIn] = env('EXPECT_TRANSCRIPTS').split('|');
const story = env('STORY');
const screenshot = env('SCREENSHOT', 'artifacts/browser.png');
const executablePath = env('CHROMIUM', '/usr/bin/chromium');
const timeout = Number(env('TIMEOUT_MS', '60000'));
const token = process.env.SESSION_TOKEN || '';
const wsUrl = hostUrl.replace(/^http/, 'ws') + '/agent';

const args = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${wav}`,
  '--autoplay-policy=no-user-gesture-required',
];

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

const words = (text) => text.toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').trim().split(/\s+/).join(' ');

async function metric(name) {
  const text = await (await fetch(`${hostUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

function pageUrl(ws) {
  const tokenParam = token ? `&token=${encodeURIComponent(token)}` : '';
  return `${hostUrl}/?ws=${encodeURIComponent(ws)}${tokenParam}`;
}

async function conversation(browser) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });

  await page.goto(pageUrl(wsUrl));
  check(await page.inputValue('#ws-url') === wsUrl, 'the endpoint comes from ?ws=');
  if (token) {
    check(await page.inputValue('#token') === token, 'the session token comes from ?token=');
    check(!page.url().includes('token='), 'the token is removed from the address bar');
  }
  // Remember whether an interim (greyed) transcript was ever shown before turning final.
  await page.evaluate(() => {
    window.sawInterim = false;
    new MutationObserver(() => {
      if (document.querySelector('#transcript li.user.interim')) window.sawInterim = true;
    }).observe(document.getElementById('transcript'), { subtree: true, childList: true, attributes: true, characterData: true });
  });
  const reportsBefore = await metric('voice_playback_reports_total');
  await page.click('#start');

  const wait = async (what, fn, arg) => {
    try {
      const handle = await page.waitForFunction(fn, arg, { timeout, polling: 100 });
      check(true, what);
      return handle.jsonValue();
    } catch {
      check(false, `${what} (timed out after ${timeout} ms)`);
      return null;
    }
  };
  // The turn number of the final transcript whose words are `said`, once it shows.
  const finalTurn = (said) => wait(`the final transcript shows the words "${said}"`, (w) => {
    const norm = (t) => t.toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').trim().split(/\s+/).join(' ');
    const li = [...document.querySelectorAll('#transcript li.user.final')].find((l) => norm(l.textContent) === w);
    return li ? li.dataset.turn : false;
  }, words(said));
  const agentRow = (turn) => page.evaluate((t) => {
    const li = document.querySelector(`#transcript li.agent[data-turn="${t}"]`);
    if (!li) return null;
    const unheard = li.querySelector('.unheard');
    return {
      text: li.textContent,
      heard: unheard ? li.textContent.slice(0, li.textContent.length - unheard.textContent.length) : li.textContent,
      unheard: unheard ? unheard.textContent : '',
      done: li.classList.contains('done'),
      interrupted: li.classList.contains('interrupted'),
    };
  }, turn);
  const stats = () => page.evaluate(() => ({ ...document.getElementById('audio-stats').dataset }));

  await wait('connection state shows live', () => document.querySelector('#state.live') !== null);
  await wait('the microphone frames are sent', () => Number(document.getElementById('audio-stats').dataset.framesSent) > 25);

  // Turn 1: the agent answers the words the user said, and its voice plays to the end.
  const t1 = await finalTurn(askWeather);
  await wait('the first reply finishes', (t) => document.querySelector(`#transcript li.agent.done[data-turn="${t}"]`) !== null, t1);
  const r1 = await agentRow(t1);
  check(r1 && words(r1.text).startsWith(words(`You said: ${askWeather}`)),
    `the agent's reply is to the words said (reply: "${r1 && r1.text}")`);
  await wait('the first reply was played to the end', () => {
    const d = document.getElementById('audio-stats').dataset;
    return Number(d.receivedMs) > 1000 && Number(d.playedMs) >= Number(d.receivedMs) - 50;
  });
  const s1 = await stats();
  check(Number(s1.underruns) === 0, `the first reply played without gaps (underruns: ${s1.underruns})`);

  // Turn 2 asks for a story; turn 3 is spoken over it and takes the turn.
  const t2 = await finalTurn(askStory);
  await wait('the story starts', (t) => {
    const li = document.querySelector(`#transcript li.agent[data-turn="${t}"]`);
    return li !== null && li.textContent.length > 10;
  }, t2);
  await wait('the barge-in interrupts the story', (t) =>
    document.querySelector(`#transcript li.agent.interrupted[data-turn="${t}"] .unheard`) !== null, t2);
  const r2 = await agentRow(t2);
  check(r2 && r2.heard.length > 0 && story.startsWith(r2.heard.trim()) && r2.unheard.trim().length > 0,
    `the interrupted story keeps what was heard and strikes the rest (heard: "${r2 && r2.heard}")`);
  const s2 = await stats();
  check(Number(s2.droppedMs) > 0, `the page dropped the story's queued audio at once (${s2.droppedMs} ms dropped)`);
  const t3 = await finalTurn(bargeIn);
  check(Number(t3) > Number(t2), 'the barge-in words open the next turn');
  await wait('the reply to the barge-in finishes', (t) => document.querySelector(`#transcript li.agent.done[data-turn="${t}"]`) !== null, t3);
  const r3 = await agentRow(t3);
  check(r3 && words(r3.text).startsWith(words(`You said: ${bargeIn}`)),
    `the agent answers the words that interrupted it (reply: "${r3 && r3.text}")`);

  await wait('a latency row per answered turn', () => document.querySelectorAll('#metrics tbody tr').length >= 2);
  check(await page.evaluate(() => window.sawInterim), 'interim transcript was shown before the final one');
  const reportsAfter = await metric('voice_playback_reports_total');
  check(reportsAfter > reportsBefore, `the page's playback reports reached the host (${reportsBefore} -> ${reportsAfter})`);

  const end = await stats();
  const row = await page.evaluate(() => [...document.querySelectorAll('#metrics tbody tr:first-child td')].map((td) => td.textContent));
  console.log(`     audio: ${JSON.stringify(end)}; first latency row: ${row.join(' | ')}`);
  check(Number(end.underruns) === 0, `no playback gaps in the whole conversation (underruns: ${end.underruns})`);
  check(!(await page.isVisible('#error')), 'no error is shown');
  check(pageErrors.length === 0, `no script errors${pageErrors.length ? `: ${pageErrors.join('; ')}` : ''}`);

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`     screenshot: ${screenshot}`);
  await page.click('#stop');
  await page.close();
}

// A free loopback port nothing listens on (yet).
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Forwards `port` to the host: the endpoint "comes back".
async function forward(port) {
  const target = new URL(hostUrl);
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { close: () => { server.close(); sockets.forEach((s) => s.destroy()); } };
}

async function deadEndpoint(browser) {
  const page = await browser.newPage();
  const port = await freePort();
  await page.goto(pageUrl(`ws://127.0.0.1:${port}/agent`));
  await page.click('#start');
  try {
    await page.waitForFunction(() => {
      const e = document.getElementById('error');
      return !e.hidden && e.textContent.includes('Could not reach')
        && document.querySelector('#state.reconnecting') !== null;
    }, null, { timeout: 15000, polling: 100 });
    check(true, 'a dead endpoint is explained in plain words and retried');
  } catch {
    check(false, `a dead endpoint is explained and retried; page shows: ${await page.textContent('#error')}`);
  }
  const server = await forward(port);
  try {
    await page.waitForFunction(() => document.querySelector('#state.live') !== null
      && document.getElementById('error').hidden, null, { timeout: 30000, polling: 100 });
    check(true, 'the page reconnects on its own once the endpoint comes back, and the error clears');
  } catch {
    check(false, `the page reconnects once the endpoint comes back; state: ${await page.textContent('#state')}`);
  }
  await page.click('#stop');
  await page.close();
  server.close();
}

const browser = await chromium.launch({ executablePath, headless: true, args });
try {
  await conversation(browser);
  await deadEndpoint(browser);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(`browser test: ${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('browser test: all checks passed');
