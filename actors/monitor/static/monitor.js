// actors monitor: live updates without a framework. The server sends the ids of changed
// tasks as server-sent events; a live page then fetches itself again (at most once a
// second) and swaps its <main id="live">. Filters and forms outside <main> are left alone.
"use strict";
(function () {
  const main = document.getElementById("live");
  if (!main) return;
  const mode = main.dataset.live;
  let due = false;
  let busy = false;

  async function refresh() {
    if (busy) { due = true; return; }
    busy = true;
    due = false;
    try {
      const response = await fetch(location.href, { headers: { "X-Live": "1" } });
      if (response.ok) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById("live");
        if (fresh) {
          main.innerHTML = fresh.innerHTML;
          main.dataset.ids = fresh.dataset.ids || "";
        }
      }
    } finally {
      busy = false;
      if (due) setTimeout(refresh, 1000);
    }
  }

  function relevant(ids) {
    if (mode === "all") return true;
    if (mode !== "ids") return false;
    const mine = new Set((main.dataset.ids || "").split(" "));
    return ids.some((id) => mine.has(id));
  }

  if (mode === "all" || mode === "ids") {
    const source = new EventSource("/api/stream");
    source.addEventListener("tasks", (event) => {
      const ids = JSON.parse(event.data).ids || [];
      if (relevant(ids)) refresh();
    });
  }
  if (mode === "all" || mode === "poll") {
    setInterval(refresh, 5000); // worker heartbeats and queue depths change without events
  }

  document.addEventListener("submit", (event) => {
    const question = event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
