// The page's only script: fetch the session's state, draw it, send the choices. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;
let busy = false;
let pollTimer = null;
const POLL_MS = 1000;
const FIT_POLL_MS = 400;
const EVIDENCE_POLL_MS = 700;
const WORDS = { a: "A preferred", b: "B preferred", tie: "a tie" };

// The evidence panel: open or closed (kept across reloads), the pair it shows, the image picked.
const evidence = {
  open: localStorage.getItem("evidence-open") === "1",
  pairKey: null, view: null, image: null, tab: "sample", timer: null, camTimer: null, requestId: 0,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function notice(message, isError = false) {
  const box = $("notice");
  if (!message) { box.hidden = true; return; }
  box.textContent = message;
  box.classList.toggle("error", isError);
  box.hidden = false;
}

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    if (response.status === 401) {
      throw new ApiError("This page has lost its access token: open the address the server printed (ending in ?token=…) again.", 401);
    }
    throw new ApiError((data && data.error) || `${response.status} ${response.statusText}`, response.status);
  }
  return { data, status: response.status };
}

async function act(method, path, body, message) {
  if (busy) return null;
  busy = true;
  setButtons();
  try {
    const { data } = await api(method, path, body);
    render(data);
    notice((data && data.undone && data.undone.text) || message || "");
    return data;
  } catch (err) {
    notice(err.message, true);
    // The server is the truth: after an error, show what it holds now.
    try { render((await api("GET", "/api/state")).data); } catch (_) { /* keep the message */ }
    return null;
  } finally {
    busy = false;
    setButtons();
  }
}

function pctBar(metric) {
  if (metric.percentile === null) return el("span", { class: "na" }, "—");
  const fill = el("div", { class: "fill" });
  fill.style.width = `${Math.max(1, metric.percentile).toFixed(1)}%`;
  return el("div", { class: "pctbar", title: `${metric.percentile.toFixed(1)}% of the space is at or below this value` },
    el("div", { class: "track" }, fill),
    el("span", { class: "num" }, `p${Math.round(metric.percentile)}`));
}

function renderArch(side, arch) {
  $(`${side}-index`).textContent = `#${arch.index}`;
  $(`${side}-str`).textContent = arch.arch_str;
  $(`${side}-str`).title = arch.arch_str;
  // The SVG is drawn by the server from the space's own names only (preference_ui/drawing.py).
  $(`${side}-svg`).innerHTML = arch.svg;
  const table = $(`${side}-metrics`);
  table.replaceChildren();
  for (const m of arch.metrics) {
    const dir = el("span", { class: "dir", title: m.higher_is_better ? "higher is better" : "lower is better" },
      m.higher_is_better ? "▲" : "▼");
    const value = m.value === null ? el("span", { class: "na", title: "not in the data for this architecture" }, "n/a") : m.text;
    table.append(el("tr", { "data-metric": m.key },
      el("td", { class: "label" }, m.label, dir),
      el("td", { class: "value" }, value),
      el("td", { class: "pct" }, pctBar(m))));
  }
}

function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

