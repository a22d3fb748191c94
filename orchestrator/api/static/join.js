// The speaker's join page: camera and mic preview, WHIP to jalsa, status, auto re-join.
// Plain browser JavaScript (Android Chrome, iOS Safari), no build step, no dependencies.
"use strict";

const cfg = JSON.parse(document.getElementById("config").textContent);
const $ = (id) => document.getElementById(id);
const ui = {
  slot: $("slot"), status: $("status"), preview: $("preview"), noCamera: $("no-camera"),
  meter: $("meter-level"), problem: $("problem"), join: $("join"), leave: $("leave"),
  audioOnly: $("audio-only"), quality: $("quality"), videoNote: $("video-note"),
  file: $("message-file"), send: $("message-send"), progress: $("message-progress"),
  sent: $("message-status"),
};

const BACKOFF = [1, 2, 4, 8, 15]; // seconds between re-join attempts (with jitter)
const GATHER_MS = 2500; // ICE gathering cap: send what we have (WHIP has no trickle here)
const DISCONNECTED_MS = 3000; // "disconnected" this long: the path is gone, re-join
const STUCK_MS = 4000; // not connected this long after Join: say why (never a silent wait)
const WHIP_MS = 15000; // the offer's answer must come by then

// What the speaker reads when something is in the way, and what to do about it.
const SAY = {
  insecure: "This page was opened by a plain http:// address, where browsers block the " +
    "camera and microphone. Open the https:// link the operator sent you, or ask them for one.",
  noApi: "This browser gives the page no camera or microphone. Open the link in Chrome, " +
    "Firefox or Safari, or call the operator.",
  denied: "The microphone is blocked for this page. Allow it (the lock or camera icon next " +
    "to the address), then press Join again.",
  noDevice: "No microphone was found. Plug one in or check the phone's settings, then press " +
    "Join again; or call the operator.",
  busy: "The microphone is in use by another app. Close that app, then press Join again.",
  asking: "Waiting for the microphone: answer the browser's question (Allow) at the top of " +
    "the page.",
  unreachable: "Cannot reach jalsa: check your internet connection. The page keeps trying.",
  noAnswer: "jalsa is not answering yet: your connection may be very slow. The page keeps trying.",
  blocked: "Your network is not letting the call through yet. Keep this page open: it keeps " +
    "trying. If this goes on, tick Audio only, or call the operator.",
  refused: "jalsa refused the call: ",
};

const state = {
  stream: null, pc: null, resource: null, session: "", wanted: false, attempt: 0,
  retryTimer: null, connectedAt: 0, quality: "full", replaced: false, status: null,
  statusAt: 0, stats: { bytes: 0, at: 0, rtt: null, loss: null, kbps: null },
  iceAt: Date.now(), // when cfg.iceServers' TURN logins were made (they expire)
  stage: "", stuckTimer: null, // where a join is: "media", "whip", "ice" (for STUCK_MS)
};

