// The dashboard's only script: keeps the live part of a page current from /api/events
// (Server-Sent Events). Everything else works without it.
"use strict";

(function () {
  // The start URL carries the token; the cookie holds it now, so drop it from the address bar.
  const url = new URL(window.location.href);
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  if (!document.body.dataset.live) {
    return;
  }
  const conn = document.getElementById("conn");
  const live = document.getElementById("live");
  const head = document.querySelector(".task-head");
  let pending = null;

  function refresh() {
    pending = null;
    fetch("/fragments/overview", { credentials: "same-origin", cache: "no-store" })
      .then((answer) => (answer.ok ? answer.text() : Promise.reject(answer.status)))
      .then((html) => {
        live.innerHTML = html;
        document.body.dataset.updated = String(Date.now());
      })
      .catch(() => { conn.textContent = "update failed"; });
  }

  function schedule() {
    if (live && pending === null) {
      pending = window.setTimeout(refresh, 50);
    }
  }

  const events = new EventSource("/api/events");
  events.onopen = () => { conn.textContent = "live"; };
  events.onerror = () => { conn.textContent = "reconnecting…"; };
  events.addEventListener("status", () => {
    schedule();
    if (head) {  // a change the page may have missed while it loaded
      fetch("/api/tasks/" + encodeURIComponent(head.dataset.task), { cache: "no-store" })
        .then((answer) => (answer.ok ? answer.json() : null))
        .then((task) => {
          if (task && task.state !== head.dataset.state) {
            window.location.reload();
          }
        })
        .catch(() => {});
    }
  });
  events.addEventListener("progress", schedule);
  events.addEventListener("task", (event) => {
    schedule();
    if (head) {  // a task's page: reload it when that task changes state
      const task = JSON.parse(event.data);
      if (task.id === head.dataset.task && task.state !== head.dataset.state) {
        window.location.reload();
      }
    }
  });
})();
