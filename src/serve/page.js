// The instance page of `kars serve`: draws the graph with mermaid (served by kars), posts the
// action forms without leaving the page, and reloads the panel when the server says the
// instance changed (server-sent events). No build step.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  const id = live.dataset.id;
  const base = "/ui/instances/" + encodeURIComponent(id);
  let drawn = 0;
  mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

  async function draw() {
    const source = document.getElementById("graph-src");
    if (!source) return;
    drawn += 1;
    const { svg } = await mermaid.render("kars-graph-" + drawn, source.textContent);
    document.getElementById("graph").innerHTML = svg;
    document.body.dataset.drawn = String(drawn);
  }

  async function refresh() {
    const response = await fetch(base + "/panel", { credentials: "same-origin" });
    if (response.ok) {
      document.getElementById("panel").innerHTML = await response.text();
      await draw();
    }
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.classList.contains("act")) return;
    event.preventDefault();
    const error = document.getElementById("error");
    error.textContent = "";
    const response = await fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)).toString(),
      redirect: "manual",
    });
    if (response.status >= 400) {
      const problem = await response.json().catch(() => ({ detail: response.statusText }));
      error.textContent = problem.detail;
    }
    await refresh();
  });

  const events = new EventSource(base + "/events");
  events.addEventListener("changed", () => { refresh(); });
  draw();
})();
