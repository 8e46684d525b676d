// bindrop's dashboard: live state, log tail and actions without a reload. The pages work
// without this file; it only keeps them current. Text from the server is set with
// textContent, never as HTML; the one exception is the graphs, swapped in whole as the
// dashboard itself rendered them (escaped there, like every page).
(function () {
  "use strict";
  var body = document.body;

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var parts = [[Math.floor(seconds / 86400), "d"], [Math.floor(seconds % 86400 / 3600), "h"],
                 [Math.floor(seconds % 3600 / 60), "m"], [seconds % 60, "s"]];
    var shown = parts.filter(function (p) { return p[0]; }).slice(0, 2)
                     .map(function (p) { return p[0] + p[1]; });
    return shown.join(" ") || "0s";
  }

  function tickUptimes() {
    document.querySelectorAll('[data-field="uptime"]').forEach(function (el) {
      var root = el.closest("[data-app]");
      var state = root && root.querySelector('[data-field="state"]');
      var since = el.dataset.since;
      var running = state && state.classList.contains("state-running");
      el.textContent = since && running ? duration((Date.now() - Date.parse(since)) / 1000) : "-";
    });
  }

  function setField(root, field, text) {
    root.querySelectorAll('[data-field="' + field + '"]').forEach(function (el) {
      el.textContent = text;
    });
  }

  function applyState(app, live) {
    document.querySelectorAll("[data-app]").forEach(function (root) {
      if (root.dataset.app !== app) return;
      root.querySelectorAll('[data-field="state"]').forEach(function (el) {
        el.textContent = live.state + (live.deploying ? " (deploying)" : "");
        el.className = "state state-" + live.state;
      });
      setField(root, "release", live.release || "-");
      setField(root, "restarts", String(live.n_restarts));
      setField(root, "problem", live.problem || "");
      root.querySelectorAll('[data-field="uptime"]').forEach(function (el) {
        el.dataset.since = live.active_since || "";
      });
    });
    tickUptimes();
  }

  function addEvent(event) {
    var list = document.getElementById("events");
    if (!list) return;
    var item = document.createElement("li");
    item.className = "event-" + event.kind;
    var time = document.createElement("time");
    time.textContent = (event.at || "").replace("T", " ").slice(0, 19) + " UTC";
    item.appendChild(time);
    item.appendChild(document.createTextNode(" "));
    if (event.app && list.hasAttribute("data-show-app")) {
      item.appendChild(document.createTextNode(event.app + " "));
    }
    var kind = document.createElement("b");
    kind.textContent = event.kind;
    item.appendChild(kind);
    item.appendChild(document.createTextNode(" " + event.message));
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 100) list.removeChild(list.lastChild);
  }

  // The apps page: an app created or destroyed elsewhere adds or removes its row (the list
  // is fetched again as the dashboard renders it).
  var appsList = document.getElementById("apps-list");
  var listing = null;
  var listAgain = false;  // asked for while a fetch was under way: that one may be too old
  function refreshAppsList() {
    if (!appsList) return;
    if (listing) { listAgain = true; return; }
    listAgain = false;
    listing = fetch("/", {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (html) {
        var fresh = html && new DOMParser().parseFromString(html, "text/html")
                                          .getElementById("apps-list");
        if (fresh) { appsList.replaceWith(fresh); appsList = fresh; tickUptimes(); }
      })
      .catch(function () {})
      .finally(function () { listing = null; if (listAgain) refreshAppsList(); });
  }

  if (body.dataset.live && window.EventSource) {
    var events = new EventSource(body.dataset.live);
    events.addEventListener("state", function (e) {
      var data = JSON.parse(e.data);
      body.dataset.synced = "1";  // the stream is live (it starts with every app's state)
      if (appsList && !appsList.querySelector('[data-app="' + CSS.escape(data.app) + '"]')) {
        refreshAppsList();
      }
      applyState(data.app, data.live);
    });
    events.addEventListener("event", function (e) {
      var event = JSON.parse(e.data);
      if (event.kind === "app_created" || event.kind === "app_destroyed") refreshAppsList();
      addEvent(event);
      refreshOn(event.kind);
    });
  }

  // Sections re-read from the server when an event they show arrives (backups, disk), or
  // every data-refresh-every seconds. The new section comes from this very page.
  function refresh(section) {
    fetch(window.location.href, {credentials: "same-origin",
                                 headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById(section.id);
        var now = document.getElementById(section.id);
        if (fresh && now) now.replaceWith(document.importNode(fresh, true));
      })
      .catch(function () {});
  }

  function refreshOn(kind) {
    document.querySelectorAll("[data-refresh-on]").forEach(function (section) {
      if (section.dataset.refreshOn.split(" ").indexOf(kind) >= 0) refresh(section);
    });
  }

  document.querySelectorAll("[data-refresh-every]").forEach(function (section) {
    setInterval(function () { if (!document.hidden) refresh(section); },
                1000 * Number(section.dataset.refreshEvery));
  });

  // Forms inside refreshed sections: one listener for all, present and future.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.matches && form.matches("form[data-ask]") && !window.confirm(form.dataset.ask)) {
      e.preventDefault();
    }
  });

  var log = document.getElementById("log");
  if (log && body.dataset.logs && window.EventSource) {
    var lines = new EventSource(body.dataset.logs);
    lines.addEventListener("line", function (e) {
      var line = JSON.parse(e.data);
      var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      var when = line.time ? new Date(line.time / 1000).toISOString().slice(11, 19) + " " : "";
      log.appendChild(document.createTextNode(when + (line.release ? "[" + line.release + "] " : "") +
                                              line.message + "\n"));
      while (log.childNodes.length > 500) log.removeChild(log.firstChild);
      if (atBottom) log.scrollTop = log.scrollHeight;
    });
    lines.addEventListener("problem", function (e) {
      log.appendChild(document.createTextNode("(" + JSON.parse(e.data).message + ")\n"));
    });
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  });

  document.querySelectorAll("form.async").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var status = document.getElementById("action-status");
      var buttons = form.parentNode.querySelectorAll("button");
      buttons.forEach(function (b) { b.disabled = true; });
      if (status) { status.textContent = "working…"; status.className = ""; }
      fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                          headers: {"X-Requested-With": "fetch"}})
        .then(function (r) {
          if (r.status === 401 || r.redirected) { window.location = "/login"; return null; }
          return r.json();
        })
        .then(function (answer) {
          if (answer && status) {
            status.textContent = answer.message;
            status.className = answer.ok ? "ok" : "error";
          }
        })
        .catch(function (err) { if (status) { status.textContent = String(err); status.className = "error"; } })
        .finally(function () { buttons.forEach(function (b) { b.disabled = false; }); });
    });
  });

  // Uploads: sent by the page's script to show progress; the plain form works without it.
  var upload = document.getElementById("upload");
  if (upload && window.XMLHttpRequest && window.FormData) {
    upload.addEventListener("submit", function (e) {
      e.preventDefault();
      var bar = document.getElementById("upload-progress");
      var status = document.getElementById("upload-status");
      var button = upload.querySelector("button");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", upload.action);
      xhr.setRequestHeader("X-Requested-With", "fetch");
      bar.hidden = false; bar.value = 0; button.disabled = true;
      status.textContent = "uploading…"; status.className = "";
      xhr.upload.addEventListener("progress", function (p) {
        if (p.lengthComputable) bar.value = Math.round(p.loaded / p.total * 100);
        if (p.loaded === p.total) status.textContent = "uploaded; the server is working…";
      });
      xhr.addEventListener("load", function () {
        var answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = null; }
        button.disabled = false;
        if (!answer) { window.location.reload(); return; }
        status.textContent = answer.message;
        status.className = answer.ok ? "ok" : "error";
        if (answer.ok) setTimeout(function () { window.location.reload(); }, 1500);
      });
      xhr.addEventListener("error", function () {
        button.disabled = false; status.textContent = "the upload failed"; status.className = "error";
      });
      xhr.send(new FormData(upload));
    });
  }

  // Memory and CPU: systemd never pushes them, so ask every few seconds while visible.
  function refreshMetrics() {
    if (document.hidden) return;
    fetch(body.dataset.metrics, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (shown) {
        if (!shown) return;
        document.querySelectorAll("[data-app]").forEach(function (root) {
          var m = shown[root.dataset.app];
          if (!m) return;
          setField(root, "memory", m.memory);
          setField(root, "cpu", m.cpu);
        });
      })
      .catch(function () {});
  }
  if (body.dataset.metrics) setInterval(refreshMetrics, 5000);

  // Graphs: the hub adds a point every 10 s; fetch them again as rendered by the dashboard.
  function refreshCharts() {
    var box = document.getElementById("charts");
    if (!box || document.hidden) return;
    fetch(box.dataset.src, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("charts");
        if (fresh) box.replaceWith(fresh);
      })
      .catch(function () {});
  }
  if (document.getElementById("charts")) setInterval(refreshCharts, 10000);

  tickUptimes();
  setInterval(tickUptimes, 10000);
})();
