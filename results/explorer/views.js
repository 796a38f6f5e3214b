// Attention, positional encoding, cross-attention and context views: each draws one
// column per shown variant from the grid's data (explorer.js holds the state).
"use strict";

const Views = (() => {
  const STAGES = {
    scaled: "q·kᵀ × scale: the dot products after the attention scale (blue < 0 < red)",
    masked: "after the mask and positional bias (ALiBi, T5); grey cells are masked (−∞)",
    weights: "softmax: each row sums to 1 (viridis, 0 to 1)",
  };

  function select(options, value, onChange) {
    const s = el("select");
    options.forEach(([v, text]) => s.appendChild(new Option(text, v)));
    s.value = value;
    s.addEventListener("change", () => onChange(s.value));
    return s;
  }

  function headValues(stack, layer, h, stage) {
    const packed = layer[stage === "weights" ? "weights" : "scaled"];
    const a = Sampling.unpack(packed);
    const [, Tq, Tk] = a.shape;
    const bias = stack.bias && stage === "masked" ? Sampling.unpack(stack.bias) : null;
    const at = (i, j) => h * Tq * Tk + i * Tk + j;
    return (i, j) => {
      if (stage === "masked" && stack.causal && j > i) return null;
      return a.values[at(i, j)] + (bias ? bias.values[at(i, j)] : 0);
    };
  }

  function attention(main) {
    const names = [...new Set(S.shown.flatMap(k => view(k).stacks.map(s => s.name)))];
    S.stack = Math.min(S.stack, names.length - 1);
    const first = S.shown.map(k => view(k).stacks.find(s => s.name === names[S.stack]))
      .find(Boolean);
    const nLayers = Math.max(...S.shown.map(k => (view(k).stacks.find(s =>
      s.name === names[S.stack]) || {layers: []}).layers.length));
    S.layer = Math.min(S.layer, nLayers - 1);
    const bar = el("div", "controls");
    bar.append("stack ", select(names.map((n, i) => [i, n]), S.stack,
                                v => { S.stack = Number(v); render(); }),
               " layer ", select([...Array(nLayers).keys()].map(i => [i, i]), S.layer,
                                 v => { S.layer = Number(v); render(); }),
               " stage ", select(Object.keys(STAGES).map(s => [s, s]), S.stage,
                                 v => { S.stage = v; render(); }));
    main.append(bar, el("p", "muted", `${STAGES[S.stage]}. Rows: queries, columns: keys; ` +
      "hover a cell for its value." + (first ? "" : " (no variant has this stack)")));
    columns(main, (col, key) => {
      const stack = view(key).stacks.find(s => s.name === names[S.stack]);
      const layer = stack && stack.layers[S.layer];
      if (!layer) {
        col.appendChild(el("p", "muted", `no ${names[S.stack]} layer ${S.layer} in this variant`));
        return;
      }
      const [H, Tq, Tk] = layer.scaled.shape;
      const width = Math.floor(1100 / S.shown.length / Math.min(2, H)) - 8;
      const grid = el("div", "heads");
      for (let h = 0; h < H; h++) {
        const values = headValues(stack, layer, h, S.stage);
        let top = 0;
        for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) {
          const v = values(i, j);
          if (v !== null) top = Math.max(top, Math.abs(v));
        }
        const color = S.stage === "weights" ? Draw.viridis : v => Draw.diverging(v / (top || 1));
        const box = el("figure", "head");
        box.appendChild(Draw.heatmap(Tq, Tk, values, color, {
          width, tip: (i, j, v) => `${label(stack.queries[i])} → ${label(stack.keys[j])}: ` +
                                   (v === null ? "masked" : v.toFixed(4))}));
        box.appendChild(el("figcaption", null, `head ${h} · entropy ${layer.entropy[h]
          .toFixed(2)} nats (${layer.entropy_frac[h].toFixed(2)} of uniform)`));
        grid.appendChild(box);
      }
      col.appendChild(grid);
    });
  }

  function encoding(main) {
    main.appendChild(el("p", "muted", "What each variant uses for position, read off its " +
      "trained weights (the first 128 positions at most)."));
    columns(main, (col, key) => {
      const e = S.data.variants.find(v => v.key === key).encoding;
      col.appendChild(el("p", null, `${e.kind}: ${e.text}`));
      const width = Math.floor(1100 / S.shown.length) - 20;
      if (e.matrix || e.angles) {
        const a = Sampling.unpack(e.matrix || e.angles);
        const [P, D] = a.shape;
        const top = Math.max(...a.values.map(Math.abs)) || 1;
        const color = e.angles ? v => Draw.cyclic(v / (2 * Math.PI))
                               : v => Draw.diverging(v / top);
        col.appendChild(Draw.heatmap(P, D, (i, j) => a.values[i * D + j], color, {
          width, cell: 4, tip: (i, j, v) => `position ${i}, ${e.xlabel} ${j}: ${v.toFixed(4)}`}));
        col.appendChild(el("p", "muted", e.angles
          ? `rows: position, columns: channel pair; colour: angle mod 2π. Wavelengths ` +
            `${e.wavelengths[0]} to ${e.wavelengths[e.wavelengths.length - 1]} positions.`
          : `rows: position, columns: channel; ±${top.toFixed(3)} at full colour.`));
      }
      if (e.bias) {
        const a = Sampling.unpack(e.bias);
        const [H, R] = a.shape;
        const series = [...Array(H).keys()].map(h => ({name: `head ${h}`,
          ys: a.values.subarray(h * R, (h + 1) * R)}));
        col.appendChild(Draw.lines(e.offsets, series, {width: 320, xlabel: e.xlabel}));
        col.appendChild(el("p", "muted", "logit bias per head against the offset key − query"));
      }
    });
  }

  function cross(main) {
    main.appendChild(el("p", "muted", "Where the decoder reads the source: cross-attention " +
      "weights, mean over heads, per decoder layer. Rows: decoder positions (the target " +
      "word each predicts), columns: source words; red boxes: the source word each target " +
      "word translates."));
    columns(main, (col, key) => {
      const v = view(key), stack = v.stacks.find(s => s.name === "cross-attention");
      if (!stack) {
        const arch = S.data.variants.find(x => x.key === key).config;
        col.appendChild(el("p", "muted", `no cross-attention: arch ${arch.arch}` +
          (arch.cross_attention === false ? " with cross_attention off (the decoder never " +
           "sees the source)" : " (a single stream, the source is its prefix)")));
        return;
      }
      stack.layers.forEach((layer, n) => {
        const a = Sampling.unpack(layer.weights);
        const [H, Tq, Tk] = a.shape;
        const mean = (i, j) => {
          let s = 0;
          for (let h = 0; h < H; h++) s += a.values[h * Tq * Tk + i * Tk + j];
          return s / H;
        };
        const outline = v.align ? v.align.map((j, i) => [i, j]) : [];
        const onAligned = outline.length
          ? outline.reduce((s, [i, j]) => s + mean(i, j), 0) / outline.length : null;
        col.appendChild(el("h4", null, `decoder layer ${n}` + (onAligned === null ? "" :
          `: mean weight on the aligned word ${onAligned.toFixed(2)}`)));
        col.appendChild(Draw.heatmap(Tq, Tk, mean, Draw.viridis, {
          width: 320, cell: 22, outline,
          tip: (i, j, w) => `${label(stack.queries[i])} → ${label(stack.keys[j])}: ${w.toFixed(4)}`}));
      });
    });
  }

  function context(main) {
    const d = S.data;
    main.appendChild(el("h2", null, d.question || d.name));
    main.appendChild(el("p", null, d.claim));
    const list = el("ul", "verdicts");
    for (const v of d.verdicts) {
      const li = el("li");
      li.append(el("span", `verdict ${v.verdict}`, v.verdict.replace("_", " ")), ` ${v.claim}`,
                el("div", "muted", v.evidence));
      list.appendChild(li);
    }
    main.appendChild(list);
    if (d.headline) {
      const img = el("img", "headline");
      img.src = d.headline;
      img.alt = `${d.name} headline plot`;
      main.appendChild(img);
    }
    const link = el("a", null, `the grid's README: tables, all plots, published numbers`);
    link.href = d.readme;
    main.appendChild(el("p")).appendChild(link);
    const table = el("table");
    table.appendChild(el("tr")).append(...["variant", "run", "config", "parameters",
                                           "final metrics of this run"].map(h => el("th", null, h)));
    for (const v of d.variants) {
      const cfg = Object.entries(v.config).filter(([, x]) => x !== null)
        .map(([k, x]) => `${k}=${x}`).join(", ");
      const m = Object.entries(v.metrics).map(([k, x]) => `${k} ${x}`).join(", ");
      table.appendChild(el("tr")).append(...[v.key, v.run_id, cfg, v.params.toLocaleString("en"),
                                             m].map(t => el("td", null, t)));
    }
    main.appendChild(table);
  }

  return {attention, encoding, cross, context};
})();