function show(el, visible) { el.hidden = !visible; }
// Why this page can never open a camera or microphone, or "".
function unsupported() {
  if (!window.isSecureContext) return SAY.insecure;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return SAY.noApi;
  return "";
}
// The speaker's words for a getUserMedia failure.
function mediaProblem(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") return SAY.denied;
  if (name === "NotFoundError" || name === "OverconstrainedError") return SAY.noDevice;
  if (name === "NotReadableError" || name === "AbortError") return SAY.busy;
  return unsupported() || SAY.noDevice;
}
// What the operator's green room is told when the page gives up (jalsa has the words).
const PROBLEM_CODES = new Map([
  [SAY.insecure, "insecure"], [SAY.noApi, "no_api"], [SAY.denied, "denied"],
  [SAY.noDevice, "no_device"], [SAY.busy, "busy"], [SAY.blocked, "ice_failed"],
]);
let told = ""; // the last problem told (once each, until the speaker connects)
let telling = 0; // bumped by each report and by connecting: a retry of an older one stops
function tellOperator(text) {
  const code = PROBLEM_CODES.get(text) || (text.startsWith(SAY.refused) ? "refused" : "");
  if (!code || code === told || !cfg.problem) return;
  told = code;
  const report = ++telling;
  fetch(cfg.problem, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ problem: code }), keepalive: true,
  }).then((r) => {
    if (r.status !== 429) return; // jalsa takes one report a second: this one again, later
    told = "";
    const wait = (Number(r.headers.get("Retry-After")) || 1) * 1000;
    setTimeout(() => { if (report === telling) tellOperator(text); }, wait);
  }).catch(() => { told = ""; });
}
function mediaError(err) { return Object.assign(err || new Error("media"), { media: true }); }
function problem(text) { ui.problem.textContent = text || ""; show(ui.problem, !!text); }
function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
}
function hhmm(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// -- camera and microphone ------------------------------------------------------------------
let meterContext = null;
let mediaReady = null; // the latest request for the camera/mic: requests run one at a time

// Open the camera and mic (again). Requests are chained, so a slow earlier request can
// never hand back a stream after a later one (which would leave a capture running).
function openMedia() {
  const previous = mediaReady || Promise.resolve();
  mediaReady = previous.catch(() => {}).then(openMediaNow);
  return mediaReady;
}

async function currentStream() {
  if (mediaReady) await mediaReady.catch(() => {});
  return state.stream || openMedia();
}

async function openMediaNow() {
  const audioOnly = ui.audioOnly.checked;
  const constraints = {
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: audioOnly ? false : {
      facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 },
    },
  };
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  const why = unsupported();
  if (why) {
    problem(why);
    throw mediaError(new Error(why));
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia(constraints);
  } catch (err) {
    if (!audioOnly && err && err.name !== "NotAllowedError") {
      // No camera (or it is busy): carry on with the microphone alone.
      ui.audioOnly.checked = true;
      return openMediaNow();
    }
    problem(mediaProblem(err));
    throw mediaError(err);
  }
  ui.preview.srcObject = state.stream;
  show(ui.noCamera, state.stream.getVideoTracks().length === 0);
  startMeter(state.stream);
  problem("");
  return state.stream;
}

function startMeter(stream) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx || stream.getAudioTracks().length === 0) return;
  if (meterContext) meterContext.close();
  meterContext = new Ctx();
  const analyser = meterContext.createAnalyser();
  analyser.fftSize = 512;
  meterContext.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const context = meterContext;
  const draw = () => {
    if (context !== meterContext) return;
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    ui.meter.style.width = Math.min(100, Math.round(peak * 140)) + "%";
    requestAnimationFrame(draw);
  };
  draw();
}

// -- WHIP -------------------------------------------------------------------------------------
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(done, GATHER_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    });
  });
}

// The voice first: audio at high priority (the browser's own bandwidth split and the
// packets' DSCP), capped at what jalsa's answer asks of Opus; video below it.
const VOICE = { priority: "high", networkPriority: "high", maxBitrate: 32000 };
const PAUSED_NOTE = "Your video is paused to keep your voice clear. It comes back by itself " +
  "when your connection allows.";

function applyQuality(pc) {
  // Video as the link governor allows; in the green room jalsa needs only a preview:
  // send less (saves the speaker's data and jalsa's CPU); shortly before the slot, full.
  const video = state.video || { mode: "on", scale: 1, fps: 30, kbps: 1500 };
  const preview = state.quality === "preview";
  for (const sender of pc.getSenders()) {
    if (sender.track && sender.track.kind === "audio") setVoice(sender, video.voice || 32);
    if (!sender.track || sender.track.kind !== "video") continue;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) continue;
    const e = params.encodings[0];
    const want = {
      active: video.mode !== "paused",
      scaleResolutionDownBy: Math.max(video.scale, preview ? 4 : 1),
      maxBitrate: Math.min(video.kbps || 30, preview ? 150 : 1500) * 1000,
      maxFramerate: video.fps,
    };
    if (Object.keys(want).every((k) => e[k] === want[k])) continue;
    Object.assign(e, want, { priority: "low", networkPriority: "low" });
    sender.setParameters(params).catch(() => {});
  }
  const paused = video.mode !== "on" && pc.getSenders().some((x) => x.track && x.track.kind === "video");
  ui.videoNote.textContent = paused ? PAUSED_NOTE : "";
  show(ui.videoNote, paused);
}

