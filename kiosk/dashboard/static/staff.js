// Staff page: polls the summary, follows the image-free event feed, sends pause/resume and reload.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
let paused = false;

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

function fillTable(id, rows) {
  const body = $(id).tBodies[0];
  body.replaceChildren(...rows.map((values) => {
    const tr = document.createElement("tr");
    values.forEach((v) => cell(tr, v));
    return tr;
  }));
}

function duration(seconds) {
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
  return h ? `${h} h ${m} min` : `${m} min`;
}

async function refresh() {
  const response = await fetch("/api/summary", { credentials: "same-origin" });
  if (response.status === 401) { window.location = "/login"; return; }
  const s = await response.json();
  $("kiosk-id").textContent = s.kiosk_id;
  $("child-present").textContent = s.child_present ? "yes" : "no";
  $("last-emotion").textContent = s.last_emotion
    ? `${s.last_emotion} at ${new Date(s.last_emotion_ts * 1000).toLocaleTimeString()}` : "–";
  $("stories-today").textContent = `${s.stories_today} (${s.fallback_stories_today} template)`;
  const lat = s.latency_ms.emotion_to_story_p50;
  $("latency").textContent = lat === undefined ? "–" : `${Math.round(lat)} ms (median)`;
  $("fps").textContent = s.fps == null ? "–" : `${s.fps} fps`;
  $("uptime").textContent = duration(s.uptime_s);
  paused = s.paused;
  $("pause").textContent = paused ? "Resume kiosk" : "Pause kiosk";
  fillTable("counts", Object.entries(s.emotions_today).map(([e, n]) => [e, String(n)]));
  fillTable("health", Object.entries(s.health).map(([name, h]) => [
    name, h.state, h.rss_mib === undefined ? "–" : `${Math.round(h.rss_mib)} MiB`,
    h.cpu_percent === undefined ? "–" : `${Math.round(h.cpu_percent)} %`,
    h.queue_depth === undefined ? "–" : String(h.queue_depth), h.errors === undefined ? "–" : String(h.errors),
  ]));
  fillTable("models", Object.entries(s.models).map(([task, m]) => [task, m.name || "–", m.version || "–", m.runtime || "–"]));
}

function describe(e) {
  switch (e.kind) {
    case "presence": return `child ${e.state} (visit ${e.session})`;
    case "emotion": return `emotion ${e.emotion} (${Math.round(e.confidence * 100)} %, ${e.runtime})`;
    case "story": return `story “${e.title}” for ${e.emotion}${e.fallback ? " (template)" : ""}`;
    case "status": return `${e.service} is ${e.state}`;
    case "error": return `error in ${e.service}: ${e.reason}`;
    case "deploy": return `model update: ${e.action} ${e.name || ""} ${e.version || ""} ${e.reason || ""}`;
    default: return e.kind;
  }
}

function follow() {
  const source = new EventSource("/api/events");
  source.onopen = () => { $("connection").textContent = "live"; };
  source.onerror = () => { $("connection").textContent = "reconnecting…"; };
  source.onmessage = (message) => {
    const entry = JSON.parse(message.data);
    const li = document.createElement("li");
    li.className = `event ${entry.kind}`;
    li.textContent = `${new Date((entry.ts || Date.now() / 1000) * 1000).toLocaleTimeString()} — ${describe(entry)}`;
    $("feed").prepend(li);
    while ($("feed").children.length > 100) $("feed").lastElementChild.remove();
    refresh();
  };
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
  });
  $("action-result").textContent = response.ok ? "sent" : `failed (${response.status})`;
  setTimeout(refresh, 500);
}

$("pause").addEventListener("click", () => post("/api/pause", { paused: !paused }));
$("reload").addEventListener("click", () => post("/api/reload"));
refresh();
setInterval(refresh, 5000);
follow();
