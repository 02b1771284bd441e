// Warren live: renders the server's event stream (/events). No framework: the page is an
// example to read. Every row is keyed by its trace id, known before the order's id.
"use strict";

const steps = ["placed", "published", "inventory", "email", "sms", "analytics", "settled"];
const $ = (id) => document.getElementById(id);
const rows = new Map();

function post(path) {
  // The header tells the server the call comes from this page's script (see livepage.go).
  return fetch(path, { method: "POST", headers: { "X-Warren-Live": "1" } })
    .then((r) => r.ok ? r.json() : r.json().then((b) => Promise.reject(new Error(b.error || r.statusText))));
}

// Errors go to the page, not to alert(): a dialog would stop the page (and its test).
const showError = (e) => { $("error").textContent = e.message; setTimeout(() => { $("error").textContent = ""; }, 8000); };
$("place").onclick = () => post("/orders?count=1").catch(showError);
$("burst").onclick = () => post("/orders?count=10").catch(showError);
$("poison").onclick = () => post("/poison").catch(showError);

function cell(tr, cls, text) {
  const td = document.createElement("td");
  td.className = cls;
  if (text !== undefined) td.textContent = text;
  tr.appendChild(td);
  return td;
}

function renderOrder(o) {
  let tr = rows.get(o.trace_id);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.trace = o.trace_id;
    $("orders").tBodies[0].prepend(tr);
    rows.set(o.trace_id, tr);
    $("no-orders").hidden = true;
  }
  tr.replaceChildren();
  tr.dataset.status = o.status;
  cell(tr, "id", o.id ? o.id.slice(0, 8) : "…").title = o.id || "";
  cell(tr, "what", `${o.region} · ${o.sku}`);
  for (const s of steps) {
    const state = o.steps[s] || "";
    const td = cell(tr, "step " + state);
    td.dataset.step = s;
    const label = document.createElement("span");
    label.textContent = s === "settled" ? (o.status === "pending" || o.status === "placing" ? "…" : o.status)
      : state || "…";
    td.appendChild(label);
  }
  const link = document.createElement("a");
  link.href = o.trace_url; link.target = "_blank"; link.rel = "noopener"; link.textContent = "Jaeger";
  cell(tr, "trace").appendChild(link);
  if (o.error) tr.lastChild.title = o.error;
  if (o.status === "refused") { tr.children[1].className = "error"; tr.children[1].textContent = o.error; }
  tr.title = o.reason || "";
}

const fmt = (v) => (v === null || v === undefined) ? "–" : String(v);

function renderQueues(p) {
  const status = $("queues-status");
  if (p.error) {
    status.className = "warn";
    status.textContent = p.source === "broker"
      ? "Prometheus unreachable: dead letters below are the broker's own count."
      : "Prometheus unreachable.";
    status.title = p.error;
  } else {
    status.className = "hint";
    status.textContent = "from Prometheus, " + new Date(p.at).toLocaleTimeString();
    status.title = "";
  }
  const body = $("queues").tBodies[0];
  body.replaceChildren();
  for (const r of p.rows || []) {
    const tr = document.createElement("tr");
    tr.dataset.queue = r.queue;
    cell(tr, "", r.queue);
    cell(tr, "", fmt(r.ready)); cell(tr, "", fmt(r.unacked)); cell(tr, "", fmt(r.consumers));
    const dl = cell(tr, "dlq" + (r.dead_letters > 0 ? " dlq-full" : ""), fmt(r.dead_letters));
    dl.dataset.deadLetters = fmt(r.dead_letters);
    body.appendChild(tr);
  }
}

function renderAlerts(p) {
  const status = $("alerts-status");
  const list = $("alerts");
  list.replaceChildren();
  if (p.error) {
    status.className = "warn"; status.textContent = "Prometheus unreachable."; status.title = p.error;
    return;
  }
  status.className = "hint"; status.title = "";
  status.textContent = p.alerts.length ? "" : "no alert pending or firing";
  for (const a of p.alerts) {
    const li = document.createElement("li");
    li.className = a.state;
    li.textContent = `${a.name} (${a.state}${a.severity ? ", " + a.severity : ""})${a.summary ? ": " + a.summary : ""}`;
    list.appendChild(li);
  }
}

function renderConfig(c) {
  const b = $("poison");
  b.disabled = !c.poison;
  b.title = c.poison
    ? `publishes a malformed OrderPlaced straight into ${c.poison_queue}; it lands in ${c.poison_queue}.dlq`
    : "disabled: a poison message can only come from the broker side. Start the page with LIVE_POISON_AMQP_URL (a broker user allowed to publish to the queue) to enable it.";
}

function renderPoison(n) {
  const list = $("poisons");
  if (list.querySelector(".hint")) list.replaceChildren();
  const li = document.createElement("li");
  li.textContent = `${new Date(n.at).toLocaleTimeString()} ${n.message_id} → ${n.queue} (watch ${n.dlq})`;
  list.prepend(li);
}

function connect() {
  const es = new EventSource("/events");
  const on = (type, fn) => es.addEventListener(type, (e) => fn(JSON.parse(e.data)));
  on("config", renderConfig);
  on("order", renderOrder);
  on("queues", renderQueues);
  on("alerts", renderAlerts);
  on("poison", renderPoison);
  es.onopen = () => { $("stream").textContent = "live"; $("stream").className = "stream up"; };
  es.onerror = () => { $("stream").textContent = "reconnecting…"; $("stream").className = "stream"; };
}
connect();