// The voice's rate as the governor allows (thin on a link that overflows without video).
function setVoice(sender, kbps) {
  const params = sender.getParameters();
  const e = params.encodings && params.encodings[0];
  if (!e || e.maxBitrate === kbps * 1000) return;
  Object.assign(e, VOICE, { maxBitrate: kbps * 1000 });
  sender.setParameters(params).catch(() => {});
}

// TURN logins made from the server's secret expire: a page open for hours fetches fresh
// ones before it (re-)joins. A failure keeps the old ones (the join will say what is wrong).
async function freshIce() {
  if (!cfg.iceRefreshSeconds || Date.now() - state.iceAt < cfg.iceRefreshSeconds * 1000) return;
  try {
    const response = await fetch(cfg.ice, { cache: "no-store" });
    if (!response.ok) return;
    cfg.iceServers = (await response.json()).iceServers;
    state.iceAt = Date.now();
  } catch (e) { /* offline: the join attempt reports it */ }
}

async function connect() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  if (state.pc) closePeer(true);
  await freshIce();
  state.stage = "media";
  const stream = await currentStream();
  const pc = new RTCPeerConnection({ iceServers: cfg.iceServers, bundlePolicy: "max-bundle" });
  state.pc = pc;
  state.governor = new window.LinkGovernor();
  state.videoSent = null;
  state.video = state.governor.sending();
  state.reportsSeen = {};
  for (const track of stream.getTracks()) {
    const sendEncodings = track.kind === "audio" ? [{ ...VOICE }]
      : [{ priority: "low", networkPriority: "low", maxBitrate: state.video.kbps * 1000,
        scaleResolutionDownBy: state.video.scale, maxFramerate: state.video.fps }];
    pc.addTransceiver(track, { direction: "sendonly", streams: [stream], sendEncodings });
  }
  pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  setStatus("Connecting…", "idle");
  state.stage = "whip";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), WHIP_MS);
  let response, body;
  try {
    response = await fetch(cfg.whip, {
      method: "POST", headers: { "Content-Type": "application/sdp" },
      body: pc.localDescription.sdp, signal: abort.signal,
    });
    body = await response.text();
  } catch (err) {
    throw new Error(abort.signal.aborted ? SAY.noAnswer : SAY.unreachable);
  } finally {
    clearTimeout(timer);
  }
  if (pc !== state.pc) return; // left or replaced meanwhile
  if (response.status === 201) {
    state.stage = "ice";
    state.resource = response.headers.get("Location");
    state.session = state.resource ? state.resource.split("/").pop() : "";
    await pc.setRemoteDescription({ type: "answer", sdp: body });
    applyQuality(pc);
    return;
  }
  closePeer(false);
  if (response.status === 401 || response.status === 403) {
    state.wanted = false;
    problem(body.replace(/^[a-z_]+: /, ""));
    setButtons();
    setStatus("Cannot join with this link", "trouble");
    return;
  }
  const said = SAY.refused + (body.trim() || "HTTP " + response.status) + ".";
  if (response.status >= 400 && response.status < 500 && response.status !== 429) {
    // This offer will never be answered: retrying cannot help; a person can.
    stopTrying(said + " Call the operator.", "Cannot join");
    return;
  }
  const retry = Number(response.headers.get("Retry-After")) || 0;
  throw Object.assign(new Error(said), { retry });
}

