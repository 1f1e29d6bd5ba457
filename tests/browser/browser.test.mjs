// Drives the voice-host page in headless Chromium whose microphone is a speech WAV file, against
// a running host wired to the fake providers, and checks what a user would see and hear: the
// live transcript (interim then final), the agent's streamed text, its voice actually played,
// the turn's latency row, and plain-words errors with reconnection for a dead endpoint.
//
// Environment: HOST_URL (http://127.0.0.1:PORT, required), SPEECH_WAV (absolute path, required),
// EXPECT_TRANSCRIPT, EXPECT_AGENT (text the page must show), SCREENSHOT (PNG path),
// CHROMIUM (default /usr/bin/chromium), TIMEOUT_MS (default 60000).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

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
const expectTranscript = env('EXPECT_TRANSCRIPT', 'what is the weather in paris');
const expectAgent = env('EXPECT_AGENT', 'You said');
const screenshot = env('SCREENSHOT', 'artifacts/browser.png');
const executablePath = env('CHROMIUM', '/usr/bin/chromium');
const timeout = Number(env('TIMEOUT_MS', '60000'));
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

async function conversation(browser) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });

  const token = process.env.SESSION_TOKEN || '';
  const tokenParam = token ? `&token=${encodeURIComponent(token)}` : '';
  await page.goto(`${hostUrl}/?ws=${encodeURIComponent(wsUrl)}${tokenParam}`);
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
  await page.click('#start');

  const wait = async (what, fn, arg) => {
    try {
      await page.waitForFunction(fn, arg, { timeout, polling: 100 });
      check(true, what);
    } catch {
      check(false, `${what} (timed out after ${timeout} ms)`);
    }
  };
  await wait('connection state shows live', () => document.querySelector('#state.live') !== null);
  await wait('the microphone frames are sent', () => Number(document.getElementById('audio-stats').dataset.framesSent) > 25);
  await wait(`the final transcript shows "${expectTranscript}"`, (t) =>
    [...document.querySelectorAll('#transcript li.user.final')].some((li) => li.textContent.includes(t)), expectTranscript);
  await wait(`the agent's text shows "${expectAgent}"`, (t) =>
    [...document.querySelectorAll('#transcript li.agent')].some((li) => li.textContent.includes(t)), expectAgent);
  await wait('agent audio was received and at least 1 s of it played', () => {
    const d = document.getElementById('audio-stats').dataset;
    return Number(d.receivedMs) > 1000 && Number(d.playedMs) >= 1000;
  });
  await wait('the turn latency row is shown', () => document.querySelectorAll('#metrics tbody tr').length > 0);
  check(await page.evaluate(() => window.sawInterim), 'interim transcript was shown before the final one');

  const stats = await page.evaluate(() => ({ ...document.getElementById('audio-stats').dataset }));
  const row = await page.evaluate(() => [...document.querySelectorAll('#metrics tbody tr:first-child td')].map((td) => td.textContent));
  console.log(`     audio: ${JSON.stringify(stats)}; first latency row: ${row.join(' | ')}`);
  check(!(await page.isVisible('#error')), 'no error is shown');
  check(pageErrors.length === 0, `no script errors${pageErrors.length ? `: ${pageErrors.join('; ')}` : ''}`);

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`     screenshot: ${screenshot}`);
  await page.click('#stop');
  await page.close();
}

async function deadEndpoint(browser) {
  const page = await browser.newPage();
  await page.goto(`${hostUrl}/?ws=${encodeURIComponent('ws://127.0.0.1:9/agent')}`);
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
  await page.close();
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
