// Heatmaps (canvas) and line charts (SVG): a few dozen lines each, where a plotting
// library would be a hundred times the page.
"use strict";

const Draw = (() => {
  // matplotlib's viridis at 9 stops, interpolated
  const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
                   [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];

  function viridis(t) {
    t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
    const c = VIRIDIS[i].map((a, j) => Math.round(a + f * (VIRIDIS[i + 1][j] - a)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  // blue (negative) - white - red (positive)
  function diverging(t) {
    t = Math.min(1, Math.max(-1, t));
    const a = Math.round(255 * (1 - Math.abs(t)));
    return t < 0 ? `rgb(${a},${a},255)` : `rgb(255,${a},${a})`;
  }

  function cyclic(t) { return `hsl(${Math.round(360 * t)},70%,55%)`; }

  // values: a function (i, j) -> number or null (masked); color: number -> css colour
  function heatmap(rows, cols, values, color, opts = {}) {
    const cell = Math.max(2, Math.min(opts.cell || 12, Math.floor((opts.width || 260) / cols)));
    const canvas = document.createElement("canvas");
    canvas.width = cols * cell;
    canvas.height = rows * cell;
    canvas.className = "heatmap";
    const g = canvas.getContext("2d");
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const v = values(i, j);
        g.fillStyle = v === null ? "#d8d8d8" : color(v);
        g.fillRect(j * cell, i * cell, cell, cell);
      }
    }
    for (const [i, j] of opts.outline || []) {
      g.strokeStyle = "#e4002b";
      g.lineWidth = Math.max(1, cell / 6);
      g.strokeRect(j * cell + 1, i * cell + 1, cell - 2, cell - 2);
    }
    if (opts.tip) {
      canvas.addEventListener("mousemove", ev => {
        const r = canvas.getBoundingClientRect();
        const j = Math.floor((ev.clientX - r.left) / r.width * cols);
        const i = Math.floor((ev.clientY - r.top) / r.height * rows);
        if (i >= 0 && i < rows && j >= 0 && j < cols) canvas.title = opts.tip(i, j, values(i, j));
      });
    }
    return canvas;
  }

  // series: [{name, ys}] over the shared xs
  function lines(xs, series, opts = {}) {
    const W = opts.width || 300, H = opts.height || 180, pad = 34;
    const ys = series.flatMap(s => Array.from(s.ys));
    const lo = Math.min(...ys, 0), hi = Math.max(...ys, 0);
    const x = v => pad + (v - xs[0]) / ((xs[xs.length - 1] - xs[0]) || 1) * (W - pad - 8);
    const y = v => 8 + (hi - v) / ((hi - lo) || 1) * (H - pad - 8);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("class", "lines");
    const add = (tag, attrs, text) => {
      const el = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      if (text !== undefined) el.textContent = text;
      svg.appendChild(el);
    };
    add("line", {x1: pad, x2: W - 8, y1: y(0), y2: y(0), stroke: "#999"});
    series.forEach((s, k) => {
      const pts = xs.map((v, i) => `${x(v).toFixed(1)},${y(s.ys[i]).toFixed(1)}`).join(" ");
      add("polyline", {points: pts, fill: "none", stroke: `hsl(${k * 83 % 360},65%,45%)`,
                       "stroke-width": 1.6});
      // labelled at the far end from offset 0, where every bias curve starts at 0
      add("text", {x: x(xs[0]) + 2, y: y(s.ys[0]) - 3,
                   fill: `hsl(${k * 83 % 360},65%,35%)`, "font-size": 9}, s.name);
    });
    add("text", {x: pad, y: H - 6, "font-size": 9}, `${xs[0]}`);
    add("text", {x: W - 8, y: H - 6, "font-size": 9, "text-anchor": "end"},
        `${xs[xs.length - 1]}  ${opts.xlabel || ""}`);
    add("text", {x: 2, y: y(hi) + 8, "font-size": 9}, hi.toFixed(1));
    add("text", {x: 2, y: y(lo), "font-size": 9}, lo.toFixed(1));
    return svg;
  }

  return {heatmap, lines, viridis, diverging, cyclic};
})();