function onConnectionState(pc) {
  if (pc !== state.pc) return;
  const s = pc.connectionState;
  if (s === "connected") {
    told = "";
    telling++;
    state.connectedAt = Date.now();
    state.attempt = 0;
    state.stage = "";
    problem("");
  } else if (s === "failed" || s === "closed") {
    rejoinSoon(state.connectedAt ? "The connection dropped." : SAY.blocked);
  } else if (s === "disconnected") {
    setTimeout(() => {
      if (pc === state.pc && pc.connectionState !== "connected") rejoinSoon("The connection dropped.");
    }, DISCONNECTED_MS);
  }
}

function closePeer(hangUp) {
  const pc = state.pc, resource = state.resource;
  state.pc = null; state.resource = null;
  if (pc) pc.close();
  if (hangUp && resource) {
    fetch(resource, { method: "DELETE", keepalive: true }).catch(() => {});
  }
}

// Give up until the speaker presses Join again: what is in the way needs them.
function stopTrying(text, status) {
  state.wanted = false;
  clearTimeout(state.retryTimer);
  closePeer(true);
  setButtons();
  setStatus(status, "trouble");
  problem(text);
  tellOperator(text);
}

// A join that is not connected after STUCK_MS says what it is waiting for.
function watchJoin() {
  clearTimeout(state.stuckTimer);
  state.stuckTimer = setTimeout(() => {
    const pc = state.pc;
    if (!state.wanted || (pc && pc.connectionState === "connected")) return;
    if (!ui.problem.hidden && state.retryTimer) return; // a retry already says why
    const say = { media: SAY.asking, whip: SAY.noAnswer, ice: SAY.blocked }[state.stage];
    if (say) problem(say);
    if (say === SAY.blocked) tellOperator(say);
  }, STUCK_MS);
}

async function join() {
  const why = unsupported();
  if (why) {
    stopTrying(why, "Cannot join from this address");
    return;
  }
  state.wanted = true; state.replaced = false;
  setButtons();
  watchJoin();
  if (meterContext && meterContext.state === "suspended") meterContext.resume();
  try {
    await connect();
  } catch (err) {
    if (err && err.media) {
      stopTrying(mediaProblem(err), "Cannot use your microphone");
      return;
    }
    rejoinSoon(err && err.message ? err.message : "Could not connect.", err && err.retry);
  }
}

function rejoinSoon(reason, retryAfter) {
  if (!state.wanted || state.replaced) return;
  closePeer(true);
  const base = BACKOFF[Math.min(state.attempt, BACKOFF.length - 1)];
  const delay = Math.max(retryAfter || 0, base * (0.75 + Math.random() * 0.5));
  state.attempt += 1;
  setStatus("Reconnecting in " + Math.ceil(delay) + " s…", "trouble");
  problem(reason + (/keeps trying/.test(reason) ? "" : " Re-joining by itself; keep this page open."));
  tellOperator(reason);
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(() => { state.retryTimer = null; if (state.wanted) join(); }, delay * 1000);
}

function leave() {
  state.wanted = false;
  state.linkLine = null;
  clearTimeout(state.retryTimer);
  closePeer(true);
  state.session = "";
  setButtons();
  setStatus("You left. Press Join to come back.", "idle");
}

function setButtons() {
  show(ui.join, !state.wanted);
  show(ui.leave, state.wanted);
  ui.join.textContent = state.replaced ? "Join here instead" : "Join";
}

// -- status from jalsa, quality from the browser -------------------------------------------
function setStatus(text, kind) {
  ui.status.textContent = text;
  ui.status.className = "status " + kind;
}

