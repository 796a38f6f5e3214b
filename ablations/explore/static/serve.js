// Only under `ablate explore --serve` (the server sets EXPLORER_SERVE): any typed prompt
// is run by the real models and added to the prompt list.
"use strict";

const Serve = (() => {
  function bind() {
    const form = $("free");
    form.hidden = false;
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const text = $("text").value;
      const query = new URLSearchParams({grid: S.grid, prompt: text});
      const started = performance.now();
      $("status").textContent = "running…";
      try {
        const reply = await fetch(`api/view?${query}`);
        const body = await reply.json();
        if (!reply.ok) throw new Error(body.error || reply.statusText);
        S.data.prompts.push({text, note: "typed", views: body.views});
        S.prompt = S.data.prompts.length - 1;
        $("prompt").appendChild(new Option(text, S.prompt));
        $("prompt").value = S.prompt;
        S.positions = {};
        S.sampled = {};
        $("status").textContent = `${Math.round(performance.now() - started)} ms`;
        render();
      } catch (e) {
        $("status").textContent = e.message;
      }
    });
  }
  return {bind};
})();
