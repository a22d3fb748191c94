// The listener page: plays the mirror's ladder (hls.js, or the browser's own HLS), starts on
// audio only when the link is poor, steps down to it when video cannot keep up, shows who
// is speaking and who is next, and sends a heartbeat while it plays (how jalsa counts
// listeners behind a cache). No personal data: the session id is random, made here.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const mirror = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const base = `/hls/${encodeURIComponent(mirror)}`;
  const video = $("player");
  const BEAT_MS = 15000;
  const NOW_MS = 5000;
  // Video needs this much more than the lowest video rendition's peak to be worth it.
  const HEADROOM = 1.2;

  let ladder = { video: [], audio: null }; // from the master playlist
  let mode = null; // "video" | "audio"
  let hls = null;
  let slowFragments = 0;
  let why = "";

  function session() {
    let id = sessionStorage.getItem("jalsa-watch-session");
    if (!id) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem("jalsa-watch-session", id);
    }
    return id;
  }

  function problem(text) {
    $("problem").textContent = text;
    $("problem").hidden = !text;
  }

  function status(text, live) {
    $("status").textContent = text;
    $("status").classList.toggle("live", !!live);
  }

  async function loadLadder() {
    const answer = await fetch(`${base}/index.m3u8`);
    if (!answer.ok) throw new Error("The stream has not started yet.");
    const text = await answer.text();
    const lines = text.split("\n");
    const entries = [];
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i].startsWith("#EXT-X-STREAM-INF:")) continue;
      const info = lines[i];
      const bandwidth = Number((/BANDWIDTH=(\d+)/.exec(info) || [])[1] || 0);
      const codecs = (/CODECS="([^"]*)"/.exec(info) || [])[1] || "";
      entries.push({ uri: lines[i + 1].trim(), bandwidth, audioOnly: !codecs.includes("avc1") });
    }
    if (!entries.length) return { video: [{ uri: "index.m3u8", bandwidth: 0 }], audio: null };
    return {
      video: entries.filter((e) => !e.audioOnly).sort((a, b) => a.bandwidth - b.bandwidth),
      audio: entries.find((e) => e.audioOnly) || null,
    };
  }

  // This link's speed now, from one recent audio segment (small: ~12 KB).
  async function measureKbps() {
    if (!ladder.audio) return Infinity;
    const list = await (await fetch(`${base}/${ladder.audio.uri}`)).text();
    const segments = list.split("\n").filter((l) => l.trim().endsWith(".ts"));
    if (!segments.length) return Infinity;
    const answer = await fetch(`${base}/${segments[segments.length - 1].trim()}`);
    // Timed from the answer's head to its last byte: the link's rate, not the server's
    // or the round trip's delay.
    const started = performance.now();
    const body = await answer.arrayBuffer();
    const seconds = (performance.now() - started) / 1000;
    // So small a file in under 0.2 s: faster than any rendition needs.
    if (seconds < 0.2) return Infinity;
    return (body.byteLength * 8) / seconds / 1000;
  }

  function poorLink(kbps) {
    const link = navigator.connection;
    if (link && (link.saveData || ["slow-2g", "2g"].includes(link.effectiveType))) {
      return "your connection is set to save data or is very slow";
    }
    const lowest = ladder.video.length ? ladder.video[0].bandwidth / 1000 : 0;
    if (ladder.audio && lowest && kbps < lowest * HEADROOM) {
      return `your connection carries about ${Math.round(kbps)} kbit/s`;
    }
    return "";
  }

  function stop() {
    if (hls) {
      hls.destroy();
      hls = null;
    }
  }

  function play(next, reason) {
    stop();
    mode = next;
    why = reason || "";
    slowFragments = 0;
    const audio = mode === "audio";
    $("audio-card").hidden = !audio;
    $("mode").hidden = !ladder.audio;
    $("mode").textContent = audio ? "Video" : "Audio only";
    const source = audio ? `${base}/${ladder.audio.uri}` : `${base}/index.m3u8`;
    if (window.Hls && window.Hls.isSupported()) {
      hls = new window.Hls({ capLevelToPlayerSize: true, maxBufferLength: 20, backBufferLength: 10 });
      hls.on(window.Hls.Events.FRAG_LOADED, checkSpeed);
      hls.on(window.Hls.Events.LEVEL_SWITCHED, describe);
      hls.on(window.Hls.Events.ERROR, (_event, data) => {
        if (data.details === "bufferStalledError" && mode === "video" && ladder.audio) {
          slowFragments += 1;
          if (slowFragments >= 2) play("audio", "video kept stalling");
        } else if (data.fatal) {
          problem("The stream was interrupted; trying again…");
          setTimeout(() => play(mode, why), 3000);
        }
      });
      hls.loadSource(source);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = source; // native HLS: the master's audio-only variant is in its ABR too
    } else {
      problem("This browser cannot play the stream.");
      return;
    }
    video.play().catch(() => status("Press Play to listen", false));
    describe();
  }

  // Video on the lowest rendition and the link still slower than it: audio only.
  function checkSpeed() {
    describe();
    if (!hls || mode !== "video" || !ladder.audio || hls.currentLevel > 0) return;
    const lowest = ladder.video[0].bandwidth;
    if (hls.bandwidthEstimate && hls.bandwidthEstimate < lowest) {
      slowFragments += 1;
      if (slowFragments >= 2) {
        play("audio", `your connection carries about ${Math.round(hls.bandwidthEstimate / 1000)} kbit/s`);
      }
    } else {
      slowFragments = 0;
    }
  }

  function describe() {
    if (mode === "audio") {
      const kbps = ladder.audio ? Math.round(ladder.audio.bandwidth / 1000) : 0;
      $("quality").textContent = `Audio only (${kbps} kbit/s)${why ? ": " + why : ""}`;
    } else if (hls && hls.levels && hls.levels[hls.currentLevel]) {
      const level = hls.levels[hls.currentLevel];
      $("quality").textContent = `Video ${level.width}×${level.height}`;
    } else {
      $("quality").textContent = "Video";
    }
  }

  async function start() {
    $("play").hidden = true;
    problem("");
    status("Connecting…", false);
    try {
      ladder = await loadLadder();
      const reason = poorLink(await measureKbps());
      play(reason ? "audio" : "video", reason);
    } catch (error) {
      problem(error.message || String(error));
      $("play").hidden = false;
    }
  }

  async function beat() {
    if (video.paused || !mode) return;
    try {
      await fetch(`/watch/${encodeURIComponent(mirror)}/beat?s=${session()}`, {
        method: "POST",
        keepalive: true,
      });
    } catch (_) {
      // a lost heartbeat: the next one counts
    }
  }

  async function refreshNow() {
    try {
      const now = await (await fetch(`/watch/${encodeURIComponent(mirror)}/now`)).json();
      $("event").textContent = now.event;
      document.title = `${now.event}: live`;
      $("on-air").textContent = now.on_air ? now.on_air.name : "—";
      $("on-air-title").textContent = now.on_air ? now.on_air.title : "";
      $("next").textContent = now.next ? now.next.name : "—";
      const minutes = now.next ? Math.floor(now.next.in_seconds / 60) : 0;
      const seconds = now.next ? now.next.in_seconds % 60 : 0;
      $("next-when").textContent = now.next ? `in ${minutes}:${String(seconds).padStart(2, "0")}` : "";
    } catch (_) {
      // shown again at the next round
    }
  }

  video.addEventListener("playing", () => {
    status("Live", true);
    beat();
  });
  video.addEventListener("waiting", () => status("Buffering…", false));
  $("play").addEventListener("click", start);
  $("mode").addEventListener("click", () => play(mode === "audio" ? "video" : "audio", "your choice"));
  setInterval(beat, BEAT_MS);
  setInterval(refreshNow, NOW_MS);
  refreshNow();
})();