function render() {
  const st = state.status;
  if (!st) return;
  const drift = (Date.now() - state.statusAt) / 1000;
  if (st.slot_start) {
    const range = hhmm(st.slot_start) + "–" + hhmm(st.slot_end);
    ui.slot.textContent = st.standing === "on_now" ? "Your slot: now, until " + hhmm(st.slot_end)
      : "Your slot: " + range;
  } else {
    ui.slot.textContent = st.standing === "done" ? "Your slot is over. Thank you!" : "No slot in the rundown yet";
  }
  if (state.replaced) {
    setStatus("You joined from another tab or device", "trouble");
    return;
  }
  if (!state.wanted) return;
  // The local connection first: a stale "LIVE" from jalsa must not hide a dead link.
  const pc = state.pc;
  if (!pc) {
    if (!state.retryTimer) setStatus("Connecting…", "idle");
    return; // else "Reconnecting in N s…" stays up
  }
  if (pc.connectionState === "disconnected") {
    setStatus("Connection unstable…", "trouble");
    return;
  }
  if (pc.connectionState !== "connected" || !st.connected) {
    setStatus("Connecting…", "idle");
    return;
  }
  if (st.live) {
    setStatus("LIVE", "live");
  } else if (st.standing === "waiting") {
    const left = Math.max(0, st.starts_in - drift);
    setStatus("Waiting in the green room — on air in " + clock(left), left <= 30 ? "soon" : "waiting");
  } else if (st.standing === "on_now") {
    setStatus("Going on air…", "soon");
  } else {
    setStatus("Waiting in the green room", "waiting");
  }
}

// How the speaker's video stands, for jalsa: "none" (audio only), "on", "paused" (by the
// link governor) or "trial" (testing the link: jalsa keeps the card up meanwhile).
function videoReport() {
  const pc = state.pc;
  const sending = pc && pc.getSenders().some((x) => x.track && x.track.kind === "video");
  return sending ? (state.video ? state.video.mode : "on") : "none";
}

let polling = false; // one status request at a time: a slow link must not queue them
async function pollStatus() {
  if (polling) return;
  polling = true;
  try {
    const response = await fetch(cfg.status, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        session: state.session, rtt: state.stats.rtt, sent_bps: state.stats.sentBps,
        video: videoReport(),
      }),
    });
    const st = await response.json();
    if (!response.ok) {
      problem(st.advice || "This link no longer works.");
      return;
    }
    state.status = st; state.statusAt = Date.now();
    if (st.session === "replaced" && state.wanted) {
      // Another tab or phone took over this link: stop here, do not fight it.
      state.replaced = true; state.wanted = false;
      closePeer(false);
      setButtons();
      problem("This link is now live in another tab or on another device.");
    }
    if (st.quality !== state.quality) {
      state.quality = st.quality;
      if (state.pc) applyQuality(state.pc);
    }
    render();
  } catch (err) {
    // Offline: the connection handler re-joins; keep polling.
  } finally {
    polling = false;
  }
}

const linkReadings = (window.jalsaLinkReadings = []);