function renderFit(fit) {
  const section = $("fit");
  $("foot-model").hidden = !fit;
  if (!fit) { section.hidden = true; $("export-model").hidden = true; return; }
  section.hidden = false;
  $("export-model").hidden = false;
  const since = [];
  if (fit.new_since) since.push(`${fit.new_since} new`);
  if (fit.gone_since) since.push(`${fit.gone_since} undone or changed`);
  $("fit-meta").textContent = `RankNet fitted on ${plural(fit.judgments, "judgment")}` +
    (since.length ? ` · since then: ${since.join(", ")}; fit again to include them` : " · up to date");
  const conf = fit.confidence || {};
  $("confidence").className = `confidence level-${(conf.level || "unsure").replace(" ", "-")}`;
  $("fit-warning").hidden = !conf.warning;
  $("fit-warning").textContent = conf.warning || "";
  $("confidence-text").textContent = conf.text || "";
  const readings = $("readings");
  readings.replaceChildren();
  for (const r of fit.reading || []) {
    const bar = el("span", { class: "share-bar" });
    bar.style.width = `${Math.max(2, 100 * r.share).toFixed(0)}%`;
    readings.append(el("li", {},
      el("span", { class: "share", title: "posterior mass of this reading" }, `${Math.round(100 * r.share)} %`),
      el("span", { class: "share-track" }, bar),
      el("span", { class: "reading-text" }, r.text)));
  }
  const drivers = $("drivers");
  drivers.replaceChildren();
  const largest = Math.max(1e-12, ...fit.drivers.map((d) => Math.abs(d.effect)));
  for (const d of fit.drivers) {
    const bar = el("div", { class: `bar ${d.effect >= 0 ? "pos" : "neg"}` });
    bar.style.width = `${(50 * Math.abs(d.effect) / largest).toFixed(1)}%`;
    drivers.append(el("div", { class: "row", "data-metric": d.key, title: `score change over the metric's range: ${d.effect.toFixed(3)}` },
      el("span", {}, d.label),
      el("div", { class: "axis" }, bar),
      el("span", { class: "dir", title: d.prefers }, `${d.effect >= 0 ? "▲ higher" : "▼ lower"} · ${Math.round(100 * d.share)}`)));
  }
  const table = $("topk");
  table.replaceChildren();
  const head = el("tr", {}, el("th", {}, "#"), el("th", {}, "architecture"), el("th", {}, "score"));
  for (const column of fit.columns) head.append(el("th", {}, column));
  head.append(el("th", {}, ""));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  const canCompare = state && state.can_compare && fit.top.length > 1;
  fit.top.forEach((row, i) => {
    const tr = el("tr", { class: "top-row" },
      el("td", { class: "rank" }, String(row.rank)),
      el("td", { class: "arch", title: row.arch_str }, `#${row.index} `, el("code", {}, row.short)),
      el("td", {}, row.score.toFixed(3)));
    for (const cell of row.cells) tr.append(el("td", {}, cell));
    const other = i === 0 ? fit.top[1] : fit.top[0];
    const cell = el("td", { class: "compare" });
    if (canCompare) {
      const button = el("button", { class: "ghost small compare-btn", title: `judge #${other.index} vs #${row.index} next` },
        `compare with #${other.rank}`);
      button.addEventListener("click", () => compare(other.index, row.index));
      cell.append(button);
    }
    tr.append(cell);
    body.append(tr);
  });
  table.append(body);
  $("topk-legend").textContent = fit.legend;
  if (fit.scope) $("topk-scope").textContent = fit.scope.charAt(0).toUpperCase() + fit.scope.slice(1);
}

function renderFitting(fitting) {
  const status = $("fit-status");
  const running = fitting && fitting.running;
  status.hidden = !fitting;
  status.classList.toggle("error", !!(fitting && fitting.error));
  if (!fitting) return;
  if (fitting.error) { status.textContent = `fit failed: ${fitting.error}`; return; }
  const what = fitting.phase === "checking" && fitting.total
    ? `checking on held-out judgments ${fitting.done}/${fitting.total}` : `fitting on ${plural(fitting.judgments, "judgment")}`;
  status.textContent = "";
  status.append(el("span", { class: "spinner", "aria-hidden": "true" }), ` ${what}… ${fitting.elapsed_s.toFixed(1)} s`);
  if (running) $("fit-status").dataset.running = "1";
}

function renderHistory(history) {
  const section = $("history");
  section.hidden = !history || history.length === 0;
  const list = $("history-list");
  list.replaceChildren();
  for (const entry of [...(history || [])].reverse()) {
    const buttons = el("span", { class: "answer-buttons", role: "group", "aria-label": `answer to #${entry.a} vs #${entry.b}` });
    for (const outcome of ["a", "tie", "b"]) {
      const label = outcome === "tie" ? "tie" : outcome.toUpperCase();
      const button = el("button", { class: `ghost small answer ${entry.outcome === outcome ? "current" : ""}`,
        "aria-pressed": String(entry.outcome === outcome), "data-outcome": outcome }, label);
      button.disabled = !entry.changeable;
      if (entry.outcome !== outcome) button.addEventListener("click", () => change(entry, outcome));
      buttons.append(button);
    }
    const changed = entry.changed_from ? el("span", { class: "changed" }, ` (changed from ${WORDS[entry.changed_from]})`) : "";
    list.append(el("li", { class: "history-item", "data-id": entry.id },
      el("span", { class: "n" }, `${entry.n}.`),
      el("span", { class: "pairtext" }, el("span", { class: "side-a" }, `#${entry.a}`), el("code", {}, entry.a_short), " vs ",
        el("span", { class: "side-b" }, `#${entry.b}`), el("code", {}, entry.b_short)),
      el("span", { class: "answer-text" }, WORDS[entry.outcome], changed),
      buttons));
  }
}

