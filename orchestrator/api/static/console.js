// The operator console: live updates over /api/live (polling the GETs when WebSockets are
// blocked), and every control of the show. Plain JavaScript, no build step, nothing
// fetched from elsewhere. Everything shown is set with textContent (never as HTML).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);

  // -- the operator token: from the #token= link once, then kept in this tab only ---------
  // (sessionStorage: gone when the tab closes, never shared with other tabs or written to
  // the profile for good; an older console's localStorage copy is moved here, then wiped)
  const params = new URLSearchParams(location.hash.slice(1));
  const legacy = localStorage.getItem("jalsa-token");
  localStorage.removeItem("jalsa-token");
  if (legacy && !sessionStorage.getItem("jalsa-token")) sessionStorage.setItem("jalsa-token", legacy);
  if (params.get("token")) {
    sessionStorage.setItem("jalsa-token", params.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  let token = sessionStorage.getItem("jalsa-token") || "";

  const S = {
    facts: null, // GET /api/console: the event's name and speakers
    state: null, rundown: null, audio: null, messages: null, monitoring: null,
    status: {}, // topic -> the HTTP status its GET last answered
    offsets: [], // recent (server clock - this clock) samples, seconds
    transport: "connecting", // live | polling | reconnecting
    stateAt: 0, // server time the state was made at
    running: false,
  };
  const TOPICS = {
    state: "/api/state", rundown: "/api/rundown", audio: "/api/audio",
    messages: "/api/messages", monitoring: "/api/monitoring",
  };
  const RUNDOWN_WORDS = {
    before: "Before the show", on: "On air", hold: "On hold", gap: "Between items", ended: "Ended",
  };
  const KIND_WORDS = {
    browser: "joins from the browser", testsrc: "test pattern", clip: "clip", pull: "pulled stream",
  };

  // -- small helpers ------------------------------------------------------------------------
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k.startsWith("aria-") || k.startsWith("data-") || k === "role" || k === "for") node.setAttribute(k, v);
      else node[k] = v;
    }
    node.append(...children);
    return node;
  }
  // A button whose visible text is `label` and whose accessible name adds `more`.
  function button(label, more, onclick, cls = "small") {
    const b = el("button", { type: "button", class: cls, onclick });
    b.append(el("span", { class: "label", text: label }), el("span", { class: "visually-hidden", text: more ? " " + more : "" }));
    return b;
  }
  function setButton(b, label, more) {
    b.querySelector(".label").textContent = label;
    b.querySelector(".visually-hidden").textContent = more ? " " + more : "";
  }
  const text = (node, value) => { if (node.textContent !== value) node.textContent = value; };
  const now = () => Date.now() / 1000;
  const serverNow = () => now() + (S.offsets.length ? Math.max(...S.offsets) : 0);
  function noteOffset(serverTime) {
    S.offsets.push(serverTime - now());
    if (S.offsets.length > 8) S.offsets.shift();
  }
  const clock = (t) => new Date((t - (serverNow() - now())) * 1000)
    .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  function mmss(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
  }
  const human = (n) => n > 1e9 ? (n / 1e9).toFixed(2) + " GB" : n > 1e6 ? (n / 1e6).toFixed(1) + " MB" : (n / 1e3).toFixed(0) + " kB";
  const nameOf = (id) => {
    const s = S.facts && S.facts.speakers.find((x) => x.id === id);
    return s ? s.name : id;
  };
  const speakers = () => S.facts ? S.facts.speakers
    : (S.state ? S.state.speakers.map((id) => ({ id, name: id, title: "", live: S.state.live_speakers.includes(id), source: "" })) : []);

  // Children of `container` kept by key: created once, updated in place (focus and a
  // slider being dragged survive the updates), reordered, removed when gone.
  function keyed(container, list, keyOf, create, update) {
    const old = new Map([...container.children].map((c) => [c.dataset.key, c]));
    list.forEach((item, i) => {
      const key = String(keyOf(item));
      let node = old.get(key);
      if (node) old.delete(key);
      else { node = create(item); node.dataset.key = key; }
      update(node, item);
      if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
    });
    for (const node of old.values()) node.remove();
  }

  // -- status messages (aria-live) ----------------------------------------------------------
  let noticeTimer = null;
  function notice(message, kind = "info") {
    const n = $("notice");
    n.textContent = message;
    n.className = kind;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { if (n.textContent === message) n.textContent = ""; }, kind === "ok" ? 8000 : 30000);
  }
  function detailText(body) {
    if (!body || typeof body !== "object") return "";
    const d = body.detail ?? body.error ?? body.message;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) {
      return d.map((p) => p.key ? `${p.key}: ${p.message}`
        : p.loc ? `${p.loc.filter((x) => x !== "body").join(".")}: ${p.msg}` : (p.msg || p.message || JSON.stringify(p))).join("; ");
    }
    if (d && typeof d === "object") return d.field ? `${d.field}: ${d.message}` : (d.message || JSON.stringify(d));
    return "";
  }

  // -- HTTP -----------------------------------------------------------------------------------
  class Unauthorized extends Error {}
  async function api(path, { method = "GET", body } = {}) {
    const headers = { Authorization: "Bearer " + token };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401) { showLogin("The operator token was refused: paste it again."); throw new Unauthorized(); }
    if (r.status === 429 && r.headers.get("Retry-After")) {
      showLogin(`Too many wrong tokens from this address: try again in ${r.headers.get("Retry-After")} s.`);
      throw new Unauthorized();
    }
    return r;
  }
  const rundownIn = (body) => {
    if (!body || typeof body !== "object") return null;
    for (const c of [body, body.rundown, body.current, body.detail]) if (c && Array.isArray(c.items) && "version" in c) return c;
    return null;
  };
  const topicOf = (path) => path.startsWith("/api/rundown") ? "rundown"
    : path.startsWith("/api/messages") ? "messages" : path.includes("/audio") ? "audio" : "state";

  // A write: its outcome goes to the notice line, in words, whatever happens.
  async function write(what, method, path, body) {
    let r;
    try {
      r = await api(path, { method, body });
    } catch (e) {
      if (!(e instanceof Unauthorized)) notice(`${what}: could not reach jalsa (${e.message})`, "error");
      return null;
    }
    let data = null;
    try { data = await r.json(); } catch { /* no JSON body */ }
    const rundown = path.startsWith("/api/rundown") ? rundownIn(data) : null;
    if (r.ok) {
      const cut = data && (data.cut || (data.change && data.change.cut));
      notice(cut && cut.length ? `${what}: done; cut by a hard start: ${cut.join(", ")}` : `${what}: done`, "ok");
      if (rundown) apply("rundown", 200, rundown); else refresh(topicOf(path));
      if (topicOf(path) !== "state") refresh("state");
      return data || {};
    }
    if (r.status === 409 && path.startsWith("/api/rundown")) {
      if (rundown) apply("rundown", 200, rundown); else await refresh("rundown");
      const why = typeof (data && data.detail) === "string" ? data.detail : "another operator changed it first";
      notice(`The rundown changed: ${why}, refreshed. Check it and try again.`, "error");
      return null;
    }
    if ((r.status === 404 && detailText(data) === "Not Found") || r.status === 405) {
      notice(`${what} is not available on this server yet (${method} ${path} answered ${r.status}).`, "error");
      return null;
    }
    notice(`${what} refused (${r.status}): ${detailText(data) || r.statusText}`, "error");
    return null;
  }
  function rundownWrite(what, method, path, extra = {}) {
    return write(what, method, path, { version: S.rundown ? S.rundown.version : null, ...extra });
  }

  // -- asking the operator ------------------------------------------------------------------
  function ask({ title, text: body = "", ok, input = null }) {
    return new Promise((resolve) => {
      const d = $("ask");
      $("ask-title").textContent = title;
      $("ask-text").textContent = body;
      $("ask-ok").textContent = ok;
      $("ask-ok").className = input ? "primary" : "danger";
      $("ask-label").hidden = !input;
      if (input) { $("ask-label-text").textContent = input.label; $("ask-input").value = input.value || ""; }
      let answer = null;
      $("ask-form").onsubmit = (e) => { e.preventDefault(); answer = input ? $("ask-input").value : true; d.close(); };
      $("ask-cancel").onclick = () => d.close();
      d.addEventListener("close", () => resolve(answer), { once: true });
      d.showModal();
      (input ? $("ask-input") : $("ask-cancel")).focus();
    });
  }
  const confirmed = (title, body, ok) => ask({ title, text: body, ok });

  // -- the rundown's operations ---------------------------------------------------------------
  const onAirItem = () => S.rundown && S.rundown.items.find((i) => i.state === "on");
  const toCome = () => S.rundown ? S.rundown.items.filter((i) => ["next", "upcoming", "skipped"].includes(i.state)) : [];
  const ops = {
    next: () => rundownWrite("Next", "POST", "/api/rundown/next"),
    async hold() {
      const words = await ask({
        title: "Hold: stand by", text: "The program shows a stand-by slate; every destination stays live and the item on air keeps its time.",
        ok: "Hold", input: { label: "Stand-by text", value: (S.rundown && S.rundown.hold) || "Please stand by" },
      });
      if (words !== null) await rundownWrite("Hold", "POST", "/api/rundown/hold", { text: words });
    },
    resume: () => rundownWrite("Resume", "POST", "/api/rundown/resume"),
    async extend(minutes) {
      const item = onAirItem();
      if (!item) { notice(`+${minutes} min: nothing is on air`, "error"); return; }
      await rundownWrite(`+${minutes} min for ${nameOf(item.speaker)}`, "PATCH",
        `/api/rundown/items/${encodeURIComponent(item.id)}`, { duration: item.duration + 60 * minutes });
    },
    async end() {
      if (await confirmed("End the event now?", "The end slate goes up and the rundown stops; this cannot be undone.", "End event")) {
        await rundownWrite("End event", "POST", "/api/rundown/end");
      }
    },
    take: (item) => rundownWrite(`Take ${nameOf(item.speaker)}`, "POST", "/api/rundown/take", { item: item.id }),
    async skip(item) {
      if (await confirmed(`Skip ${nameOf(item.speaker)}?`, `Item ${item.id} (${mmss(item.duration)}) will not be played.`, "Skip")) {
        await rundownWrite(`Skip ${nameOf(item.speaker)}`, "DELETE", `/api/rundown/items/${encodeURIComponent(item.id)}`);
      }
    },
    move(item, delta) {
      const list = toCome();
      const at = list.findIndex((i) => i.id === item.id);
      const to = at + delta;
      if (at < 0 || to < 0 || to >= list.length) return;
      const after = delta < 0 ? (to === 0 ? null : list[to - 1].id) : list[to].id;
      return rundownWrite(`Move ${nameOf(item.speaker)} ${delta < 0 ? "up" : "down"}`, "POST", "/api/rundown/move", { item: item.id, after });
    },
    takeSpeaker: (speaker, duration) => rundownWrite(`Put ${nameOf(speaker)} on air`, "POST", "/api/rundown/take", { speaker, duration }),
  };
  const durationValue = (v) => /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v.trim();

  // -- rendering: program -----------------------------------------------------------------------
  function renderState() {
    const s = S.state;
    if (!s) return;
    text($("event"), s.event);
    document.title = `${s.event} · jalsa console`;
    const pill = $("show-state");
    const shown = S.rundown ? S.rundown.state : s.state;
    text(pill, RUNDOWN_WORDS[shown] || shown);
    pill.className = "pill " + shown;
    const onair = s.on_air_kind !== "slate" ? (s.current ? s.current.name : s.on_air)
      : s.hold ? `Stand-by slate (“${s.hold}”)` : `Slate (${s.slate || "–"})`;
    text($("onair"), s.on_air_kind === "fallback" ? onair + " (recorded)" : onair);
    text($("next"), s.next ? `${s.next.name} at ${clock(s.next.start)}` : "–");
    text($("program"), `${s.program.width}×${s.program.height} @ ${s.program.fps} fps · ${mmss(s.program.seconds)} produced`
      + (s.program.late_resets ? ` · fell behind ${s.program.late_resets}×` : ""));
    renderDestinations();
    renderBanners();
    renderSpeakers();
    renderCountdowns();
  }

  function renderCountdowns() {
    const item = onAirItem();
    const t = serverNow();
    let left = null;
    if (item) left = item.end - t;
    else if (S.state && S.state.state === "on") left = S.state.remaining - (t - S.stateAt);
    const r = $("remaining");
    if (left === null) { text(r, ""); r.className = ""; }
    else { text(r, left >= 0 ? `${mmss(left)} left` : `${mmss(-left)} over`); r.className = left >= 0 ? "muted" : "over"; }
    for (const li of $("rundown-items").children) {
      const c = li.querySelector(".countdown");
      if (!c || li.dataset.state !== "on") continue;
      const rest = Number(li.dataset.end) - t;
      text(c, rest >= 0 ? `${mmss(rest)} left` : `${mmss(-rest)} over`);
      li.classList.toggle("over", rest < 0);
    }
  }

  function setMeter(meter, value, db) {
    const level = Number.isFinite(db) ? Math.max(-60, Math.min(0, db)) : -60;
    meter.querySelector(".cover").style.width = `${(100 * -level) / 60}%`;
    meter.setAttribute("aria-valuenow", String(Math.round(level)));
    meter.setAttribute("aria-valuetext", Number.isFinite(db) ? `${db.toFixed(1)} dBFS` : "silent");
    if (value) text(value, Number.isFinite(db) ? `${db.toFixed(1)} dBFS` : "−∞ dBFS");
  }
  const dbfs = (v) => (v === null || v === undefined || v === "-inf" || v <= -100) ? -Infinity : Number(v);

  function renderAudio() {
    const note = $("audio-note");
    if (S.status.audio !== 200) {
      text(note, S.status.audio ? `Program audio levels are not available on this server yet (GET /api/audio: ${S.status.audio}).` : "");
      note.className = "muted small";
      renderSpeakers();
      return;
    }
    const p = S.audio.program || {};
    const peak = dbfs(p.peak ?? p.peak_dbfs), rms = dbfs(p.rms ?? p.rms_dbfs);
    setMeter($("peak-meter"), $("peak-value"), peak);
    setMeter($("rms-meter"), $("rms-value"), rms);
    const silent = S.state && S.state.on_air_kind !== "slate" && !(peak > -50);
    text(note, silent ? `The program is silent (below −50 dBFS) while ${$("onair").textContent} is on air.` : "");
    note.className = silent ? "over small" : "muted small";
    renderSpeakers();
  }

  // -- rendering: rundown -----------------------------------------------------------------------
  function renderRundown() {
    const r = S.rundown;
    const status = S.status.rundown;
    const line = $("rundown-state");
    if (!r) {
      text(line, status && status !== 200
        ? `Rundown control is not available on this server yet (GET /api/rundown answered ${status}); the buttons will say so.`
        : "Loading the rundown…");
      $("rundown-items").replaceChildren();
      renderBanners();
      return;
    }
    const parts = [RUNDOWN_WORDS[r.state] || r.state];
    if (r.state === "hold" && r.hold) parts.push(`“${r.hold}”`);
    if (r.ends_at) parts.push(`ends at ${clock(r.ends_at)}`);
    if (r.resumed_at) parts.push(`resumed after a restart at ${clock(r.resumed_at)}`);
    if (r.journal_error) parts.push(`journal: ${r.journal_error}`);
    parts.push(`version ${r.version}`);
    text(line, parts.join(" · "));
    line.className = r.journal_error ? "over" : "muted";
    const ended = r.state === "ended";
    const on = onAirItem();
    $("do-next").disabled = ended;
    $("do-hold").disabled = ended;
    $("do-resume").disabled = r.state !== "hold";
    $("do-plus1").disabled = !on;
    $("do-plus5").disabled = !on;
    $("do-end").disabled = ended;
    const movable = toCome();
    keyed($("rundown-items"), r.items, (i) => i.id, createItem, (li, item) => updateItem(li, item, movable));
    fillSelect($("insert-after"), [{ value: "", label: "the item on air (next)" },
      ...movable.filter((i) => i.state !== "skipped").map((i) => ({ value: i.id, label: `${nameOf(i.speaker)} (${i.id})` }))]);
    renderBanners();
    renderCountdowns();
    if (S.state) renderState();
  }

  function createItem(item) {
    const li = el("li");
    li.item = item;
    const who = el("span", { class: "who" });
    const pill = el("span", { class: "pill" });
    const id = el("span", { class: "muted small item-id" });
    const when = el("div", { class: "when" });
    const countdown = el("span", { class: "countdown" });
    const duration = el("span", { class: "duration muted small" });
    const b = {
      take: button("Take", "", () => ops.take(li.item)),
      skip: button("Skip", "", () => ops.skip(li.item), "small danger"),
      up: button("Move up", "", () => ops.move(li.item, -1)),
      down: button("Move down", "", () => ops.move(li.item, 1)),
    };
    li.parts = { who, pill, id, when, countdown, duration, b };
    li.append(
      el("div", {}, who, " ", pill, " ", id),
      el("div", { class: "when" }, duration),
      el("div", { class: "when-line" }, when, " ", countdown),
      el("div", { class: "item-buttons" }, b.take, b.skip, b.up, b.down),
    );
    return li;
  }

  function updateItem(li, item, movable) {
    li.item = item;
    const { who, pill, id, when, countdown, duration, b } = li.parts;
    const name = nameOf(item.speaker);
    li.className = item.state;
    li.dataset.state = item.state;
    li.dataset.end = String(item.end);
    text(who, name);
    text(pill, item.state);
    pill.className = "pill " + item.state;
    text(id, item.id);
    text(duration, mmss(item.duration));
    const held = item.held || 0;
    let words;
    let over = false;
    if (item.state === "done") {
      const aired = item.end - item.start - held;
      over = aired > item.duration + 1;
      words = `${clock(item.start)}–${clock(item.end)} · aired ${mmss(aired)}` + (over ? ` (${mmss(aired - item.duration)} over)` : "");
    } else if (item.state === "on") {
      words = `on since ${clock(item.start)} · planned until ${clock(item.end)} ·`;
    } else if (item.state === "skipped") {
      words = "skipped";
    } else {
      words = `planned ${clock(item.start)}–${clock(item.end)}`;
    }
    if (item.hard_start) words += ` · hard start ${clock(item.hard_start)}`;
    if (item.cut) words += " · cut by a hard start";
    text(when, words);
    li.classList.toggle("over", over);
    countdown.hidden = item.state !== "on";
    const more = `${name} (item ${item.id})`;
    const coming = ["next", "upcoming"].includes(item.state);
    const position = movable.findIndex((i) => i.id === item.id);
    b.take.hidden = !coming;
    b.skip.hidden = !coming;
    b.up.hidden = b.down.hidden = position < 0;
    b.up.disabled = position <= 0;
    b.down.disabled = position < 0 || position >= movable.length - 1;
    for (const [key, label] of [["take", "Take"], ["skip", "Skip"], ["up", "Move up"], ["down", "Move down"]]) setButton(b[key], label, more);
  }

  function fillSelect(select, options) {
    const keep = select.value;
    const same = select.options.length === options.length
      && options.every((o, i) => select.options[i].value === o.value && select.options[i].textContent === o.label);
    if (!same) {
      select.replaceChildren(...options.map((o) => el("option", { value: o.value, text: o.label })));
      if (options.some((o) => o.value === keep)) select.value = keep;
    }
  }

  function renderBanners() {
    const banners = [];
    if (S.rundown && S.rundown.state === "hold") {
      banners.push({ key: "hold", cls: "banner hold", text: `On hold: “${S.rundown.hold || "Please stand by"}” is on the program. Resume (R) when ready.` });
    }
    const m = S.monitoring;
    if (m && m.outages) {
      for (const o of m.outages.active) {
        banners.push({
          key: `${o.scope}/${o.platform}`, cls: "banner",
          text: `Outage (${o.scope}): ${o.platform} since ${clock(o.since)}` + (o.cities.length ? ` — seen from ${o.cities.join(", ")}` : ""),
        });
      }
    }
    const up = S.state && S.state.uplink;
    if (up && up.saturated) {
      const rate = up.throughput_bps ? ` (it carries about ${(up.throughput_bps / 1e6).toFixed(1)} Mbit/s)` : "";
      banners.push({
        key: "uplink", cls: "banner",
        text: `Uplink full${rate}: ${up.lagging.join(", ")} cannot keep up. Pause the least important destinations, or send them through an edge.`,
      });
    }
    keyed($("banners"), banners, (b) => b.key, () => el("div", { role: "alert" }), (node, b) => { node.className = b.cls; text(node, b.text); });
  }

  // -- rendering: green room --------------------------------------------------------------------
  function renderSpeakers() {
    const list = speakers();
    fillSelect($("take-speaker"), list.map((s) => ({ value: s.id, label: s.name })));
    fillSelect($("insert-speaker"), list.map((s) => ({ value: s.id, label: s.name })));
    keyed($("speakers"), list, (s) => s.id, createSpeaker, updateSpeaker);
  }

  function createSpeaker(sp) {
    const li = el("li", { class: "card" });
    li.speaker = sp;
    const thumb = el("img", { class: "thumb", alt: `${sp.name}: the latest picture (refreshed every second)`, hidden: true });
    const noPicture = el("div", { class: "thumb none", text: "no picture" });
    thumbSeen.observe(li);
    const name = el("strong", { text: sp.name });
    const title = el("span", { class: "muted small", text: sp.title || "" });
    const joined = el("span", { class: "pill" });
    const onair = el("span", { class: "pill live", text: "on air" });
    const kind = el("div", { class: "facts" });
    const link = el("div", { class: "facts" });
    const meter = el("div", { class: "meter", role: "meter", "aria-label": `${sp.name} input level`, "aria-valuemin": "-60", "aria-valuemax": "0", "aria-valuenow": "-60" }, el("div", { class: "cover" }));
    const value = el("span", { class: "meter-value" });
    const gainId = `gain-${sp.id}`;
    const gain = el("input", { type: "range", id: gainId, min: "-20", max: "20", step: "1", value: "0" });
    const gainOut = el("output", { for: gainId, text: "0 dB" });
    gain.addEventListener("input", () => { gainOut.textContent = `${gain.value} dB`; });
    gain.addEventListener("change", () => write(`Gain ${gain.value} dB for ${sp.name}`, "POST",
      `/api/speakers/${encodeURIComponent(sp.id)}/audio`, { gain_db: Number(gain.value) }));
    const b = {
      take: button("Take to air", sp.name, () => {
        const d = $("greenroom-duration").value || "5m";
        ops.takeSpeaker(sp.id, durationValue(d));
      }, "small primary"),
      mute: button("Mute", sp.name, () => {
        const muted = !(li.audio && li.audio.muted);
        write(`${muted ? "Mute" : "Unmute"} ${sp.name}`, "POST", `/api/speakers/${encodeURIComponent(sp.id)}/audio`, { muted });
      }),
      revoke: button("Revoke link", sp.name, async () => {
        if (await confirmed(`Revoke ${sp.name}'s link?`, "Every link of this speaker stops working and their live session ends now. Copy link (or `jalsa links`) then gives them a new one.", "Revoke link")) {
          write(`Revoke ${sp.name}'s link`, "POST", `/api/speakers/${encodeURIComponent(sp.id)}/revoke`);
        }
      }, "small danger"),
      copy: button("Copy link", sp.name, () => copyLink(li)),
    };
    // where the link is shown when the clipboard cannot take it (plain http, no permission)
    const linkId = `link-${sp.id}`;
    const linkField = el("input", { id: linkId, class: "link-field", readOnly: true, autocomplete: "off" });
    const linkBox = el("div", { class: "link-box", hidden: true },
      el("label", { for: linkId, text: `Join link for ${sp.name}` }), linkField);
    li.parts = { joined, onair, kind, link, meter, value, gain, gainOut, b, thumb, noPicture, linkBox, linkField };
    li.append(
      el("div", { class: "title" }, name, title, joined, onair),
      el("div", { class: "thumb-box" }, thumb, noPicture),
      kind, link,
      el("div", { class: "meter-row" }, el("span", { class: "meter-name", text: "Level" }), meter, value),
      el("div", { class: "gain" }, el("label", { for: gainId, text: "Gain" }), gain, gainOut),
      el("div", { class: "controls" }, b.take, b.mute, b.copy, b.revoke),
      linkBox,
    );
    return li;
  }

  function updateSpeaker(li, sp) {
    const { joined, onair, kind, link, meter, value, gain, gainOut, b } = li.parts;
    const s = S.state;
    const source = s && s.sources.find((x) => x.kind === "webrtc" && x.speaker === sp.id);
    const audio = S.status.audio === 200 && S.audio.speakers ? S.audio.speakers[sp.id] : null;
    li.audio = audio;
    const live = sp.live;
    const isOn = !!s && s.on_air === sp.id;
    onair.hidden = !isOn;
    li.classList.toggle("on", isOn);
    if (live) {
      const connected = !!(source && source.connected);
      // A join that failed before connecting, as the speaker's page reported it.
      const failed = !connected && s && s.join_problems ? s.join_problems[sp.id] : null;
      text(joined, connected ? "joined" : failed ? "join failed" : source ? source.state : "not joined");
      joined.className = "pill " + (connected ? "joined" : failed ? "lost" : source ? "connecting" : "absent");
      const q = [];
      if (source) {
        if (source.bitrate_bps !== null && source.bitrate_bps !== undefined) q.push(`${(source.bitrate_bps / 1000).toFixed(0)} kb/s`);
        if (source.packet_loss_ratio !== null && source.packet_loss_ratio !== undefined) q.push(`loss ${(source.packet_loss_ratio * 100).toFixed(1)} %`);
        if (source.rtt_seconds !== null && source.rtt_seconds !== undefined) q.push(`RTT ${(source.rtt_seconds * 1000).toFixed(0)} ms`);
        if (source.sent_bitrate_bps !== null && source.sent_bitrate_bps !== undefined) q.push(`sends ${(source.sent_bitrate_bps / 1000).toFixed(0)} kb/s`);
        if (source.video_paused) q.push("video paused for the link");
        else if (source.audio_only) q.push("audio only");
      }
      text(link, failed ? `Join failed: ${failed.text} (${clock(failed.at)})`
        : source ? (q.length ? `Link: ${q.join(" · ")}` : "Link: measuring…") : "Link: not joined");
    } else {
      text(link, "");
    }
    joined.hidden = !live;
    link.hidden = !live;
    text(kind, KIND_WORDS[sp.source] || sp.source || "");
    let db = -Infinity;
    if (audio) db = dbfs(audio.level_dbfs);
    else if (source && source.level > 0) db = 20 * Math.log10(source.level);
    setMeter(meter, value, db);
    const muted = !!(audio && audio.muted);
    setButton(b.mute, muted ? "Unmute" : "Mute", sp.name);
    b.mute.setAttribute("aria-pressed", muted ? "true" : "false");
    if (audio && document.activeElement !== gain && typeof audio.gain_db === "number") {
      gain.value = String(audio.gain_db);
      gainOut.textContent = `${audio.gain_db} dB`;
    }
    b.revoke.hidden = !live;
    b.copy.hidden = !live;
  }

  // A fresh join link for a live speaker (as `jalsa links` makes it), to the clipboard;
  // where the clipboard is unavailable, into a field on the card to copy by hand.
  async function copyLink(li) {
    const sp = li.speaker, { b, linkBox, linkField } = li.parts;
    const data = await write(`Link for ${sp.name}`, "POST", `/api/speakers/${encodeURIComponent(sp.id)}/link`);
    if (!data || !data.url) return;
    const until = data.expires ? ` (valid until ${clock(data.expires)})` : "";
    const note = data.note ? `; ${data.note}` : "";
    let copied = false;
    try {
      if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(data.url); copied = true; }
    } catch { /* no permission: the field below */ }
    linkField.value = data.url;
    linkBox.hidden = copied;
    if (copied) {
      setButton(b.copy, "Link copied", sp.name);
      clearTimeout(li.copiedTimer);
      li.copiedTimer = setTimeout(() => setButton(b.copy, "Copy link", sp.name), 4000);
      notice(`Link copied: ${sp.name}'s join link${until}${note}`, "ok");
    } else {
      linkField.focus();
      linkField.select();
      notice(`The clipboard is not available here: copy ${sp.name}'s join link from the field on their card${until}${note}`, "info");
    }
  }

  // Thumbnails: about once a second for each card on screen, none while the tab is hidden.
  // Each picture is a blob URL (the request needs the token); the one it replaces is
  // revoked at once, so memory stays flat however long the console is open.
  const thumbSeen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      e.target.onScreen = e.isIntersecting;
      // a card just come on screen gets its picture now, not at the next round
      if (e.isIntersecting && !e.target.thumbUrl && S.running && !document.hidden && !thumbsMissing) refreshThumb(e.target);
    }
  });
  let thumbsTimer = null, thumbsMissing = false, thumbsBusy = false;
  function setThumb(li, url) {
    const { thumb, noPicture } = li.parts;
    const old = li.thumbUrl;
    li.thumbUrl = url;
    if (url) thumb.src = url; else thumb.removeAttribute("src");
    thumb.hidden = !url;
    noPicture.hidden = !!url;
    if (old) URL.revokeObjectURL(old);
  }
  async function refreshThumb(li) {
    let r;
    try { r = await api(`/api/speakers/${encodeURIComponent(li.speaker.id)}/thumbnail.jpg`); } catch { return; }
    if (r.ok) {
      const blob = await r.blob();
      if (li.isConnected) setThumb(li, URL.createObjectURL(blob));
    } else if (r.status === 404) {
      let body = null;
      try { body = await r.json(); } catch { /* none */ }
      if (body && body.detail === "Not Found") thumbsMissing = true; // an older jalsa
      setThumb(li, null);
    }
  }
  async function refreshThumbs() {
    if (thumbsBusy) return; // (a round is on: it schedules the next)
    thumbsBusy = true;
    clearTimeout(thumbsTimer);
    try {
      if (S.running && !document.hidden && !thumbsMissing) {
        const cards = [...$("speakers").children].filter((li) => li.onScreen && li.parts);
        await Promise.all(cards.map(refreshThumb));
      }
    } finally {
      thumbsBusy = false;
      thumbsTimer = setTimeout(refreshThumbs, 1000);
    }
  }
  // a card removed (a speaker gone; not one merely moved) gives its picture back
  new MutationObserver((changes) => {
    for (const c of changes) {
      for (const node of c.removedNodes) if (node.thumbUrl && !node.isConnected) { URL.revokeObjectURL(node.thumbUrl); node.thumbUrl = null; }
    }
  }).observe($("speakers"), { childList: true });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshThumbs(); });
  thumbsTimer = setTimeout(refreshThumbs, 0);

  // -- rendering: messages ----------------------------------------------------------------------
  function messageList() {
    const m = S.messages;
    if (Array.isArray(m)) return m;
    return (m && (m.messages || m.items)) || [];
  }
  function renderMessages() {
    const note = $("messages-note");
    if (S.status.messages !== 200) {
      text(note, S.status.messages ? `Recorded messages are not available on this server yet (GET /api/messages answered ${S.status.messages}).` : "");
      $("messages").replaceChildren();
      return;
    }
    const list = messageList();
    const auto = S.messages && S.messages.approval === "auto";
    text(note, (list.length ? "" : "No recorded messages uploaded. ")
      + (auto ? "Uploads are approved as they land (approve_messages = \"auto\")." : "Only an approved message is used on air."));
    keyed($("messages"), list, (m) => m.id, createMessage, updateMessage);
  }
  function createMessage(msg) {
    const li = el("li", { class: "card" });
    li.message = msg;
    const who = el("strong");
    const pill = el("span", { class: "pill" });
    const facts = el("div", { class: "facts" });
    const player = el("div");
    const b = {
      preview: button("Preview", "", () => preview(li)),
      approve: button("Approve", "", () => write(`Approve ${nameOf(li.message.speaker)}'s message`, "POST",
        `/api/messages/${encodeURIComponent(li.message.id)}/approve`), "small primary"),
      del: button("Delete", "", async () => {
        const who = nameOf(li.message.speaker);
        if (await confirmed(`Delete ${who}'s message?`, "The recording is removed and will not be used on air.", "Delete")) {
          write(`Delete ${who}'s message`, "DELETE", `/api/messages/${encodeURIComponent(li.message.id)}`);
        }
      }, "small danger"),
    };
    li.parts = { who, pill, facts, player, b };
    li.append(el("div", { class: "title" }, who, pill), facts, player, el("div", { class: "controls" }, b.preview, b.approve, b.del));
    return li;
  }
  function updateMessage(li, msg) {
    li.message = msg;
    const { who, pill, facts, b } = li.parts;
    const name = nameOf(msg.speaker);
    text(who, name);
    text(pill, msg.status);
    pill.className = "pill " + msg.status;
    const parts = [];
    if (typeof msg.duration === "number") parts.push(mmss(msg.duration));
    if (msg.video === false) parts.push("audio only");
    if (typeof msg.size === "number") parts.push(human(msg.size));
    if (msg.uploaded_at) parts.push(`uploaded ${clock(msg.uploaded_at)}`);
    if (msg.approved_at) parts.push(`approved ${clock(msg.approved_at)}`);
    text(facts, parts.join(" · "));
    b.approve.hidden = msg.status === "approved";
    for (const [key, label] of [["preview", "Preview"], ["approve", "Approve"], ["del", "Delete"]]) setButton(b[key], label, `${name}'s message`);
  }
  async function preview(li) {
    const msg = li.message;
    let r;
    try { r = await api(`/api/messages/${encodeURIComponent(msg.id)}/media`); } catch (e) {
      if (!(e instanceof Unauthorized)) notice(`Preview: could not reach jalsa (${e.message})`, "error");
      return;
    }
    if (!r.ok) {
      notice(r.status === 404 || r.status === 405 ? `Preview is not available on this server yet (GET /api/messages/${msg.id}/media answered ${r.status}).`
        : `Preview refused (${r.status})`, "error");
      return;
    }
    const blob = await r.blob();
    const old = li.parts.player.querySelector("audio, video");
    if (old) URL.revokeObjectURL(old.src);
    const media = el(blob.type.startsWith("video/") ? "video" : "audio", {
      controls: true, src: URL.createObjectURL(blob), "aria-label": `${nameOf(msg.speaker)}'s message`,
    });
    li.parts.player.replaceChildren(media);
    media.play().catch(() => { /* autoplay refused: the controls are there */ });
  }

  // -- rendering: destinations ------------------------------------------------------------------
  function listenersOf(name) {
    const l = S.monitoring && S.monitoring.listeners;
    const d = l && l.destinations.find((x) => x.destination === name);
    return d && d.value !== null ? d.value : null;
  }
  function renderDestinations() {
    if (!S.state) return;
    keyed($("destinations"), S.state.destinations, (d) => d.name, createDestination, updateDestination);
    renderEdgeChoice(S.state.edges || []);
  }
  // The Add form's "Sent by": this machine, or one of the edges this studio sends through.
  function renderEdgeChoice(edges) {
    const select = $("destination-via");
    $("destination-via-label").hidden = edges.length === 0;
    const direct = select.options[0];
    keyed(select, [direct.value, ...edges], String, (name) => el("option", { value: name }, `the edge ${name}`), () => {});
  }
  function createDestination(d) {
    const li = el("li", { class: "card" });
    li.destination = d;
    const title = el("strong");
    const pill = el("span", { class: "pill" });
    const facts = el("div", { class: "facts" });
    const error = el("div", { class: "facts" });
    const b = {
      toggle: button("Pause", d.name, () => {
        const paused = li.destination.state === "paused";
        write(`${paused ? "Resume" : "Pause"} ${d.name}`, "POST", `/api/destinations/${encodeURIComponent(d.name)}/${paused ? "resume" : "pause"}`);
      }),
      remove: button("Remove", d.name, async () => {
        if (await confirmed(`Remove ${d.name}?`, "Its stream ends now (a recording is closed with its trailer); the other destinations go on.", "Remove")) {
          write(`Remove ${d.name}`, "DELETE", `/api/destinations/${encodeURIComponent(d.name)}`);
        }
      }, "small danger"),
    };
    li.parts = { title, pill, facts, error, b };
    li.append(el("div", { class: "title" }, title, pill), facts, error, el("div", { class: "controls" }, b.toggle, b.remove));
    return li;
  }
  function updateDestination(li, d) {
    li.destination = d;
    const { title, pill, facts, error, b } = li.parts;
    text(title, `${d.name} (${d.platform})`);
    text(pill, d.state);
    pill.className = "pill " + d.state;
    const parts = [`sent ${human(d.sent_bytes)}`, `lag ${d.lag_seconds.toFixed(1)} s`];
    if (d.via) parts.unshift(`via ${d.via}`);
    if (d.reconnects) parts.push(`${d.reconnects} reconnects`);
    const listeners = listenersOf(d.name);
    parts.push(listeners === null ? "listeners: –" : `listeners: ${listeners.toLocaleString()}`);
    if (d.live_check) parts.push(`platform: ${d.live_check}`);
    text(facts, parts.join(" · "));
    text(error, d.last_error ? `last error: ${d.last_error}` : "");
    error.hidden = !d.last_error;
    setButton(b.toggle, d.state === "paused" ? "Resume" : "Pause", d.name);
  }
  // An outage of the audience's platforms: the mirror's link and a short text to post.
  // A link without a host (the mirror has no watch_url) is this console's own address.
  function renderRedirect(r) {
    const box = $("redirect");
    box.hidden = !r;
    if (!r) return;
    const first = r.links[0];
    const link = first.startsWith("/") ? `${location.origin}${first}` : first;
    const loopback = /^https?:\/\/(127\.|localhost|\[::1\])/.test(link);
    $("redirect-link").href = link;
    text($("redirect-link"), link);
    const post = r.text.split(first).join(link);
    if ($("redirect-text").value !== post) $("redirect-text").value = post;
    const note = $("redirect-note");
    note.hidden = !loopback;
    text(note, loopback ? "This is the console's own address: set watch_url on the mirror to the address listeners reach." : "");
    $("redirect-copy").onclick = async () => {
      try {
        if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
        await navigator.clipboard.writeText(post);
        notice("Text copied: post it where your listeners are", "info");
      } catch {
        $("redirect-text").select();
        notice("The clipboard is not available here: the text is selected, copy it by hand", "info");
      }
    };
  }
  function renderMonitoring() {
    const m = S.monitoring;
    const out = $("outages");
    if (S.status.monitoring === 200 && m && m.outages) {
      const active = m.outages.active;
      out.className = active.length ? "outage" : "muted";
      text(out, active.length ? active.map((o) => `${o.scope}: ${o.platform} since ${clock(o.since)}`).join(" · ") : "none");
      renderRedirect(m.redirect);
    }
    renderBanners();
    renderDestinations();
  }

  // -- topics: the live channel and the polling fallback ----------------------------------------
  function apply(topic, status, data) {
    S.status[topic] = status;
    const ok = status === 200;
    if (topic === "state") {
      if (!ok) return;
      S.state = data;
      if (S.transport !== "live" && data.current && data.state === "on") noteOffset(data.current.end - data.remaining);
      S.stateAt = serverNow();
      renderState();
    } else if (topic === "rundown") {
      S.rundown = ok ? data : null;
      renderRundown();
    } else if (topic === "audio") {
      S.audio = ok ? data : null;
      renderAudio();
    } else if (topic === "messages") {
      S.messages = ok ? data : null;
      renderMessages();
    } else if (topic === "monitoring") {
      S.monitoring = ok ? data : null;
      renderMonitoring();
    }
  }
  async function refresh(topic) {
    try {
      const r = await api(TOPICS[topic]);
      let data = null;
      try { data = await r.json(); } catch { /* none */ }
      apply(topic, r.status, data);
    } catch { /* the next round tries again */ }
  }

  function setTransport(mode) {
    S.transport = mode;
    const link = $("link");
    link.dataset.transport = mode;
    link.className = "muted " + mode;
    text(link, { live: "● live", polling: "polling every second (live channel unavailable)", reconnecting: "reconnecting…", connecting: "connecting…" }[mode]);
  }

  let socket = null, backoff = 1, retryTimer = null, pollTimer = null, round = 0;
  function connectLive() {
    clearTimeout(retryTimer);
    if (!S.running) return;
    let ws;
    try {
      ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`);
    } catch {
      startPolling();
      retryLive();
      return;
    }
    socket = ws;
    const fallback = setTimeout(() => { if (S.transport !== "live") { setTransport("polling"); startPolling(); } }, 3000);
    ws.onopen = () => ws.send(JSON.stringify({ token }));
    ws.onmessage = (event) => {
      let m;
      try { m = JSON.parse(event.data); } catch { return; }
      if (S.transport !== "live") { clearTimeout(fallback); setTransport("live"); stopPolling(); backoff = 1; }
      if (typeof m.at === "number" && m.type === "state") noteOffset(m.at);
      apply(m.type, m.status, m.data);
    };
    ws.onclose = (event) => {
      clearTimeout(fallback);
      if (socket === ws) socket = null;
      if (!S.running) return;
      if (event.code === 4401) { showLogin("The operator token was refused: paste it again."); return; }
      if (event.code === 4429) { showLogin(`The operator token was not checked: ${event.reason}.`); return; }
      setTransport(S.transport === "live" ? "reconnecting" : "polling");
      startPolling();
      retryLive();
    };
  }
  function retryLive() {
    clearTimeout(retryTimer);
    const delay = backoff * (0.75 + Math.random() * 0.5);
    backoff = Math.min(30, backoff * 2);
    retryTimer = setTimeout(connectLive, delay * 1000);
  }
  function startPolling() {
    if (pollTimer !== null || !S.running) return;
    const tick = async () => {
      round += 1;
      const due = ["state", "rundown", "audio"];
      if (round % 2 === 0) due.push("messages");
      if (round % 3 === 0) due.push("monitoring");
      await Promise.all(due.map(refresh));
      if (pollTimer !== null) pollTimer = setTimeout(tick, 1000);
    };
    pollTimer = setTimeout(tick, 0);
  }
  function stopPolling() { clearTimeout(pollTimer); pollTimer = null; }

  let previewTimer = null;
  async function refreshPreview() {
    try {
      const r = await api("/api/preview.jpg");
      if (r.ok) {
        const url = URL.createObjectURL(await r.blob());
        const img = $("preview");
        const old = img.src;
        img.src = url;
        if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      }
    } catch { /* next second */ }
    if (S.running) previewTimer = setTimeout(refreshPreview, 1000);
  }

  // -- keyboard shortcuts -------------------------------------------------------------------------
  const KEYS = { n: "do-next", h: "do-hold", r: "do-resume", 1: "do-plus1", "+": "do-plus1", 5: "do-plus5" };
  document.addEventListener("keydown", (e) => {
    if (!S.running || e.ctrlKey || e.metaKey || e.altKey || e.repeat || $("ask").open) return;
    if (e.target.closest && e.target.closest("input, select, textarea, [contenteditable]")) return;
    const id = KEYS[e.key.toLowerCase()];
    if (!id) return;
    e.preventDefault();
    const b = $(id);
    if (b.disabled) notice(`${b.textContent}: not possible now (${$("rundown-state").textContent || "no rundown"})`, "error");
    else b.click();
  });

  // -- wiring ---------------------------------------------------------------------------------------
  $("do-next").onclick = () => ops.next();
  $("do-hold").onclick = () => ops.hold();
  $("do-resume").onclick = () => ops.resume();
  $("do-plus1").onclick = () => ops.extend(1);
  $("do-plus5").onclick = () => ops.extend(5);
  $("do-end").onclick = () => ops.end();
  $("take-form").onsubmit = (e) => {
    e.preventDefault();
    ops.takeSpeaker($("take-speaker").value, durationValue($("take-duration").value));
  };
  $("insert-form").onsubmit = (e) => {
    e.preventDefault();
    const speaker = $("insert-speaker").value;
    rundownWrite(`Add ${nameOf(speaker)}`, "POST", "/api/rundown/items", {
      speaker, duration: durationValue($("insert-duration").value), after: $("insert-after").value || null,
    });
  };
  $("destination-form").onsubmit = async (e) => {
    e.preventDefault();
    const form = e.target;
    const body = { name: form.name.value.trim(), platform: form.platform.value };
    for (const key of ["url", "key"]) if (form[key].value.trim()) body[key] = form[key].value.trim();
    if (form.audio_only.checked) body.audio_only = true;
    if (form.via.value) body.via = form.via.value;
    if (await write(`Add destination ${body.name}`, "POST", "/api/destinations", body)) {
      form.reset();
      $("add-destination").open = false;
    }
  };
  $("login-form").onsubmit = (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("jalsa-token", token);
    start();
  };

  function showLogin(message) {
    S.running = false;
    stopPolling();
    clearTimeout(retryTimer);
    clearTimeout(previewTimer);
    if (socket) { const ws = socket; socket = null; ws.close(); }
    $("console").hidden = true;
    $("login").hidden = false;
    $("login-note").textContent = message || "";
    $("token").focus();
  }

  async function start() {
    $("login").hidden = true;
    $("console").hidden = false;
    S.running = true;
    setTransport("connecting");
    try {
      const r = await api("/api/console");
      if (r.ok) S.facts = await r.json();
    } catch (e) {
      if (e instanceof Unauthorized) return;
    }
    if (S.facts) text($("event"), S.facts.event);
    renderSpeakers();
    renderRundown();
    connectLive();
    refreshPreview();
  }

  setInterval(() => { if (S.running) renderCountdowns(); }, 250);
  if (token) start(); else showLogin();
})();
