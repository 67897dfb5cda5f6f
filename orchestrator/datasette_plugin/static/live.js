// The live page: follows /-/live/events (server-sent events) and keeps two tables current.
// Text goes in with textContent only, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("live");
  var keep = parseInt(root.dataset.keep, 10) || 100;
  var runsUrl = root.dataset.runsUrl;
  var status = document.getElementById("live-status");
  var eventsBody = document.querySelector("#live-events tbody");
  var runsBody = document.querySelector("#live-runs tbody");
  var noRuns = document.getElementById("live-no-runs");
  var shown = new Map(); // event key -> its row, newest first in the table
  var runs = [];
  var clockOffset = 0; // browser clock minus server clock, in ms
  var streamsOpened = 0;

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function when(iso) {
    return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "") : "";
  }

  function usd(value) {
    return value == null ? "" : "$" + Number(value).toFixed(4);
  }

  function runLabel(event) {
    var id = event.run_id ? event.run_id.slice(-8) : "";
    if (!event.run) return id;
    return event.run + (id ? " (" + id + ")" : "");
  }

  function addEvent(event) {
    if (shown.has(event.key)) return;
    var rows = eventsBody.rows;
    var position = 0; // newest first: after every row at least as new
    while (position < rows.length && rows[position].dataset.time >= event.time) position++;
    if (position >= keep) return; // older than everything kept
    var row = document.createElement("tr");
    row.dataset.time = event.time;
    row.dataset.key = event.key;
    row.className = "level-" + event.level + (streamsOpened > 0 ? " fresh" : "");
    cell(row, when(event.time));
    cell(row, event.workflow);
    cell(row, runLabel(event));
    cell(row, event.kind);
    cell(row, usd(event.cost_usd), "num");
    cell(row, event.text, "text");
    eventsBody.insertBefore(row, rows[position] || null);
    shown.set(event.key, row);
    while (eventsBody.rows.length > keep) {
      var last = eventsBody.rows[eventsBody.rows.length - 1];
      shown.delete(last.dataset.key);
      last.remove();
    }
  }

  function elapsed(startedAt) {
    var seconds = Math.max(0, Math.round((Date.now() - clockOffset - Date.parse(startedAt)) / 1000));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
  }

  function drawRuns() {
    runsBody.textContent = "";
    runs.forEach(function (run) {
      var row = document.createElement("tr");
      row.dataset.runId = run.run_id;
      cell(row, run.workflow);
      var name = cell(row, "");
      var link = document.createElement("a");
      link.href = runsUrl + "/" + encodeURIComponent(run.run_id);
      link.textContent = runLabel(run);
      name.appendChild(link);
      cell(row, run.session);
      cell(row, run.status);
      cell(row, when(run.started_at));
      cell(row, elapsed(run.started_at), "num elapsed");
      cell(row, run.prompts, "num");
      cell(row, usd(run.cost_usd), "num");
      runsBody.appendChild(row);
    });
    noRuns.hidden = runs.length > 0;
    runsBody.parentNode.hidden = runs.length === 0;
  }

  function tick() {
    Array.prototype.forEach.call(runsBody.rows, function (row, i) {
      if (runs[i]) row.querySelector(".elapsed").textContent = elapsed(runs[i].started_at);
    });
  }

  var source = new EventSource(root.dataset.eventsUrl);
  source.addEventListener("open", function () {
    status.dataset.state = "open";
    status.textContent = "Live: new events appear as they are written.";
  });
  source.addEventListener("error", function () {
    // Each stream ends after a few seconds and the browser reconnects by itself.
    if (source.readyState === EventSource.CLOSED) {
      status.dataset.state = "closed";
      status.textContent = "Disconnected: reload the page to follow again.";
    }
  });
  source.addEventListener("event", function (message) {
    addEvent(JSON.parse(message.data));
  });
  source.addEventListener("runs", function (message) {
    var data = JSON.parse(message.data);
    clockOffset = Date.now() - Date.parse(data.now);
    runs = data.runs;
    drawRuns();
    streamsOpened++;
  });
  setInterval(tick, 1000);
})();
