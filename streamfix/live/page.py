"""The preview page served at ``/``: the MJPEG stream, live counters from ``/stats.json``, keys.

Layout is fixed on purpose (a 32 px bar above the picture) so tests can find the picture in a
screenshot.
"""

from __future__ import annotations

import html

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>streamfix live: {source}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>
 html,body{{margin:0;background:#111;color:#ddd;font:14px/1.3 system-ui,sans-serif}}
 header,footer{{display:flex;gap:14px;align-items:center;padding:0 10px;background:#1c1c1c;
   height:32px;white-space:nowrap;overflow:hidden}}
 #v{{display:block;width:100%;max-height:calc(100vh - 64px);object-fit:contain;object-position:left top;
   background:#000}}
 b{{color:#fff}} .down{{color:#ff7070}} .live{{color:#7fdc7f}}
 kbd{{border:1px solid #555;border-radius:3px;padding:0 4px;font:12px monospace}}
 button{{background:#333;color:#eee;border:1px solid #555;border-radius:3px;padding:1px 8px;cursor:pointer}}
</style></head>
<body>
<header><b>streamfix live</b><span title="source">{source}</span>
 <span>engine <b id="engine">{engine}</b></span><span id="status">connecting</span></header>
<img id="v" src="/stream.mjpg" alt="enhanced stream">
<footer>
 <span>fps <b id="fps">–</b></span>
 <span>latency p50/p95/p99 <b id="lat">–</b> ms</span>
 <span>dropped <b id="dropped">0</b></span><span>frames <b id="frames">0</b></span>
 <span>view <button id="bview" title="key v">split</button></span>
 <span>strength <button id="bminus" title="key -">−</button> <b id="strength">–</b>
   <button id="bplus" title="key +">+</button></span>
 <button id="bsnap" title="key s">snapshot</button>
 <span><kbd>v</kbd> before/after <kbd>+</kbd>/<kbd>-</kbd> strength <kbd>s</kbd> snapshot</span>
</footer>
<script>
const $ = id => document.getElementById(id);
const fmt = v => (v === null || v === undefined) ? "–" : (+v).toFixed(1);
function show(s) {{
  $("fps").textContent = fmt(s.fps);
  const l = s.latency_recent_ms || s.latency_ms || {{}};
  $("lat").textContent = fmt(l.p50) + " / " + fmt(l.p95) + " / " + fmt(l.p99);
  $("dropped").textContent = s.dropped; $("frames").textContent = s.frames;
  $("bview").textContent = s.view; $("strength").textContent = (+s.strength).toFixed(2);
  $("engine").textContent = s.engine;
  const st = $("status"); st.textContent = s.status === "live" ? "live" : s.status + ": " + s.message;
  st.className = s.status === "live" ? "live" : "down";
}}
async function tick() {{
  try {{ show(await (await fetch("/stats.json", {{cache: "no-store"}})).json()); }}
  catch (e) {{ $("status").textContent = "preview server unreachable"; $("status").className = "down"; }}
  setTimeout(tick, 500);
}}
function act(a) {{ fetch("/control?action=" + a, {{method: "POST"}}).then(r => r.json()).then(show); }}
function snap() {{
  const a = document.createElement("a");
  a.href = "/snapshot.jpg?t=" + Date.now();
  a.download = "streamfix-" + new Date().toISOString().replace(/[:.]/g, "-") + ".jpg";
  document.body.appendChild(a); a.click(); a.remove();
}}
$("bview").onclick = () => act("toggle"); $("bplus").onclick = () => act("stronger");
$("bminus").onclick = () => act("weaker"); $("bsnap").onclick = snap;
document.addEventListener("keydown", e => {{
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "v" || e.key === "b") act("toggle");
  else if (e.key === "+" || e.key === "=" || e.key === "ArrowUp") act("stronger");
  else if (e.key === "-" || e.key === "ArrowDown") act("weaker");
  else if (e.key === "s") snap();
  else return;
  e.preventDefault();
}});
$("v").onerror = () => setTimeout(() => {{ $("v").src = "/stream.mjpg?" + Date.now(); }}, 1000);
tick();
</script>
</body></html>
"""


def render_page(source: str, engine: str) -> bytes:
    """The page for ``source`` (already redacted) and ``engine``."""
    return _PAGE.format(source=html.escape(source), engine=html.escape(engine)).encode()
