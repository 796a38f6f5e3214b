// Decoding the packed arrays (ablations/explore/pack.py) and the sampling controls.
// `filterProbs` is transformer/generate.py's filter_logits followed by a softmax, step
// for step: the browser test holds the two to 1e-6 on real logits.
"use strict";

const Sampling = (() => {
  const decoded = new WeakMap();   // a packed array is decoded once, however often drawn

  function unpack(packed) {
    if (decoded.has(packed)) return decoded.get(packed);
    const raw = atob(packed.data);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const kinds = {f32: Float32Array, q16: Int16Array, u16: Uint16Array};
    const typed = new kinds[packed.code](bytes.buffer);
    const factor = {f32: 1, q16: packed.scale, u16: 1 / 65535}[packed.code];
    const values = new Float64Array(typed.length);
    for (let i = 0; i < typed.length; i++) values[i] = typed[i] * factor;
    const out = {shape: packed.shape, values};
    decoded.set(packed, out);
    return out;
  }

  // one row of a (rows, cols) array
  function row(array, i) {
    const n = array.shape[array.shape.length - 1];
    return array.values.subarray(i * n, (i + 1) * n);
  }

  // filter_logits: divide by the temperature; top-k keeps logits >= the k-th largest;
  // top-p keeps, in descending order, each token whose preceding mass is below p
  function filterLogits(logits, temperature, topK, topP) {
    const V = logits.length;
    const l = new Float64Array(V);
    const t = Math.max(temperature, 1e-8);
    for (let i = 0; i < V; i++) l[i] = logits[i] / t;
    if (topK && topK < V) {
      const kth = Array.from(l).sort((a, b) => b - a)[topK - 1];
      for (let i = 0; i < V; i++) if (l[i] < kth) l[i] = -Infinity;
    }
    if (topP !== null && topP < 1) {
      const order = Array.from(l.keys()).sort((a, b) => l[b] - l[a] || a - b);
      const probs = softmax(order.map(i => l[i]));
      let cum = 0;
      const drop = [];
      order.forEach((i, r) => { cum += probs[r]; if (cum - probs[r] >= topP) drop.push(i); });
      for (const i of drop) l[i] = -Infinity;
    }
    return l;
  }

  function softmax(l) {
    let top = -Infinity;
    for (const x of l) top = Math.max(top, x);
    const e = Array.from(l, x => Math.exp(x - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return Float64Array.from(e, x => x / sum);
  }

  function filterProbs(logits, temperature, topK, topP) {
    return softmax(filterLogits(logits, temperature, topK, topP));
  }

  // one draw from the shown distribution (the Explainer's "sample" button)
  function sample(probs) {
    let u = Math.random(), last = 0;
    for (let i = 0; i < probs.length; i++) {
      if (probs[i] > 0) last = i;
      u -= probs[i];
      if (u < 0) return i;
    }
    return last;
  }

  return {unpack, row, filterLogits, filterProbs, softmax, sample};
})();