async function measure() {
  const pc = state.pc;
  const down = pc && pc.connectionState === "disconnected" && state.linkLine;
  if (!pc || (pc.connectionState !== "connected" && !down)) {
    // Re-joining after a connection that reported: how long jalsa has been silent.
    const line = state.wanted && state.linkLine && state.linkLine.reading(performance.now() / 1000, {});
    const quiet = line && line.grade === "unknown" && state.linkLine.lastReport !== null;
    ui.quality.textContent = quiet ? line.text : "Connection: " + (state.wanted ? "connecting" : "not connected");
    ui.quality.className = "quality" + (quiet ? " unknown" : "");
    return;
  }
  const report = await pc.getStats();
  let bytes = 0, lost = 0, sent = 0, avail = null, linkRtt = null, linkLoss = null;
  let fresh = false, videoBytes = 0;
  const seen = state.reportsSeen || (state.reportsSeen = {});
  report.forEach((s) => {
    if (s.type === "outbound-rtp") {
      bytes += s.bytesSent || 0; sent += s.packetsSent || 0;
      if (s.kind === "video") videoBytes += s.bytesSent || 0;
    }
    if (s.type === "remote-inbound-rtp") {
      lost += s.packetsLost || 0;
      // Only what is new since the last look: a receiver report read twice is no news
      // (the voice's RTT is measured every ~5 s, video's every second).
      const last = seen[s.id] || {};
      if (s.roundTripTimeMeasurements !== last.rtts && typeof s.roundTripTime === "number") {
        linkRtt = linkRtt === null ? s.roundTripTime : Math.max(linkRtt, s.roundTripTime);
      }
      if (s.timestamp !== last.at && typeof s.fractionLost === "number") {
        linkLoss = linkLoss === null ? s.fractionLost : Math.max(linkLoss, s.fractionLost);
        fresh = true;
      }
      seen[s.id] = { rtts: s.roundTripTimeMeasurements, at: s.timestamp };
    }
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      if (typeof s.availableOutgoingBitrate === "number") avail = s.availableOutgoingBitrate / 1000;
    }
  });
  if (state.governor && pc === state.pc && !down) {
    const now = performance.now() / 1000;
    const last = state.videoSent;
    const videoKbps = last && now > last.at ? ((videoBytes - last.bytes) * 8) / 1000 / (now - last.at) : null;
    state.videoSent = { bytes: videoBytes, at: now };
    state.video = state.governor.reading(now, linkRtt, linkLoss, videoKbps);
    applyQuality(pc);
    // The last readings and decisions, for a look from the browser's console (or a test).
    linkReadings.push({ t: Math.round(now), rtt: linkRtt, loss: linkLoss, avail, videoKbps, ...state.video });
    if (linkReadings.length > 120) linkReadings.shift();
  }
  const now = performance.now();
  const prev = state.stats;
  const kbps = prev.at && now > prev.at ? ((bytes - prev.bytes) * 8) / (now - prev.at) : null;
  if (!state.linkLine || state.linkLine.pc !== pc) {
    state.linkLine = Object.assign(new window.LinkQuality(), { pc }); // a new connection
  }
  const st = state.status; // jalsa's own figure, from a status poll of the last 5 s
  const gets = st && Date.now() - state.statusAt < 5000 && typeof st.received_bps === "number" ? st.received_bps / 1000 : null;
  const line = state.linkLine.reading(now / 1000, {
    sent, lost, fresh: fresh || linkRtt !== null, rtt: linkRtt, kbps, received: gets,
  });
  state.stats = { bytes, at: now, rtt: line.rtt === undefined ? null : line.rtt, kbps };
  state.stats.sentBps = kbps === null ? null : Math.round(kbps * 1000);
  ui.quality.textContent = line.text;
  ui.quality.className = "quality " + line.grade;
}

