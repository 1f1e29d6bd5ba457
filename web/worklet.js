// AudioWorklet processors of the voice-host page.
//
// pcm16-capture: microphone audio (at the context's rate) down to 16 kHz PCM16, posted to the
//   page as 20 ms frames (ArrayBuffer of little-endian Int16) with the frame's level.
// pcm16-player: a jitter buffer for the agent's voice. It holds back the start of each reply
//   until a little audio is queued so playback is gap-free, plays chunks in order, drops
//   everything on "flush" (barge-in), and reports how much of each reply it has played.

const CAPTURE_RATE = 16000;
const FRAME_SAMPLES = CAPTURE_RATE / 50; // 20 ms

class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    // Input samples per output sample; each output sample averages its span of input
    // (a box filter, enough to keep speech clean when decimating 48 or 44.1 kHz to 16 kHz).
    this.ratio = sampleRate / CAPTURE_RATE;
    this.phase = 0;
    this.acc = 0;
    this.count = 0;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.energy = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.acc += channel[i];
      this.count += 1;
      this.phase += 1;
      if (this.phase >= this.ratio) {
        this.phase -= this.ratio;
        const v = Math.max(-1, Math.min(1, this.acc / this.count));
        this.acc = 0;
        this.count = 0;
        this.energy += v * v;
        this.frame[this.filled++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        if (this.filled === FRAME_SAMPLES) {
          const level = Math.sqrt(this.energy / FRAME_SAMPLES);
          const out = this.frame;
          this.port.postMessage({ frame: out.buffer, level }, [out.buffer]);
          this.frame = new Int16Array(FRAME_SAMPLES);
          this.filled = 0;
          this.energy = 0;
        }
      }
    }
    return true;
  }
}

class Pcm16Player extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    // Agent audio arrives at `sourceRate`; it is stepped through at sourceRate/sampleRate.
    this.step = (opts.sourceRate || sampleRate) / sampleRate;
    this.prebuffer = Math.round(((opts.prebufferMs || 80) / 1000) * (opts.sourceRate || sampleRate));
    this.queue = []; // { samples: Float32Array, reply: number }
    this.queued = 0; // source samples queued
    this.pos = 0; // fractional read position in queue[0]
    this.playing = false;
    this.waitingSince = null;
    this.ended = new Set(); // replies whose audio is complete
    this.reply = null; // reply being played
    this.played = 0; // source samples of `reply` played
    this.underruns = 0;
    // A reply whose queue ran dry before its end was known. Running dry is a gap only if more of
    // that reply's audio follows; the end of a reply also runs dry, just before its `end` arrives.
    this.dry = null;
    this.paused = false; // the host paused the reply: hold the queue, play silence
    this.lastReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === 'audio') {
      if (this.dry !== null && this.dry === m.reply) this.underruns += 1;
      this.dry = null;
      this.queue.push({ samples: m.samples, reply: m.reply });
      this.queued += m.samples.length;
      if (this.waitingSince === null) this.waitingSince = currentTime;
    } else if (m.type === 'end') {
      this.ended.add(m.reply);
      if (this.dry === m.reply) this.dry = null;
    } else if (m.type === 'pause') {
      this.paused = true;
    } else if (m.type === 'resume') {
      this.paused = false;
    } else if (m.type === 'flush') {
      // Tell the page how much unplayed audio the barge-in dropped (never heard by the user).
      if (this.queued > 0) this.port.postMessage({ type: 'dropped', samples: Math.max(0, this.queued - Math.floor(this.pos)) });
      this.paused = false;
      this.dry = null;
      this.queue = [];
      this.queued = 0;
      this.pos = 0;
      this.playing = false;
      this.waitingSince = null;
      this.report(true);
    }
  }

  // Start playing once enough is queued, the reply is complete, or waiting longer would
  // only add delay (the prebuffer's worth of time has passed).
  ready() {
    if (this.queued >= this.prebuffer) return true;
    const last = this.queue[this.queue.length - 1];
    if (last && this.ended.has(last.reply)) return true;
    return this.waitingSince !== null && currentTime - this.waitingSince >= this.prebuffer / (this.step * sampleRate);
  }

  report(force) {
    if (this.reply === null) return;
    if (force || currentTime - this.lastReport >= 0.05) {
      this.lastReport = currentTime;
      this.port.postMessage({
        type: 'played', reply: this.reply, samples: this.played, underruns: this.underruns,
      });
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.queue.length > 0 && this.ready()) this.playing = true;
    let i = 0;
    if (this.playing && !this.paused) {
      while (i < out.length && this.queue.length > 0) {
        const head = this.queue[0];
        if (head.reply !== this.reply) {
          this.reply = head.reply;
          this.played = 0;
        }
        const k = Math.floor(this.pos);
        const a = head.samples[k];
        const b = k + 1 < head.samples.length ? head.samples[k + 1]
          : (this.queue[1] ? this.queue[1].samples[0] : a);
        const frac = this.pos - k;
        out[i++] = a + (b - a) * frac;
        this.pos += this.step;
        const whole = Math.floor(this.pos);
        if (whole > k) this.played += whole - k;
        if (this.pos >= head.samples.length) {
          this.pos -= head.samples.length;
          this.queued -= head.samples.length;
          this.queue.shift();
        }
      }
      if (this.queue.length === 0) {
        this.playing = false;
        this.waitingSince = null;
        this.pos = 0;
      }
      this.report(this.queue.length === 0);
    }
    // Output wanted and none queued for a reply not known to be complete: a gap, if more of it
    // follows (see `dry`).
    if (i < out.length && this.queue.length === 0 && !this.paused && this.reply !== null
      && !this.ended.has(this.reply)) this.dry = this.reply;
    for (; i < out.length; i++) out[i] = 0;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }
}

registerProcessor('pcm16-capture', Pcm16Capture);
registerProcessor('pcm16-player', Pcm16Player);
