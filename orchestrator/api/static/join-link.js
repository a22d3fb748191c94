// The speaker's video against their link (pure: no browser APIs; tested with node).
// The voice comes first: every second the page feeds one reading of its own stats (a fresh
// RTT and packet loss from jalsa's receiver reports, or null when no new report came);
// the governor answers how video may be sent — a step of the ladder, paused, or on
// trial — with hysteresis: video steps down at once when the voice is at risk, and
// comes back only after a trial (which jalsa does not show: the card stays up) has shown
// that the link carries the ladder's first step beside the voice.
// The voice has two rates: full (32 kbit/s of Opus) and thin (16 kbit/s) for a link that
// overflows even with video paused (a 40 kbit/s uplink: 32 kbit/s of Opus in 60 ms packets
// is ~42 on the wire); it stays thin until video has climbed past the ladder's first step.
// The browser's own bandwidth estimate is not used: with jalsa's receiver it stays at
// what is being sent (measured: ~17 kbit/s paused, 30 on trial, whatever the link); it
// does hold video at ~35 kbit/s, on trial and on step 0 alike, which is why step 0 asks
// for less than that: on air, video must cost clearly less than the trial proved.
"use strict";

(function (root) {
  // Steps of video, lowest first: scale of the camera's size, frames per second, kbit/s.
  const LADDER = [
    { scale: 4, fps: 10, kbps: 25 },
    { scale: 3, fps: 12, kbps: 100 },
    { scale: 2, fps: 15, kbps: 250 },
    { scale: 1, fps: 24, kbps: 600 },
    { scale: 1, fps: 30, kbps: 1500 },
  ];
  // A trial: first a tiny picture (even its key frame costs the voice no more than a
  // moment), then the ladder's first step at twice its rate, judged while video really
  // sends a fifth more than the step (a link that carries that has room for the step
  // itself and its key frames, even once a buffer that hid a small excess for the
  // trial's few seconds has filled: measured at 80 kbit/s behind tc tbf, a trial at the
  // step's own rate passed and video went off again 5 s after it was back on air);
  // only then is video back.
  const TRIAL = [
    { scale: 8, fps: 5, kbps: 20, readings: 2 },
    { ...LADDER[0], kbps: 50, readings: 3 },
  ];
  const QUEUE_S = 0.2; // RTT this far above the link's best: a queue is building
  const TRIAL_QUEUE_S = 0.1; // stricter on trial: the voice must not pay for it
  // On trial, a small queue that stays (two readings in a row) is the link filling up:
  // the trial ends before the queue overflows onto the voice (a lone late report is not).
  const TRIAL_PERSIST_S = 0.03;
  const CLEAR_QUEUE_S = 0.05; // no more than this above the best: the link has room
  // ... and the RTT itself no higher than this: a link that was full from the first
  // reading has no clean best to measure a queue against (seen at 80 kbit/s: 0.6 s from
  // the start, "steady", and video climbed a step into it).
  const CLEAR_RTT_S = 0.4;
  const LOSS = 0.03; // packets lost in a report: the link is overflowing
  const SEVERE_LOSS = 0.1, SEVERE_QUEUE_S = 0.3; // one such reading is enough
  const BAD_TO_STEP = 2; // bad readings in a row before a step down (or the pause)
  const GOOD_TO_STEP = 8; // good readings in a row before a step up (doubling each time
  // a step proved too much: a link that cannot carry it is not asked again and again)
  const HOLD_FIRST = 5, HOLD_MAX = 7; // seconds paused before a trial (doubling)
  const LOADED = 1.2; // of step 0's rate: what video really sends while a trial proves it
  const VOICE_KBPS = 32, THIN_VOICE_KBPS = 16;
  const BEST_RTT_S = 30; // the link's best RTT is the least of this many fresh readings

  class LinkGovernor {
    constructor(start) {
      this.mode = "on"; // "on" | "paused" | "trial"
      this.step = start === undefined ? 0 : start;
      this.stage = 0; // of the trial
      this.bad = 0; this.good = 0; this.hold = HOLD_FIRST; this.pausedAt = 0;
      this.rtts = []; this.lastRtt = null; this.queued = 0;
      this.tooMuch = LADDER.map(() => 0); // times each step was stepped down from
      this.thin = false; // the voice at its thin rate
      this.proven = 0; // readings in a row of this trial stage, clear and loaded
      this.reports = 0; // receiver reports read since this trial began
    }

    // One reading, once a second: now (s), rtt (s, or null: no fresh measurement), loss
    // (0..1 lost in the latest receiver report, or null: no fresh report), and what video
    // sent over the last second (kbit/s, or null/undefined: unknown). The trial's step-0
    // readings count only while video sends near that step's rate: the encoder takes
    // seconds to ramp up, and a link is not proven by a picture that has not loaded it;
    // nor by a second without a fresh RTT.
    // Returns what to send: { mode, scale, fps, kbps, voice } (kbps 0 while paused; voice
    // the audio's kbit/s).
    reading(now, rtt, loss, videoKbps) {
      const fresh = typeof rtt === "number";
      if (fresh) {
        this.rtts.push(rtt);
        if (this.rtts.length > BEST_RTT_S) this.rtts.shift();
      }
      const best = this.rtts.length ? Math.min(...this.rtts) : null;
      const queue = fresh && best !== null ? rtt - best : 0;
      const lossy = typeof loss === "number" && loss > LOSS;
      const limit = this.mode === "trial" ? TRIAL_QUEUE_S : QUEUE_S;
      // A queue that is already draining (after a step down) needs time, not another step.
      const draining = fresh && this.lastRtt !== null && rtt < this.lastRtt - 0.01;
      if (fresh) this.lastRtt = rtt;
      const bad = lossy || (queue > limit && !draining);
      // On trial a queue fails it at once (the voice must not wait behind it); a stray
      // loss must repeat, and so must the loss in the trial's first receiver report (a
      // report covers what was sent since the one before: video's first one after the
      // pause counts packets of the last trial, lost before video paused).
      const first = this.mode === "trial" && this.reports === 0;
      if (this.mode === "trial" && typeof loss === "number") this.reports += 1;
      const severe = (typeof loss === "number" && loss > SEVERE_LOSS && !first) ||
        queue > (this.mode === "trial" ? TRIAL_QUEUE_S : SEVERE_QUEUE_S);
      this.bad = bad ? this.bad + 1 : 0;
      if (fresh) this.queued = this.mode === "trial" && queue > TRIAL_PERSIST_S ? this.queued + 1 : 0;
      // Good: no loss and no queue to speak of (a queue that grows slowly is not room).
      const high = fresh && rtt > CLEAR_RTT_S;
      this.good = bad || high || queue > CLEAR_QUEUE_S ? 0 : this.good + 1;
      if (this.mode === "on") this.whileOn(now);
      else if (this.mode === "paused") this.whilePaused(now);
      else {
        // (not the tiny picture: it cannot use its 20 kbit/s; it is there for its key frame)
        const loaded = typeof videoKbps !== "number" || this.stage === 0 ||
          videoKbps >= LOADED * LADDER[0].kbps;
        this.onTrial(now, severe || this.bad >= BAD_TO_STEP || this.queued >= 2, !bad && loaded, fresh);
      }
      return this.sending();
    }

    whileOn(now) {
      if (this.bad >= BAD_TO_STEP) {
        this.bad = 0;
        if (this.step > 0) {
          this.tooMuch[this.step] += 1;
          this.step -= 1;
        } else {
          this.pause(now);
        }
        return;
      }
      const next = LADDER[this.step + 1];
      const patience = GOOD_TO_STEP * 2 ** Math.min(4, next ? this.tooMuch[this.step + 1] : 0);
      if (next && this.good >= patience) {
        this.step += 1;
        this.good = 0;
        if (this.step >= 1) this.thin = false; // room for 100 kbit/s of video: the voice too
      }
    }

    whilePaused(now) {
      if (this.bad >= BAD_TO_STEP && !this.thin) {
        this.thin = true; // video is off and the link still overflows: thin the voice
        this.bad = 0; this.good = 0; this.pausedAt = now;
        return;
      }
      if (now - this.pausedAt >= this.hold && this.good >= 2) {
        this.mode = "trial"; this.stage = 0;
        this.good = 0; this.bad = 0; this.proven = 0; this.reports = 0;
      }
    }

    onTrial(now, failed, proving, fresh) {
      if (failed) {
        this.pause(now);
        return;
      }
      if (!fresh) return; // no new RTT: this second proves nothing either way
      this.proven = proving && this.good > 0 ? this.proven + 1 : 0;
      if (this.proven >= TRIAL[this.stage].readings) {
        this.good = 0; this.proven = 0;
        this.stage += 1;
        if (this.stage === TRIAL.length) {
          this.mode = "on"; this.step = 0; this.hold = HOLD_FIRST;
        }
      }
    }

    pause(now) {
      if (this.mode !== "on") this.hold = Math.min(HOLD_MAX, this.hold * 2); // a failed trial
      this.mode = "paused"; this.pausedAt = now; this.good = 0; this.bad = 0;
    }

    sending() {
      const voice = this.thin ? THIN_VOICE_KBPS : VOICE_KBPS;
      if (this.mode === "paused") return { mode: "paused", scale: 8, fps: 5, kbps: 0, voice };
      const step = this.mode === "trial" ? TRIAL[this.stage] : LADDER[this.step];
      return { mode: this.mode, scale: step.scale, fps: step.fps, kbps: step.kbps, voice };
    }
  }

  // The page's line about its link (pure), from its stats once a second: the newest RTT,
  // the loss over the last few seconds of receiver reports (not since the start: a link
  // that recovered reads as it is now), and when no report has come for a while, that.
  const QUALITY_WINDOW_S = 5, STALE_S = 3;
  class LinkQuality {
    constructor() { this.reports = []; this.rtt = null; this.lastReport = null; this.since = null; }

    // now (s); sent: packets sent so far; lost: packets jalsa reports lost so far; fresh: a
    // new receiver report came since the last reading (with rtt, s, or null); kbps out or
    // null; received: kbps jalsa says it receives, or null.
    // Returns { grade: "good" | "fair" | "poor" | "unknown", text }.
    reading(now, { sent, lost, fresh, rtt, kbps, received = null }) {
      if (this.since === null) this.since = now;
      if (fresh) {
        this.lastReport = now;
        if (typeof rtt === "number") this.rtt = rtt;
        this.reports.push({ now, sent, lost });
        while (this.reports.length > 1 && now - this.reports[0].now > QUALITY_WINDOW_S) this.reports.shift();
      }
      const out = typeof kbps === "number" ? Math.round(kbps) + " kbps out" : "";
      const quiet = now - (this.lastReport === null ? this.since : this.lastReport);
      if (quiet >= STALE_S) {
        const text = "Connection: no reports from jalsa for " + Math.round(quiet) + " s";
        return { grade: "unknown", text: [text, out].filter(Boolean).join(" · ") };
      }
      if (this.lastReport === null) return { grade: "unknown", text: "Connection: measuring…" };
      const first = this.reports[0], last = this.reports[this.reports.length - 1];
      const dLost = first && last ? Math.max(0, last.lost - first.lost) : 0;
      const dSent = first && last ? Math.max(0, last.sent - first.sent) : 0;
      const loss = dSent + dLost > 0 ? dLost / (dSent + dLost) : 0;
      const rttNow = this.rtt;
      const grade = (rttNow !== null && rttNow > 0.6) || loss > 0.08 ? "poor"
        : (rttNow !== null && rttNow > 0.25) || loss > 0.02 ? "fair" : "good";
      const parts = [
        rttNow === null ? "RTT –" : "RTT " + Math.round(rttNow * 1000) + " ms",
        "loss " + (loss * 100).toFixed(1) + "%", out,
        typeof received === "number" ? "jalsa gets " + Math.round(received) + " kbps" : "",
      ].filter(Boolean);
      return { grade, text: "Connection " + grade + ": " + parts.join(" · "), rtt: rttNow };
    }
  }

  root.LinkGovernor = LinkGovernor;
  root.LinkQuality = LinkQuality;
})(typeof window !== "undefined" ? window : globalThis);
