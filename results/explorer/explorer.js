// The explorer's state, controls and the tokens / next-token view. The other views are
// in views.js; data files (data/<grid>.js) are scripts, so the page works from file://.
"use strict";

const S = {grid: null, data: null, prompt: 0, shown: [], positions: {}, tab: "tokens",
           temperature: 1, topK: 0, topP: 1, stack: 0, layer: 0, stage: "weights",
           sampled: {}};
const $ = id => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function loadGrid(name) {
  const have = (window.EXPLORER_DATA || {})[name];
  if (have) return Promise.resolve(have);
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = `data/${encodeURIComponent(name)}.js`;
    s.onload = () => resolve(window.EXPLORER_DATA[name]);
    s.onerror = () => reject(new Error(`cannot load data/${name}.js`));
    document.head.appendChild(s);
  });
}

async function openGrid(name) {
  $("status").textContent = "loading…";
  S.grid = name;
  S.data = await loadGrid(name);
  S.prompt = 0;
  S.shown = S.data.shown.slice();
  S.stack = S.layer = 0;
  S.positions = {};
  S.sampled = {};
  $("prompt").replaceChildren(...S.data.prompts.map((p, i) => new Option(p.text, i)));
  renderVariantPicker();
  $("status").textContent = "";
  render();
}

function renderVariantPicker() {
  const box = $("variants");
  box.replaceChildren(el("span", "muted", "variants (2–4):"));
  for (const v of S.data.variants) {
    const label = el("label", "variant");
    const cb = el("input");
    cb.type = "checkbox";
    cb.value = v.key;
    cb.checked = S.shown.includes(v.key);
    cb.disabled = !cb.checked && S.shown.length >= 4;
    cb.addEventListener("change", () => {
      S.shown = S.data.variants.map(x => x.key).filter(k =>
        k === v.key ? cb.checked : S.shown.includes(k));
      renderVariantPicker();
      render();
    });
    label.append(cb, ` ${v.key}`);
    box.appendChild(label);
  }
}

function view(key) { return S.data.prompts[S.prompt].views[key]; }
function label(id) { return S.data.labels[id] ?? `<${id}>`; }
function position(key) {
  const v = view(key);
  return Math.min(S.positions[key] ?? v.position, v.tokens.length - 1);
}

function render() {
  for (const b of document.querySelectorAll("nav button")) {
    b.classList.toggle("on", b.dataset.tab === S.tab);
  }
  const main = $("main");
  main.replaceChildren();
  const draw = {tokens: renderTokens, attention: Views.attention, encoding: Views.encoding,
                cross: Views.cross, context: Views.context}[S.tab];
  draw(main);
  if (!document.body.dataset.ready) {
    window.EXPLORER_READY_MS = performance.now();
    document.body.dataset.ready = "1";
  }
}

function columns(main, fill) {
  const row = el("div", "columns");
  for (const key of S.shown) {
    const col = el("div", "column");
    col.dataset.variant = key;
    col.appendChild(el("h3", null, key));
    fill(col, key);
    row.appendChild(col);
  }
  main.appendChild(row);
}

function tokenRow(key, onPick) {
  const v = view(key), row = el("div", "tokens");
  v.tokens.forEach((id, i) => {
    const t = el("span", "tok" + (i === position(key) ? " on" : ""), label(id));
    t.title = `position ${i}: ${label(id)} (id ${id})`;
    t.addEventListener("click", () => onPick(i));
    row.appendChild(t);
  });
  return row;
}

function pick(key, i) {
  // streams that are the same tokens move together: the same position compared
  const same = k => view(k).tokens.join() === view(key).tokens.join();
  for (const k of S.shown) if (same(k)) S.positions[k] = i;
  S.sampled = {};
  render();
}

function renderTokens(main) {
  main.appendChild(el("p", "muted", "Click a token: the bars are the model's distribution " +
    "for what comes after it (for the order task, the label read at [CLS]; for translation, " +
    "the target word at that position). Temperature, top-k and top-p apply as " +
    "transformer.generate.filter_logits does."));
  columns(main, (col, key) => {
    col.appendChild(tokenRow(key, i => pick(key, i)));
    const p = position(key);
    const logits = Sampling.row(Sampling.unpack(view(key).logits), p);
    const probs = Sampling.filterProbs(logits, S.temperature, S.topK || null,
                                       S.topP < 1 ? S.topP : null);
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
    const kept = order.filter(i => probs[i] > 0).length;
    const dist = el("div", "dist");
    dist.dataset.position = p;
    dist.dataset.kept = kept;
    dist.appendChild(el("div", "muted",
      `after “${label(view(key).tokens[p])}” (position ${p}): ${kept} of ${probs.length} ` +
      "tokens can be drawn"));
    for (const i of order.slice(0, 15)) {
      const bar = el("div", "bar" + (S.sampled[key] === i ? " sampled" : ""));
      bar.dataset.token = i;
      bar.dataset.p = String(probs[i]);
      const fill = el("span", "fill");
      fill.style.width = `${(100 * probs[i]).toFixed(2)}%`;
      bar.append(el("span", "name", label(i)), el("span", "track"),
                 el("span", "value", probs[i].toFixed(4)));
      bar.children[1].appendChild(fill);
      dist.appendChild(bar);
    }
    if (S.sampled[key] !== undefined) {
      dist.appendChild(el("div", "drawn", `sampled: “${label(S.sampled[key])}”`));
    }
    dist.probs = probs;
    col.appendChild(dist);
  });
}

function bindControls() {
  const num = (id, key, show) => {
    const input = $(id);
    const set = () => { S[key] = Number(input.value); $(show).textContent = input.value; };
    input.addEventListener("input", () => { set(); S.sampled = {}; render(); });
    set();
  };
  num("temperature", "temperature", "temperature-v");
  num("top-k", "topK", "top-k-v");
  num("top-p", "topP", "top-p-v");
  $("sample").addEventListener("click", () => {
    S.tab = "tokens";
    render();
    for (const d of document.querySelectorAll(".dist")) {
      S.sampled[d.parentElement.dataset.variant] = Sampling.sample(d.probs);
    }
    render();
  });
  $("grid").addEventListener("change", () => openGrid($("grid").value));
  $("prompt").addEventListener("change", () => {
    S.prompt = Number($("prompt").value);
    S.positions = {};
    S.sampled = {};
    render();
  });
  for (const b of document.querySelectorAll("nav button")) {
    b.addEventListener("click", () => { S.tab = b.dataset.tab; render(); });
  }
  if (window.EXPLORER_SERVE) Serve.bind();
}

function start() {
  const index = window.EXPLORER_INDEX || {grids: []};
  if (!index.grids.length) {
    $("main").textContent = "No grid data: run `ablate explore` to write it.";
    return;
  }
  $("grid").replaceChildren(...index.grids.map(g =>
    new Option(`${g.chapter ? g.chapter + ". " : ""}${g.name}: ${g.question}`, g.name)));
  bindControls();
  const wanted = new URLSearchParams(location.search).get("grid");
  const first = index.grids.some(g => g.name === wanted) ? wanted : index.grids[0].name;
  $("grid").value = first;
  openGrid(first).catch(e => { $("status").textContent = e.message; });
}

document.addEventListener("DOMContentLoaded", start);