function render(next) {
  state = next;
  const c = state.context;
  $("context").textContent =
    `${c.space} space · ${c.dataset} · ${c.budget} epochs` + (c.device ? ` · latency on ${c.device}` : "") +
    ` · ${c.population} candidates · session ${c.session}`;
  const p = state.progress;
  const search = state.search;
  const round = search && search.round ? `round ${search.round}${search.rounds ? ` of ${search.rounds}` : ""} · ` : "";
  $("progress-text").textContent = round + `${p.judged} of ${p.target} judged`;
  $("skipped-text").textContent = p.skipped ? `${p.skipped} skipped` : "";
  $("progress-fill").style.width = `${Math.min(100, (100 * p.judged) / Math.max(1, p.target)).toFixed(1)}%`;
  const pair = state.pair;
  const offer = state.warm_start && state.warm_start.offer;
  $("pair").hidden = !pair;
  $("offer").hidden = !offer || !!pair;
  $("done").hidden = !!pair || !!offer;
  renderWarmStart(state.warm_start);
  if (pair) {
    $("pair").dataset.pairId = pair.id;
    renderArch("a", pair.a);
    renderArch("b", pair.b);
  } else {
    renderDone(search);
  }
  renderFit(state.fit);
  renderFitting(state.fitting);
  renderHistory(state.history);
  renderEvidence();
  setButtons();
  schedulePoll();
}

// Issue 17's warm start: the offer before the first pair, then how it goes and whether the session is remembered.
function renderWarmStart(warm) {
  const offer = warm && warm.offer;
  if (offer) {
    const users = plural(offer.users, "earlier user");
    $("btn-warm").textContent = `Start from ${users}`;
    $("offer-text").textContent = `${users} judged architectures of this space before (kept in ${offer.library}). ` +
      "Start from what they preferred: their preferences join the model's prior and their recommendations the first " +
      "architectures, and your own judgments decide how much of it stays. Or start fresh, from your judgments only.";
  }
  const status = warm && warm.status;
  $("warm-status").hidden = !status;
  $("warm-status").textContent = status ? status.text : "";
  $("warm-status").classList.toggle("disagrees", !!(status && status.disagrees));
  const remember = warm && warm.remember;
  $("remember-status").hidden = !remember;
  $("remember-status").textContent = remember ? remember.text : "";
  $("search-notes").hidden = !status && !remember;
}

// A search's session: between rounds the search is busy evaluating; its next pairs appear by themselves.
function renderDone(search) {
  if (!search) {
    $("done-title").textContent = "No pair left to judge";
    $("done-text").textContent = "Every pair of this session was judged or skipped. Fit the reward model below, or undo to change an answer.";
  } else if (search.stopped) {
    $("done-title").textContent = "The search has stopped asking";
    $("done-text").textContent = `${search.stopped}. Every answer is saved in the session file.`;
  } else {
    $("done-title").textContent = "Waiting for the search";
    $("done-text").textContent = "The search is evaluating architectures; the pairs it asks about next appear here by themselves. Every answer is saved.";
  }
}

function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = null;
  const fitting = state && state.fitting && state.fitting.running;
  const waiting = state && state.search && !state.pair && !state.search.stopped;
  if (!fitting && !waiting) return;
  pollTimer = setTimeout(async () => {
    if (busy) { schedulePoll(); return; }
    try {
      const before = state.fitting && state.fitting.running;
      render((await api("GET", "/api/state")).data);
      if (before && !(state.fitting && state.fitting.running)) {
        if (state.fitting && state.fitting.error) notice(`The fit failed: ${state.fitting.error}`, true);
        else notice(`Fitted on ${plural(state.fit.judgments, "judgment")}: see "Your learned preference" below.`);
      }
    } catch (err) {
      notice(`Lost the server (the search has ended or was stopped): ${err.message}`, true);
    }
  }, fitting ? FIT_POLL_MS : POLL_MS);
}