// -- recorded message upload (resumable) -----------------------------------------------------
const CHUNK = 256 * 1024;
const WAITING = "Your message is waiting for the operator's approval.";
const APPROVED = "It will play in your slot if you are not connected.";
// What jalsa holds of this speaker's messages (a reload, a message approved since).
async function messageState() {
  try {
    const r = await fetch(cfg.upload, { cache: "no-store" });
    if (!r.ok) return;
    const mine = await r.json();
    if (mine.pending) ui.sent.textContent = "Uploaded. " + WAITING;
    else if (mine.approved) ui.sent.textContent = "Your message is approved. " + APPROVED;
  } catch { /* the page works without it */ }
}
async function upload() {
  const file = ui.file.files && ui.file.files[0];
  if (!file) { ui.sent.textContent = "Choose a video or audio file first."; return; }
  ui.send.disabled = true;
  show(ui.progress, true);
  const key = "jalsa-upload:" + cfg.upload + ":" + file.name + ":" + file.size;
  // The upload's Location is a capability: kept for this tab only (a reload resumes).
  let location = sessionStorage.getItem(key);
  try {
    let offset = 0;
    if (location) {
      const head = await fetch(location, { method: "HEAD" });
      if (head.ok) offset = Number(head.headers.get("Upload-Offset")) || 0;
      else location = null;
    }
    if (!location) {
      const created = await fetch(cfg.upload, {
        method: "POST",
        headers: { "Upload-Length": String(file.size), "Upload-Name": encodeURIComponent(file.name) },
      });
      if (created.status !== 201) throw new Error(await created.text());
      location = created.headers.get("Location");
      sessionStorage.setItem(key, location);
    }
    let failures = 0;
    let status = "";
    while (offset < file.size) {
      ui.progress.value = Math.floor((offset / file.size) * 100);
      ui.sent.textContent = "Uploading… " + ui.progress.value + "%";
      try {
        const response = await fetch(location, {
          method: "PATCH",
          headers: { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
          body: file.slice(offset, offset + CHUNK),
        });
        if (response.status === 409 || response.status === 204) {
          offset = Number(response.headers.get("Upload-Offset")) || offset;
          failures = 0;
          if (response.status === 204 && offset >= file.size) {
            const verdict = response.headers.get("Upload-Result") || "";
            if (verdict !== "accepted") throw new Error(decodeURIComponent(verdict) || "refused");
            status = response.headers.get("Message-Status") || "";
          }
        } else {
          throw new Error((await response.text()).trim() || "HTTP " + response.status);
        }
      } catch (err) {
        if (err instanceof TypeError && failures < 30) {
          // The network dropped: wait and continue from the last offset jalsa confirms.
          failures += 1;
          ui.sent.textContent = "Connection lost; resuming…";
          await new Promise((r) => setTimeout(r, Math.min(15, 2 ** failures) * 1000));
          const head = await fetch(location, { method: "HEAD" }).catch(() => null);
          if (head && head.ok) offset = Number(head.headers.get("Upload-Offset")) || offset;
          continue;
        }
        throw err;
      }
    }
    sessionStorage.removeItem(key);
    ui.progress.value = 100;
    ui.sent.textContent = "Uploaded. " + (status === "pending" ? WAITING : APPROVED);
  } catch (err) {
    sessionStorage.removeItem(key);
    ui.sent.textContent = "Upload failed: " + (err && err.message ? err.message : err);
  } finally {
    ui.send.disabled = false;
  }
}

// -- wiring ---------------------------------------------------------------------------------
ui.join.addEventListener("click", join);
ui.leave.addEventListener("click", leave);
ui.send.addEventListener("click", upload);
messageState();
ui.audioOnly.addEventListener("change", async () => {
  try {
    await openMedia();
  } catch (err) {
    return;
  }
  // WHIP cannot renegotiate: a new session with the new tracks replaces the old one.
  if (state.wanted && !state.replaced) {
    closePeer(true);
    state.attempt = 0;
    join();
  }
});
window.addEventListener("online", () => {
  if (state.wanted && (!state.pc || state.pc.connectionState !== "connected")) {
    state.attempt = 0;
    join();
  }
});
if (navigator.connection && navigator.connection.addEventListener) {
  navigator.connection.addEventListener("change", () => {
    // A new network (Wi-Fi to 4G): the old ICE path is probably gone; check shortly.
    const pc = state.pc;
    setTimeout(() => {
      if (state.wanted && pc === state.pc && (!pc || pc.connectionState !== "connected")) {
        rejoinSoon("The network changed.");
      }
    }, DISCONNECTED_MS);
  });
}
window.addEventListener("pagehide", () => { if (state.wanted) closePeer(true); });

setButtons();
for (const old of Object.keys(localStorage)) {
  if (old.startsWith("jalsa-upload:")) localStorage.removeItem(old); // an older page's copy
}
if (unsupported()) {
  problem(unsupported());
  tellOperator(unsupported());
  setStatus("Cannot join from this address", "trouble");
} else {
  openMedia().catch(() => {});
}
pollStatus();
setInterval(pollStatus, (cfg.status_seconds || 2) * 1000);
setInterval(() => { measure().catch(() => {}); render(); }, 1000);
