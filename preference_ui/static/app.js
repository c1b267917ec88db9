// The page's only script: fetch the session's state, draw it, send the choices. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;
let busy = false;
let pollTimer = null;
const POLL_MS = 1000;

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
    throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  }
  return data;
}

async function act(method, path, body, message) {
  if (busy) return;
  busy = true;
  setButtons();
  try {
    render(await api(method, path, body));
    notice(message || "");
  } catch (err) {
    notice(err.message, true);
    // The server is the truth: after an error, show what it holds now.
    try { render(await api("GET", "/api/state")); } catch (_) { /* keep the message */ }
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

function renderFit(fit) {
  const section = $("fit");
  if (!fit) { section.hidden = true; $("export-model").hidden = true; return; }
  section.hidden = false;
  $("export-model").hidden = false;
  $("fit-meta").textContent =
    `RankNet fitted on ${fit.judgments} judgment${fit.judgments === 1 ? "" : "s"}` +
    (fit.stale ? ` · ${fit.new_since} new since: fit again to include them` : "");
  const reading = fit.reading || [];
  $("reading").hidden = reading.length === 0;
  $("reading").textContent = reading.length
    ? "Most likely you want: " + reading.map((r) => `${r.text} (${Math.round(100 * r.share)}%)`).join("; ")
    : "";
  const drivers = $("drivers");
  drivers.replaceChildren();
  const largest = Math.max(1e-12, ...fit.drivers.map((d) => Math.abs(d.effect)));
  for (const d of fit.drivers) {
    const bar = el("div", { class: `bar ${d.effect >= 0 ? "pos" : "neg"}` });
    bar.style.width = `${(50 * Math.abs(d.effect) / largest).toFixed(1)}%`;
    drivers.append(el("div", { class: "row", "data-metric": d.key, title: `score change over the metric's range: ${d.effect.toFixed(3)}` },
      el("span", {}, d.label),
      el("div", { class: "axis" }, bar),
      el("span", { class: "dir", title: d.prefers }, `${d.effect >= 0 ? "▲ higher" : "▼ lower"} · ${Math.round(100 * d.share)}%`)));
  }
  const table = $("topk");
  table.replaceChildren();
  const head = el("tr", {}, el("th", {}, "#"), el("th", {}, "architecture"), el("th", {}, "score"));
  for (const column of fit.columns) head.append(el("th", {}, column));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  for (const row of fit.top) {
    const tr = el("tr", { class: "top-row" },
      el("td", { class: "rank" }, String(row.rank)),
      el("td", { class: "arch", title: row.arch_str }, `#${row.index} `, el("code", {}, row.short)),
      el("td", {}, row.score.toFixed(3)));
    for (const cell of row.cells) tr.append(el("td", {}, cell));
    body.append(tr);
  }
  table.append(body);
  $("topk-legend").textContent = fit.legend;
  if (fit.scope) $("topk-scope").textContent = fit.scope;
}

function render(next) {
  state = next;
  const c = state.context;
  $("context").textContent =
    `${c.space} space · ${c.dataset} · ${c.budget} epochs` + (c.device ? ` · latency on ${c.device}` : "") +
    ` · ${c.population} candidates · session ${c.session}`;
  const p = state.progress;
  const search = state.search;
  $("progress-text").textContent = (search && search.round ? `round ${search.round} · ` : "") + `${p.judged} of ${p.target} judged`;
  $("skipped-text").textContent = p.skipped ? `${p.skipped} skipped` : "";
  $("progress-fill").style.width = `${Math.min(100, (100 * p.judged) / Math.max(1, p.target)).toFixed(1)}%`;
  const pair = state.pair;
  $("pair").hidden = !pair;
  $("done").hidden = !!pair;
  if (pair) {
    $("pair").dataset.pairId = pair.id;
    renderArch("a", pair.a);
    renderArch("b", pair.b);
  } else {
    renderDone(search);
  }
  renderFit(state.fit);
  setButtons();
  schedulePoll();
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
  if (!state || !state.search || state.pair || state.search.stopped) return;
  pollTimer = setTimeout(async () => {
    if (busy) { schedulePoll(); return; }
    try {
      render(await api("GET", "/api/state"));
    } catch (err) {
      notice(`Lost the server (the search has ended or was stopped): ${err.message}`, true);
    }
  }, POLL_MS);
}

function setButtons() {
  const pair = state && state.pair;
  for (const id of ["btn-a", "btn-b", "btn-tie", "btn-skip"]) $(id).disabled = busy || !pair;
  $("btn-undo").disabled = busy || !(state && state.can_undo);
  $("btn-fit").disabled = busy || !(state && state.can_fit);
}

function flash(side) {
  const card = $(`card-${side}`);
  card.classList.add(`flash-${side}`);
  setTimeout(() => card.classList.remove(`flash-${side}`), 220);
}

function judge(outcome) {
  if (!state || !state.pair || busy) return;
  if (outcome !== "tie") flash(outcome);
  act("POST", "/api/judge", { pair_id: state.pair.id, outcome });
}
function skip() {
  if (!state || !state.pair || busy) return;
  act("POST", "/api/skip", { pair_id: state.pair.id });
}
function undo() {
  if (!state || !state.can_undo) return;
  act("POST", "/api/undo", {}, "Undone: the pair is shown again.");
}
async function fit() {
  if (!state || !state.can_fit) return;
  await act("POST", "/api/fit", {}, "");
  if (state && state.fit) $("fit").scrollIntoView({ behavior: "smooth", block: "start" });
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.metaKey) return;
  if (event.ctrlKey) {
    if (event.key === "z") { event.preventDefault(); undo(); }
    return;
  }
  const actions = {
    a: () => judge("a"), ArrowLeft: () => judge("a"),
    b: () => judge("b"), ArrowRight: () => judge("b"),
    t: () => judge("tie"), ArrowDown: () => judge("tie"), "=": () => judge("tie"),
    s: skip, u: undo, Backspace: undo, f: fit,
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

api("GET", "/api/state").then(render).catch((err) => notice(err.message, true));
