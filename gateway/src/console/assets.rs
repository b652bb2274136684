//! The console's style sheet and script: small, hand-written, no build step. Served without login (they hold
//! nothing secret), cacheable for a few minutes.

use axum::http::header;
use axum::response::IntoResponse;

const CACHE: &str = "public, max-age=300";

/// `GET /static/console.css`.
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        CSS,
    )
}

/// `GET /static/console.js`.
pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        JS,
    )
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b2330;background:#f3f5f8}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5em 1.2em;padding:.6em 1em;background:#1d3557;color:#fff}
header .brand{font-weight:700;margin-right:.5em}
header nav{display:flex;flex-wrap:wrap;gap:.2em .8em;flex:1}
header a{color:#dbe7ff;text-decoration:none;padding:.35em .2em;border-bottom:2px solid transparent}
header a.on{color:#fff;border-bottom-color:#ffd166}
header .who{display:flex;align-items:center;gap:.6em;font-size:.9em}
header form{margin:0}
main{padding:1em;max-width:1200px;margin:0 auto}
h1{font-size:1.35em;margin:.2em 0 .8em}
h2{font-size:1.1em;margin:1.2em 0 .5em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:.8em}
.card{background:#fff;border-radius:8px;padding:.7em .9em;box-shadow:0 1px 2px #0002}
.card h3{margin:0 0 .3em;font-size:.8em;text-transform:uppercase;letter-spacing:.04em;color:#5a6473}
.card .v{font-size:1.15em;font-weight:600}
.card .s{color:#5a6473;font-size:.9em}
.alert{color:#b00020;font-weight:700}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:.8em;margin-top:.8em}
figure{margin:0;background:#fff;border-radius:8px;padding:.6em;box-shadow:0 1px 2px #0002}
figcaption{font-size:.85em;color:#5a6473;margin-bottom:.3em}
svg.chart{width:100%;height:150px;display:block}
svg.chart polyline{fill:none;stroke:#1d6fd8;stroke-width:3}
svg.chart text{font-size:20px;fill:#5a6473}
svg.chart line{stroke:#d0d6de}
.table-wrap{overflow-x:auto;background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002}
table{border-collapse:collapse;width:100%;font-size:.93em}
th,td{text-align:left;padding:.45em .6em;border-bottom:1px solid #e5e9ef;vertical-align:top}
th{background:#eef1f5;font-weight:600}
tr.hit td{background:#ffe3e3}
.badge{display:inline-block;padding:.05em .5em;border-radius:1em;font-size:.85em;background:#e5e9ef}
.badge.hit{background:#d62828;color:#fff;font-weight:700}
.badge.no_hit{background:#d8f3dc}
.badge.inconclusive{background:#fff3bf}
.badge.rejected{background:#ced4da}
.badge.online{background:#d8f3dc}
.badge.offline{background:#ffe3e3}
ul.activity{list-style:none;padding:0;margin:0;background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002}
ul.activity li{padding:.35em .7em;border-bottom:1px solid #e5e9ef;font-size:.92em}
ul.activity li.hit{background:#ffe3e3;font-weight:700}
form.filters{display:flex;flex-wrap:wrap;gap:.5em;align-items:end;margin-bottom:.8em}
form.filters label{display:flex;flex-direction:column;font-size:.85em;color:#5a6473}
input,select,button{font:inherit;padding:.4em .55em;border:1px solid #b8c1cc;border-radius:6px;background:#fff}
button{background:#1d3557;color:#fff;border-color:#1d3557;cursor:pointer}
header button{background:transparent;border-color:#dbe7ff;color:#fff;padding:.2em .6em}
.login{max-width:360px;margin:8vh auto;background:#fff;padding:1.5em;border-radius:10px;box-shadow:0 2px 8px #0002}
.login label{display:block;margin:.6em 0}
.login input{width:100%}
.login button{width:100%;margin-top:.8em;padding:.6em}
.msg{padding:.6em .8em;border-radius:6px;background:#fff3bf;margin:.6em 0}
.msg.err{background:#ffe3e3}
pre{background:#fff;padding:.8em;border-radius:8px;overflow-x:auto;font-size:.85em}
.images{display:flex;flex-wrap:wrap;gap:1em}
.images figure{max-width:320px}
.images img{max-width:100%;height:auto;display:block}
.muted{color:#5a6473}
@media (max-width:600px){main{padding:.6em}header{padding:.5em}}
"#;

const JS: &str = r#"
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var dash = $("dashboard");
  if (!dash) { return; }
  var hours = Number(dash.getAttribute("data-hours")) || 6;
  var samples = [];
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function span(s) {
    return s < 120 ? Math.round(s) + " s" : s < 7200 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
  }
  function draw(id, key, unit) {
    var svg = $(id);
    if (!svg) { return; }
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var W = 600, H = 150, L = 4, B = 24;
    var now = Date.now() / 1000, t0 = now - hours * 3600;
    // The axis spans the samples held (at least a minute), up to the history kept.
    if (samples.length > 0 && samples[0].t > t0) { t0 = Math.min(samples[0].t, now - 60); }
    var pts = samples.filter(function (s) { return s[key] !== null && s[key] !== undefined && s.t >= t0; });
    var max = 1;
    pts.forEach(function (s) { if (s[key] > max) { max = s[key]; } });
    max = max * 1.1;
    var x = function (t) { return L + (W - 2 * L) * (t - t0) / (now - t0); };
    var y = function (v) { return (H - B) - (H - B - 24) * v / max; };
    svg.appendChild(el("line", { x1: L, y1: H - B, x2: W - L, y2: H - B }));
    svg.appendChild(el("text", { x: L, y: 18 }, "max " + (max / 1.1).toFixed(key === "loss_percent" ? 1 : 0) + unit));
    svg.appendChild(el("text", { x: L, y: H - 4 }, "-" + span(now - t0)));
    svg.appendChild(el("text", { x: W - 44, y: H - 4 }, "now"));
    if (pts.length === 0) {
      svg.appendChild(el("text", { x: W / 2 - 80, y: H / 2 },
        samples.length === 0 ? "no data yet" : "no data (link down)"));
      return;
    }
    var line = pts.map(function (s) { return x(s.t).toFixed(1) + "," + y(s[key]).toFixed(1); }).join(" ");
    svg.appendChild(el("polyline", { points: line }));
    var last = pts[pts.length - 1][key];
    svg.appendChild(el("text", { x: W - 190, y: 18 }, "now " + (key === "loss_percent" ? last.toFixed(1) : last) + unit));
  }
  function redraw() {
    draw("chart-backlog", "backlog", "");
    draw("chart-rtt", "rtt_ms", " ms");
    draw("chart-loss", "loss_percent", " %");
  }
  var es = new EventSource("/events");
  es.addEventListener("history", function (e) { samples = JSON.parse(e.data); redraw(); });
  es.addEventListener("sample", function (e) {
    samples.push(JSON.parse(e.data));
    var cut = Date.now() / 1000 - hours * 3600;
    samples = samples.filter(function (s) { return s.t >= cut; });
    redraw();
  });
  es.addEventListener("status", function (e) {
    JSON.parse(e.data).forEach(function (f) {
      var node = $(f[0]);
      if (node) { node.textContent = f[1]; node.classList.toggle("alert", f[2]); }
    });
    var live = $("live");
    if (live) { live.textContent = "live, updated " + new Date().toLocaleTimeString(); }
  });
  es.addEventListener("activity", function (e) {
    var a = JSON.parse(e.data);
    var ul = $("activity");
    if (!ul) { return; }
    var empty = $("activity-empty");
    if (empty) { empty.remove(); }
    var li = document.createElement("li");
    var what = a.kind === "capture" ? "capture received" : a.kind === "rejected" ? "capture rejected"
      : (a.kind === "local" ? "local result: " : "central result: ") + a.decision;
    li.textContent = a.at.replace("T", " ").slice(0, 19) + "  " + (a.station || "?") + "  " + a.capture + "  " + what;
    li.setAttribute("data-capture", a.capture);
    if (a.decision === "hit") { li.className = "hit"; }
    ul.insertBefore(li, ul.firstChild);
    while (ul.children.length > 20) { ul.removeChild(ul.lastChild); }
  });
  es.addEventListener("logout", function () { es.close(); window.location.href = "/login?m=expired"; });
  setInterval(redraw, 30000);
})();
"#;