function setButtons() {
  const pair = state && state.pair;
  for (const id of ["btn-a", "btn-b", "btn-tie", "btn-skip"]) $(id).disabled = busy || !pair;
  $("btn-undo").disabled = busy || !(state && state.can_undo);
  for (const id of ["btn-warm", "btn-fresh"]) $(id).disabled = busy;
  const fitting = state && state.fitting && state.fitting.running;
  $("btn-fit").disabled = busy || fitting || !(state && state.can_fit);
  $("btn-evidence").disabled = !(state && state.evidence && state.evidence.available);
  $("btn-evidence").title = state && state.evidence && !state.evidence.available ? state.evidence.why : "show what each network does";
  $("btn-evidence").setAttribute("aria-pressed", String(evidence.open));
}

// --- evidence: predictions, per-class accuracy, Grad-CAM ------------------------------------------
function stateText(side, s) {
  if (!s) return "";
  if (s.state === "ready") return `${side}: ready (${s.how === "trained" ? `trained in ${s.seconds.toFixed(1)} s` : "kept weights"})`;
  if (s.state === "error") return `${side}: failed: ${s.message}`;
  if (s.state === "preparing") return `${side}: training or loading #${s.index}… ${(s.elapsed_s || 0).toFixed(1)} s`;
  return `${side}: queued`;
}

function renderEvidence() {
  const section = $("evidence");
  const pair = state && state.pair;
  const available = state && state.evidence && state.evidence.available;
  section.hidden = !evidence.open || !pair || !available;
  if (section.hidden) { clearTimeout(evidence.timer); return; }
  const key = `${pair.a.index}-${pair.b.index}`;
  if (key !== evidence.pairKey) {
    evidence.pairKey = key;
    evidence.view = null;
    evidence.image = null;
    for (const side of ["a", "b"]) {  // the last pair's Grad-CAMs go
      const img = $(`cam-${side}-img`);
      delete img.dataset.loaded;
      img.removeAttribute("src");
      $(`cam-${side}-cap`).textContent = side.toUpperCase();
    }
    $("ev-body").hidden = true;
    $("ev-status").textContent = "Asking for the two networks…";
    loadEvidence();
  }
}

async function loadEvidence() {
  clearTimeout(evidence.timer);
  const pair = state && state.pair;
  if (!pair || !evidence.open) return;
  const key = evidence.pairKey;
  try {
    const { data, status } = await api("GET", `/api/evidence?a=${pair.a.index}&b=${pair.b.index}`);
    if (key !== evidence.pairKey) return;  // the pair changed meanwhile
    $("ev-source").textContent = data.source.text;
    $("ev-source").className = `source ${data.source.kind}`;
    $("ev-status").textContent = data.ready ? "" : `${stateText("A", data.a)} · ${stateText("B", data.b)}`;
    if (data.ready || data.partial) {  // one network is enough to start showing
      evidence.view = data;
      drawEvidence();
    }
    if (!data.ready && status === 202 && data.a.state !== "error" && data.b.state !== "error") {
      evidence.timer = setTimeout(loadEvidence, EVIDENCE_POLL_MS);
    }
  } catch (err) {
    $("ev-status").textContent = `The evidence cannot be shown: ${err.message}`;
  }
}

function pct(x) { return x === null || x === undefined ? "—" : `${x.toFixed(1)} %`; }

