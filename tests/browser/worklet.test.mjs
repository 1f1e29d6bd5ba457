// The page's playback jitter buffer (web/worklet.js), run outside the browser: the worklet
// globals are provided here and the audio clock is advanced by hand, one render quantum per
// process() call, so a gap and the end of a reply can be placed exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const RATE = 16000;
const QUANTUM = 128;

function loadPlayer() {
  const processors = {};
  const context = {
    sampleRate: RATE,
    currentTime: 0,
    AudioWorkletProcessor: class {
      constructor() {
        this.port = { posted: [], postMessage(m) { this.posted.push(m); } };
      }
    },
    registerProcessor(name, cls) { processors[name] = cls; },
  };
  vm.createContext(context);
  vm.runInContext(readFileSync(new URL('../../web/worklet.js', import.meta.url), 'utf8'), context);
  const player = new processors['pcm16-player']({ processorOptions: { sourceRate: RATE, prebufferMs: 20 } });
  const out = [new Float32Array(QUANTUM)];
  return {
    send(m) { player.port.onmessage({ data: m }); },
    audio(reply, ms) { this.send({ type: 'audio', reply, samples: new Float32Array((RATE * ms) / 1000).fill(0.1) }); },
    // Render `ms` of output; returns how many output samples carried audio.
    render(ms) {
      let loud = 0;
      for (let n = 0; n < (RATE * ms) / 1000 / QUANTUM; n++) {
        player.process([], [out]);
        context.currentTime += QUANTUM / RATE;
        loud += out[0].filter((v) => v !== 0).length;
      }
      return loud;
    },
    get underruns() { return player.underruns; },
  };
}

test('a reply that runs out just before its end arrives is not a gap', () => {
  const p = loadPlayer();
  p.audio(0, 210);
  assert.ok(p.render(300) > 0);
  p.send({ type: 'end', reply: 0 });
  p.render(40);
  assert.equal(p.underruns, 0);
});

test('a reply that runs dry and then continues is a gap', () => {
  const p = loadPlayer();
  p.audio(0, 210);
  p.render(300);
  p.audio(0, 210);
  assert.ok(p.render(300) > 0, 'the rest of the reply plays');
  p.send({ type: 'end', reply: 0 });
  assert.equal(p.underruns, 1);
});

test('a barge-in flush is not a gap, nor is the next reply starting', () => {
  const p = loadPlayer();
  p.audio(0, 210);
  p.render(300);
  p.send({ type: 'flush' });
  p.audio(1, 200);
  p.render(300);
  p.send({ type: 'end', reply: 1 });
  assert.equal(p.underruns, 0);
});

test('audio held by a pause is not a gap', () => {
  const p = loadPlayer();
  p.audio(0, 400);
  p.render(100);
  p.send({ type: 'pause' });
  assert.equal(p.render(200), 0, 'nothing plays while paused');
  p.send({ type: 'resume' });
  assert.ok(p.render(400) > 0);
  p.send({ type: 'end', reply: 0 });
  assert.equal(p.underruns, 0);
});
