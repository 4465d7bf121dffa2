"""The explorer page served at ``GET /``: plain HTML and JavaScript, no external resources.

Kept as a Python string so it ships inside the package with no package-data setup. The page
talks to the same JSON endpoints as any client. ``/?user=ID`` or ``/?items=1,2,3`` runs that
query on load (the browser test relies on it).
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>recae explorer</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 62em; padding: 0 1em; color: #222; }
  h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin: .2em 0 .5em; }
  form { display: flex; gap: .5em; margin: .4em 0; flex-wrap: wrap; align-items: center; }
  input[type=text] { flex: 1; min-width: 12em; padding: .3em; } input[type=number] { width: 4.5em; padding: .3em; }
  .cols { display: grid; grid-template-columns: 2fr 1fr; gap: 1.5em; margin-top: 1em; }
  ol, ul { padding-left: 1.6em; margin: 0; } li { margin: .25em 0; }
  .score { color: #666; font-variant-numeric: tabular-nums; } .why { color: #555; font-size: .9em; }
  .pick { display: inline-block; margin: .1em; padding: .05em .4em; border: 1px solid #bbb; border-radius: 3px;
          cursor: pointer; font-size: .85em; background: #f7f7f7; }
  #status { min-height: 1.3em; color: #a00; } #model { color: #666; font-size: .9em; }
</style>
</head>
<body>
<h1>recae explorer</h1>
<div id="model"></div>
<form id="by-user"><label for="user">User id</label><input type="text" id="user" placeholder="e.g. 42">
  <label for="n">n</label><input type="number" id="n" value="10" min="1" max="1000">
  <button type="submit">Recommend</button></form>
<form id="by-items"><label for="items">or items</label><input type="text" id="items" placeholder="item ids, comma separated">
  <button type="submit">Recommend for these</button></form>
<div id="popular"></div>
<div id="status" role="status"></div>
<div class="cols">
  <section><h2>Top <span id="count">n</span></h2><ol id="results"></ol></section>
  <section><h2>History</h2><ul id="history"></ul></section>
</div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function text(tag, content, cls) { const e = document.createElement(tag); e.textContent = content;
  if (cls) e.className = cls; return e; }
async function api(path, body) {
  const r = await fetch(path, body === undefined ? {} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}
function idOf(s) { s = s.trim(); return /^[-+]?\\d+$/.test(s) ? Number(s) : s; }
function showResults(res) {
  const ol = $("results"); ol.replaceChildren();
  $("count").textContent = res.items.length;
  const why = new Map((res.explanations || []).map((e) => [String(e.item), e]));
  res.items.forEach((item, i) => {
    const li = document.createElement("li"); li.className = "rec"; li.dataset.item = item;
    li.append(text("b", String(item)), " ", text("span", res.scores[i].toFixed(4), "score"));
    const e = why.get(String(item));
    if (e && e.contributions.length) {
      const parts = e.contributions.map((c) => c.item + " (" + Math.round(100 * c.share) + "%)");
      li.append(document.createElement("br"), text("span", "because of " + parts.join(", ") + " [" + e.method + "]", "why"));
    }
    ol.append(li);
  });
}
function showHistory(items, values) {
  const ul = $("history"); ul.replaceChildren();
  items.forEach((item, i) => { const li = text("li", String(item) + (values && values[i] !== 1 ? " (" + values[i] + ")" : ""));
    li.className = "hist"; li.dataset.item = item; ul.append(li); });
}
async function byUser(user) {
  $("status").textContent = "";
  const n = Number($("n").value) || 10;
  try {
    const q = "user=" + encodeURIComponent(user) + "&n=" + n + "&explain=true";
    const [res, hist] = await Promise.all([api("/recommend?" + q), api("/history?user=" + encodeURIComponent(user))]);
    showResults(res); showHistory(hist.items, hist.values);
  } catch (err) { $("status").textContent = err.message; }
}
async function byItems(raw) {
  $("status").textContent = "";
  const items = raw.split(",").filter((s) => s.trim()).map(idOf);
  try {
    const res = await api("/recommend_new", {history: items, n: Number($("n").value) || 10, explain: true});
    showResults(res); showHistory(items);
  } catch (err) { $("status").textContent = err.message; }
}
$("by-user").addEventListener("submit", (e) => { e.preventDefault(); byUser($("user").value.trim()); });
$("by-items").addEventListener("submit", (e) => { e.preventDefault(); byItems($("items").value); });
api("/model").then((m) => { $("model").textContent = m.class + ": " + m.n_users + " users, " + m.n_items +
  " items; explanations " + m.explanations; }).catch(() => {});
api("/items?n=30").then((p) => { const div = $("popular"); div.append("Popular: ");
  p.items.forEach((item) => { const s = text("span", String(item), "pick");
    s.addEventListener("click", () => { const box = $("items");
      box.value = box.value.trim() ? box.value.replace(/,?\\s*$/, ", ") + item : String(item); }); div.append(s); });
}).catch(() => {});
const params = new URLSearchParams(location.search);
if (params.get("n")) $("n").value = params.get("n");
if (params.get("user")) { $("user").value = params.get("user"); byUser(params.get("user")); }
else if (params.get("items")) { $("items").value = params.get("items"); byItems(params.get("items")); }
</script>
</body>
</html>
"""