function drawEvidence() {
  const v = evidence.view;
  $("ev-body").hidden = false;
  const right = (side) => (v[side].state === "ready" ? `${side.toUpperCase()} is right on ${v[side].correct} (${pct(v[side].accuracy)})`
    : `${side.toUpperCase()}: not ready yet`);
  $("ev-summary").textContent = `On the ${v.split_size} ${v.split === "valid" ? "validation" : v.split} images: ${right("a")}, ${right("b")}` +
    (v.ready ? `; they disagree on ${v.disagree}` + (v.both_wrong ? ` and are both wrong on ${v.both_wrong} more.` : ".") : ".");
  $("tab-different").textContent = `where they differ (${v.different.length})`;
  $("tab-sample").textContent = `sample (${v.grid.length})`;
  $("tab-different").disabled = v.different.length === 0;
  if (evidence.tab === "different" && v.different.length === 0) evidence.tab = "sample";
  $("tab-sample").setAttribute("aria-selected", String(evidence.tab === "sample"));
  $("tab-different").setAttribute("aria-selected", String(evidence.tab === "different"));
  const ids = evidence.tab === "sample" ? v.grid : v.different;
  const grid = $("ev-grid");
  grid.replaceChildren();
  for (const id of ids) {
    const im = v.images[String(id)];
    const mark = (p) => (p ? el("span", { class: p.correct ? "ok" : "wrong" }, `${p.pred}${p.correct ? "" : " ✗"}`)
      : el("span", { class: "na" }, "…"));
    const says = (side, p) => (p ? `${side} says ${p.pred} (${Math.round(100 * p.p)} %)` : `${side} not ready`);
    const wrong = (p) => p && !p.correct;
    const tile = el("button", { class: `tile ${wrong(im.a) ? "a-wrong" : ""} ${wrong(im.b) ? "b-wrong" : ""}`, "data-image": String(id),
      title: `image ${id}: true ${im.label}; ${says("A", im.a)}, ${says("B", im.b)}`,
      "aria-pressed": String(evidence.image === id) },
    el("img", { src: im.src, alt: `validation image ${id}, true label ${im.label}` }),
    el("span", { class: "labels" }, el("span", { class: "true" }, im.label),
      el("span", { class: "pa" }, "A ", mark(im.a)), el("span", { class: "pb" }, "B ", mark(im.b))));
    tile.addEventListener("click", () => pickImage(id));
    grid.append(tile);
  }
  const table = $("ev-classes");
  table.replaceChildren();
  table.append(el("thead", {}, el("tr", {}, el("th", {}, "class"), el("th", {}, "images"), el("th", { class: "side-a" }, "A"), el("th", { class: "side-b" }, "B"))));
  const body = el("tbody");
  for (const row of v.per_class) {
    const bars = (x, side) => {
      const fill = el("span", { class: `cbar ${side}` });
      fill.style.width = `${x === null ? 0 : x}%`;
      const worse = x !== null && row.a !== null && row.b !== null && x < Math.max(row.a, row.b);
      return el("td", { class: worse ? "worse" : "" }, el("span", { class: "ctrack" }, fill), el("span", { class: "cnum" }, pct(x)));
    };
    body.append(el("tr", {}, el("td", {}, row.label), el("td", {}, String(row.n)), bars(row.a, "a"), bars(row.b, "b")));
  }
  table.append(body);
  if (evidence.image === null) pickImage(v.different.length ? v.different[0] : v.grid[0]);
  else pickImage(evidence.image);
}

async function pickImage(id) {
  const v = evidence.view;
  if (!v || id === undefined) return;
  evidence.image = id;
  for (const tile of document.querySelectorAll("#ev-grid .tile")) tile.setAttribute("aria-pressed", String(tile.dataset.image === String(id)));
  const im = v.images[String(id)];
  $("cam-image-img").src = im.src;
  $("cam-image-cap").textContent = `image ${id} · true ${im.label}`;
  const target = $("cam-target").value;
  const requestId = ++evidence.requestId;
  await Promise.all(["a", "b"].map((side) => loadCam(side, v[side].index, id, target, requestId)));
}

async function loadCam(side, arch, image, target, requestId) {
  const img = $(`cam-${side}-img`);
  const wait = $(`cam-${side}-wait`);
  if (img.dataset.loaded === `${arch}-${image}-${target}`) return;  // on screen already
  wait.textContent = "…";
  img.classList.add("loading");
  try {
    const { data } = await api("GET", `/api/gradcam?arch=${arch}&image=${image}&target=${target}`);
    if (requestId !== evidence.requestId) return;
    if (data.state !== "ready") {  // that network is still training: try again shortly
      wait.textContent = data.state === "preparing" ? `training… ${(data.elapsed_s || 0).toFixed(1)} s` : "queued…";
      setTimeout(() => loadCam(side, arch, image, target, requestId), EVIDENCE_POLL_MS);
      return;
    }
    img.src = data.src;
    img.classList.remove("loading");
    img.dataset.loaded = `${arch}-${image}-${target}`;
    wait.textContent = data.flat ? "no signal" : "";
    const what = data.explains === "predicted" ? `says ${data.predicted}` : `true ${data.true} (says ${data.predicted})`;
    $(`cam-${side}-cap`).textContent = `${side.toUpperCase()} ${what} · p(${data.class}) = ${Math.round(100 * data.probability)} %`;
  } catch (err) {
    if (requestId === evidence.requestId) wait.textContent = err.message;
  }
}

