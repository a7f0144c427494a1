/**
 * The dashboard: one self-contained page (inline CSS, JS and SVG; no CDN, no
 * font download), fed by the server-sent events of `/events`.
 */
export const dashboardHtml = (options: { readonly title: string; readonly mutable: boolean }): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)} — connections</title>
<link rel="icon" href="data:,">
<style>
:root { --bg:#0f1419; --panel:#182028; --line:#2a3540; --text:#dce3ea; --muted:#8a99a8;
  --ok:#2fbf71; --warn:#e0a526; --down:#e5484d; --accent:#4ea1ff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
header h1 { font-size:18px; margin:0; }
#conn { font-size:12px; color:var(--muted); }
#conn.live::before { content:"● "; color:var(--ok); }
#conn.lost::before { content:"● "; color:var(--down); }
main { padding:16px 20px; }
section.set { margin-bottom:24px; }
section.set h2 { font-size:16px; margin:0 0 8px; display:flex; gap:12px; align-items:baseline; flex-wrap:wrap; }
section.set h2 small { color:var(--muted); font-weight:normal; font-size:12px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(330px, 1fr)); gap:12px; }
.ep { background:var(--panel); border:1px solid var(--line); border-left:6px solid var(--muted); border-radius:6px; padding:10px 12px; }
.ep[data-state="ok"] { border-left-color:var(--ok); }
.ep[data-state="warn"] { border-left-color:var(--warn); }
.ep[data-state="down"] { border-left-color:var(--down); background:#2a1719; }
.ep .top { display:flex; justify-content:space-between; gap:8px; align-items:baseline; }
.ep .id { font-weight:600; word-break:break-all; }
.ep .url { color:var(--muted); font-size:12px; word-break:break-all; }
.badges { display:flex; gap:6px; flex-wrap:wrap; margin:6px 0; }
.badge { font-size:11px; padding:1px 7px; border-radius:10px; border:1px solid var(--line); color:var(--muted); }
.badge.ok { color:var(--ok); border-color:var(--ok); } .badge.warn { color:var(--warn); border-color:var(--warn); }
.badge.down { color:var(--down); border-color:var(--down); }
.pool { display:flex; height:10px; border-radius:3px; overflow:hidden; background:#0b0f13; margin:4px 0 2px; }
.pool span { display:block; height:100%; }
.pool .inuse { background:var(--accent); } .pool .idle { background:#3c6e57; } .pool .pending { background:var(--warn); }
.legend { font-size:11px; color:var(--muted); }
.nums { display:grid; grid-template-columns:repeat(4, 1fr); gap:4px; font-size:12px; margin-top:6px; }
.nums b { display:block; font-size:14px; color:var(--text); }
.nums span { color:var(--muted); }
svg.spark { width:100%; height:36px; display:block; margin-top:4px; background:#11181f; border-radius:3px; }
.sparklabel { font-size:11px; color:var(--muted); display:flex; justify-content:space-between; margin-top:6px; }
.err { color:var(--down); font-size:12px; margin-top:4px; word-break:break-word; }
.controls { margin-top:8px; display:flex; gap:6px; flex-wrap:wrap; }
button, input { background:#0b0f13; color:var(--text); border:1px solid var(--line); border-radius:4px; padding:3px 8px; font:inherit; font-size:12px; }
button:hover { border-color:var(--accent); cursor:pointer; }
.empty { color:var(--muted); }
</style>
</head>
<body>
<header>
  <h1>${escapeHtml(options.title)}</h1>
  <span id="conn">connecting…</span>
  <span id="updated" class="legend"></span>
  ${options.mutable ? `<label class="legend">token <input id="token" type="password" autocomplete="off" size="16"></label>` : ""}
</header>
<main id="sets"><p class="empty">Waiting for the first sample…</p></main>
<script>
"use strict";
const MUTABLE = ${options.mutable ? "true" : "false"};
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (n, digits) => n === null || n === undefined ? "–" : Number(n).toFixed(digits);
function stateOf(e) {
  if (e.health === "unhealthy" || (e.breaker && e.breaker.status === "open")) return "down";
  if (e.health === "degraded" || e.health === "unknown" || (e.breaker && e.breaker.status === "half-open")) return "warn";
  return "ok";
}
function badge(text, cls) { return '<span class="badge ' + (cls || "") + '">' + esc(text) + "</span>"; }
function spark(values, color, max) {
  const w = 300, h = 36, n = values.length;
  if (n === 0) return '<svg class="spark" viewBox="0 0 300 36"></svg>';
  const top = Math.max(max || 0, ...values.filter((v) => v !== null), 1e-9);
  let d = "", pen = false;
  values.forEach((v, i) => {
    const x = n === 1 ? w : (i / (n - 1)) * w;
    if (v === null) { pen = false; return; }
    const y = h - 2 - (v / top) * (h - 4);
    // A lone point is drawn as a dot (a tiny segment with a round cap).
    d += pen ? " L" + x.toFixed(1) + " " + y.toFixed(1) : " M" + x.toFixed(1) + " " + y.toFixed(1) + " l0.01 0";
    pen = true;
  });
  return '<svg class="spark" viewBox="0 0 300 36" preserveAspectRatio="none"><path d="' + d + '" fill="none" stroke="' + color + '" stroke-width="2" stroke-linecap="round" vector-effect="non-scaling-stroke"/></svg>';
}
function endpointCard(set, e) {
  const state = stateOf(e);
  const p = e.pool, total = Math.max(p.max, p.inUse + p.idle + p.pending, 1);
  const last = e.series.length ? e.series[e.series.length - 1] : null;
  const ops = e.series.map((s) => s.ops), p50 = e.series.map((s) => s.p50), p99 = e.series.map((s) => s.p99);
  const latMax = Math.max(0, ...p99.filter((v) => v !== null));
  const breaker = e.breaker ? e.breaker.status : "off";
  let html = '<div class="ep" data-endpoint="' + esc(set.name + "/" + e.id) + '" data-state="' + state + '">';
  html += '<div class="top"><span class="id">' + esc(e.id) + "</span>" + badge(e.role) + "</div>";
  html += '<div class="url">' + esc(e.url) + "</div>";
  html += '<div class="badges">' + badge("health: " + e.health, e.health === "healthy" ? "ok" : e.health === "unhealthy" ? "down" : "warn");
  html += badge("breaker: " + breaker, breaker === "closed" ? "ok" : breaker === "open" ? "down" : breaker === "half-open" ? "warn" : "");
  html += badge("weight " + e.weight) + (p.draining ? badge("draining", "warn") : "") + "</div>";
  html += '<div class="pool" title="in use / idle / pending of max ' + p.max + '">';
  html += '<span class="inuse" style="width:' + (100 * p.inUse / total) + '%"></span>';
  html += '<span class="idle" style="width:' + (100 * p.idle / total) + '%"></span>';
  html += '<span class="pending" style="width:' + (100 * Math.min(p.pending, total) / total) + '%"></span></div>';
  html += '<div class="legend">pool: ' + p.inUse + " in use · " + p.idle + " idle · " + p.pending + " pending · max " + p.max + " · " + p.identities + " identities</div>";
  html += '<div class="nums"><div><span>ops/s</span><b>' + fmt(last && last.ops, 0) + "</b></div>";
  html += "<div><span>p50 ms</span><b>" + fmt(last && last.p50, 2) + "</b></div>";
  html += "<div><span>p99 ms</span><b>" + fmt(last && last.p99, 2) + "</b></div>";
  html += "<div><span>in flight</span><b>" + e.inFlight + "</b></div></div>";
  html += '<div class="sparklabel"><span>throughput</span><span>' + e.requests + " ops · " + e.failures + " failed</span></div>" + spark(ops, "#4ea1ff");
  html += '<div class="sparklabel"><span>latency p50 / p99</span><span>max ' + fmt(latMax, 2) + " ms</span></div>";
  html += spark(p99, "#e0a526", latMax).replace("</svg>", "") + spark(p50, "#2fbf71", latMax).replace(/^<svg[^>]*>/, "");
  if (e.lastError) html += '<div class="err">' + esc(e.lastError) + "</div>";
  if (MUTABLE) {
    html += '<div class="controls">' + (p.draining ? '<button data-act="enable">enable</button>' : '<button data-act="drain">drain</button>') + '<button data-act="remove">remove</button>';
    html += '<input data-weight size="3" value="' + e.weight + '"><button data-act="weight">set weight</button></div>';
  }
  return html + "</div>";
}
function render(snapshot) {
  const root = document.getElementById("sets");
  if (snapshot.sets.length === 0) { root.innerHTML = '<p class="empty">No set is watched yet.</p>'; return; }
  root.innerHTML = snapshot.sets.map((set) => {
    const usable = set.endpoints.filter((e) => e.usable).length;
    let h = '<section class="set" data-set="' + esc(set.name) + '"><h2>' + esc(set.name) + " <small>" + esc(set.strategy) + " · " + usable + "/" + set.endpoints.length + " usable" + (set.required ? " · required" : "");
    if (set.cache) {
      const total = set.cache.hits + set.cache.misses;
      h += " · cache " + set.cache.size + " entries, hit ratio " + (total ? (100 * set.cache.hits / total).toFixed(1) + "%" : "–");
    }
    h += '</small></h2><div class="grid">' + set.endpoints.map((e) => endpointCard(set, e)).join("") + "</div></section>";
    return h;
  }).join("");
  document.getElementById("updated").textContent = "updated " + new Date(snapshot.time).toLocaleTimeString();
}
async function act(setName, id, action, weight) {
  const token = document.getElementById("token").value;
  const base = "/api/sets/" + encodeURIComponent(setName) + "/endpoints/" + encodeURIComponent(id);
  const init = { method: action === "remove" ? "DELETE" : "POST", headers: { authorization: "Bearer " + token, "content-type": "application/json" } };
  if (action === "weight") init.body = JSON.stringify({ weight: Number(weight) });
  const res = await fetch(action === "remove" ? base : base + "/" + action, init);
  if (!res.ok) console.warn("admin action failed", res.status, await res.text());
}
if (MUTABLE) {
  document.getElementById("sets").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-act]");
    if (!button) return;
    const card = button.closest(".ep"), section = button.closest("section.set");
    const setName = section.dataset.set, id = card.dataset.endpoint.slice(setName.length + 1);
    act(setName, id, button.dataset.act, card.querySelector("input[data-weight]").value);
  });
}
const conn = document.getElementById("conn");
const source = new EventSource("/events");
source.addEventListener("snapshot", (ev) => { conn.className = "live"; conn.textContent = "live"; render(JSON.parse(ev.data)); });
source.onerror = () => { conn.className = "lost"; conn.textContent = "reconnecting…"; };
</script>
</body>
</html>
`

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)