function toggleEvidence() {
  if (!state || !state.evidence || !state.evidence.available) return;
  evidence.open = !evidence.open;
  localStorage.setItem("evidence-open", evidence.open ? "1" : "0");
  evidence.pairKey = null;
  renderEvidence();
  setButtons();
  if (evidence.open && !$("evidence").hidden) $("evidence").scrollIntoView({ behavior: "smooth", block: "start" });
}

// --- actions --------------------------------------------------------------------------------------
function flash(side) {
  const card = $(`card-${side}`);
  card.classList.add(`flash-${side}`);
  setTimeout(() => card.classList.remove(`flash-${side}`), 220);
}

function judge(outcome) {
  if (!state || !state.pair || busy) return;
  if (outcome !== "tie") flash(outcome);
  const { a, b } = state.pair;
  act("POST", "/api/judge", { pair_id: state.pair.id, outcome }, `Saved: #${a.index} vs #${b.index}, ${WORDS[outcome]}.`);
}
function skip() {
  if (!state || !state.pair || busy) return;
  act("POST", "/api/skip", { pair_id: state.pair.id }, "Skipped.");
}
function undo() {
  if (!state || !state.can_undo) return;
  act("POST", "/api/undo", {});
}
function change(entry, outcome) {
  act("POST", "/api/change", { id: entry.id, outcome },
    `Changed: #${entry.a} vs #${entry.b} is now ${WORDS[outcome]} (was ${WORDS[entry.outcome]}).`);
}
async function compare(a, b) {
  const done = await act("POST", "/api/compare", { a, b }, `Queued: #${a} vs #${b} is the pair on screen now.`);
  if (done) window.scrollTo({ top: 0, behavior: "smooth" });
}
function chooseStart(start) {
  if (!state || !state.warm_start || !state.warm_start.offer) return;
  act("POST", "/api/start", { start }, start === "warm" ? "Starting from the earlier users; the search's first pairs come next."
    : "Starting fresh; the search's first pairs come next.");
}
async function fit() {
  if (!state || !state.can_fit || (state.fitting && state.fitting.running)) return;
  await act("POST", "/api/fit", {}, "Fitting in the background; keep judging meanwhile.");
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.metaKey) return;
  if (event.target && ["SELECT", "INPUT", "TEXTAREA"].includes(event.target.tagName)) return;
  if (event.ctrlKey) {
    if (event.key === "z") { event.preventDefault(); undo(); }
    return;
  }
  const actions = {
    a: () => judge("a"), ArrowLeft: () => judge("a"),
    b: () => judge("b"), ArrowRight: () => judge("b"),
    t: () => judge("tie"), ArrowDown: () => judge("tie"), "=": () => judge("tie"),
    s: skip, u: undo, Backspace: undo, f: fit, e: toggleEvidence,
  };
  const action = actions[event.key.length === 1 ? event.key.toLowerCase() : event.key];
  if (action) { event.preventDefault(); action(); }
});

$("btn-a").addEventListener("click", () => judge("a"));
$("btn-b").addEventListener("click", () => judge("b"));
$("btn-tie").addEventListener("click", () => judge("tie"));
$("btn-skip").addEventListener("click", skip);
$("btn-undo").addEventListener("click", undo);
$("btn-fit").addEventListener("click", fit);
$("btn-evidence").addEventListener("click", toggleEvidence);
$("btn-warm").addEventListener("click", () => chooseStart("warm"));
$("btn-fresh").addEventListener("click", () => chooseStart("fresh"));
$("tab-sample").addEventListener("click", () => { evidence.tab = "sample"; drawEvidence(); });
$("tab-different").addEventListener("click", () => { evidence.tab = "different"; drawEvidence(); });
$("cam-target").addEventListener("change", () => { if (evidence.image !== null) pickImage(evidence.image); });

api("GET", "/api/state").then(({ data }) => render(data)).catch((err) => notice(err.message, true));
