// Operator dashboard: sign in with an operator token (kept in sessionStorage, sent only as a header),
// list devices with status and last seen, and chart one device's readings live (SSE read with fetch).
"use strict";

const TOKEN_KEY = "iot-operator-token";
const DEVICES_EVERY_MS = 2000;
const DEVICE_LIMIT = 1000; // the API's largest page
const MAX_POINTS = 300;
const METRICS = {
  temperature: { label: "Temperature", unit: " °C", digits: 1 },
  humidity: { label: "Humidity", unit: " %", digits: 1 },
  battery: { label: "Battery", unit: " %", digits: 0 },
};

const $ = (id) => document.getElementById(id);
const state = { devices: [], selected: null, readings: [], metric: "temperature", stream: null, timer: null };
const rowsById = new Map();

class Unauthorized extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${token()}`, Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response;
}

function setPill(element, kind, text) {
  element.dataset.state = kind;
  element.textContent = text;
}

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

// ---- sign in / out ----------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  const error = $("login-error");
  error.hidden = true;
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("sign-in").disabled = true;
  try {
    await api("/devices?limit=1");
    $("token").value = "";
    showDashboard();
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    error.textContent = e instanceof Unauthorized ? "That token was refused." : `The registry did not answer (${e.message}).`;
    error.hidden = false;
    $("token").select(); // the next paste replaces the refused token
  } finally {
    $("sign-in").disabled = false;
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopStream();
  clearTimeout(state.timer);
  state.selected = null;
  $("dashboard-view").hidden = true;
  $("session").hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("token").focus();
}

function showDashboard() {
  $("login-view").hidden = true;
  $("dashboard-view").hidden = false;
  $("session").hidden = false;
  refreshDevices();
}

// ---- devices ----------------------------------------------------------------------------------

async function refreshDevices() {
  clearTimeout(state.timer);
  try {
    state.devices = await (await api(`/devices?limit=${DEVICE_LIMIT}`)).json();
    setPill($("connection"), "ok", "Connected");
    renderDevices();
    const cut = state.devices.length >= DEVICE_LIMIT ? ` · the first ${DEVICE_LIMIT} devices are shown` : "";
    $("devices-updated").textContent = `Updated ${new Date().toLocaleTimeString()}${cut}`;
  } catch (e) {
    if (e instanceof Unauthorized) return signOut("Your token is no longer accepted; sign in again.");
    setPill($("connection"), "error", "Registry unreachable");
  }
  state.timer = setTimeout(refreshDevices, DEVICES_EVERY_MS);
}

// One table row per device, made once and updated in place (a row under the pointer is never replaced).
function deviceRow(device) {
  let row = rowsById.get(device.id);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = device.id;
    row.tabIndex = 0;
    row.innerHTML = '<td><div class="device-id"></div><div class="device-name muted"></div></td>'
      + '<td><span class="badge"></span></td><td class="last-seen"></td>';
    row.querySelector(".device-id").textContent = device.id;
    row.addEventListener("click", () => selectDevice(row.dataset.id));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") selectDevice(row.dataset.id); });
    rowsById.set(device.id, row);
  }
  row.querySelector(".device-name").textContent = device.name || "—";
  const badge = row.querySelector(".badge");
  badge.className = `badge ${device.status === "active" ? "badge-ok" : "badge-off"}`;
  badge.textContent = device.status;
  const seen = row.querySelector(".last-seen");
  seen.textContent = ago(device.last_seen);
  seen.title = device.last_seen ? new Date(device.last_seen).toLocaleString() : "no reading stored yet";
  row.classList.toggle("selected", Boolean(state.selected && state.selected.id === device.id));
  return row;
}

function renderDevices() {
  const all = state.devices;
  const recent = all.filter((d) => d.last_seen && Date.now() - Date.parse(d.last_seen) < 300000).length;
  $("count-all").textContent = all.length >= DEVICE_LIMIT ? `${DEVICE_LIMIT}+` : all.length;
  $("count-active").textContent = all.filter((d) => d.status === "active").length;
  $("count-recent").textContent = recent;
  $("count-decommissioned").textContent = all.filter((d) => d.status !== "active").length;

  const needle = $("filter").value.trim().toLowerCase();
  const shown = all
    .filter((d) => !needle || d.id.includes(needle) || (d.name || "").toLowerCase().includes(needle))
    .sort((a, b) => (b.last_seen || "").localeCompare(a.last_seen || "") || a.id.localeCompare(b.id));
  const body = document.querySelector("#device-table tbody");
  const wanted = shown.map(deviceRow);
  const keep = new Set(wanted);
  for (const row of [...body.children]) if (!keep.has(row)) row.remove();
  wanted.forEach((row, i) => { if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null); });
  $("no-devices").hidden = all.length > 0;
  if (state.selected) {
    const fresh = all.find((d) => d.id === state.selected.id);
    if (fresh) describeDevice(fresh);
  }
}

// ---- one device: history, then live readings --------------------------------------------------

function describeDevice(device) {
  $("detail-title").textContent = device.id;
  const parts = [device.name || "unnamed", device.status, `last seen ${ago(device.last_seen)}`];
  $("detail-sub").textContent = parts.join(" · ");
}

async function selectDevice(deviceId) {
  const device = state.devices.find((d) => d.id === deviceId);
  if (!device || (state.selected && state.selected.id === device.id)) return;
  stopStream();
  state.selected = device;
  state.readings = [];
  describeDevice(device);
  renderDevices();
  $("latest").hidden = false;
  $("metric-tabs").hidden = false;
  $("stream-state").hidden = false;
  setPill($("stream-state"), "idle", "Loading");
  $("chart-empty").textContent = "No readings yet.";
  draw();
  try {
    const history = await (await api(`/devices/${encodeURIComponent(device.id)}/readings?limit=${MAX_POINTS}`)).json();
    if (!state.selected || state.selected.id !== device.id) return;
    history.reverse().forEach((r) => addReading({ ...r, ts: Date.parse(r.ts) / 1000 }, false));
    draw();
  } catch (e) {
    if (e instanceof Unauthorized) return signOut("Your token is no longer accepted; sign in again.");
  }
  const after = state.readings.length ? state.readings[state.readings.length - 1].seq : null;
  streamReadings(device.id, after);
}

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
}

function addReading(reading, redraw = true) {
  const last = state.readings[state.readings.length - 1];
  if (last && reading.seq <= last.seq) return;
  state.readings.push(reading);
  if (state.readings.length > MAX_POINTS) state.readings.shift();
  if (redraw) draw();
}

// Server-sent events over fetch (EventSource cannot send the Authorization header); reconnects from the last seq.
async function streamReadings(deviceId, after) {
  const controller = new AbortController();
  state.stream = controller;
  let delay = 500;
  while (!controller.signal.aborted) {
    const query = after === null ? "" : `?after=${after}`;
    try {
      const response = await api(`/devices/${encodeURIComponent(deviceId)}/readings/stream${query}`,
        { signal: controller.signal });
      setPill($("stream-state"), "ok", "Live");
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event.type === "reading") {
            const reading = JSON.parse(event.data);
            after = reading.seq;
            addReading(reading);
          }
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
      if (e instanceof Unauthorized) return signOut("Your token is no longer accepted; sign in again.");
    }
    if (controller.signal.aborted) return;
    setPill($("stream-state"), "error", "Reconnecting");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

function parseEvent(block) {
  const event = { type: "message", data: "" };
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.type = value;
    if (field === "data") event.data += value;
  }
  return event;
}

// ---- chart ------------------------------------------------------------------------------------

function format(value, metric) {
  if (value === null || value === undefined) return "–";
  const m = METRICS[metric];
  return `${Number(value).toFixed(m.digits)}${m.unit}`;
}

function draw() {
  const readings = state.readings;
  const last = readings[readings.length - 1];
  for (const metric of Object.keys(METRICS)) $(`latest-${metric}`).textContent = format(last && last[metric], metric);
  $("reading-count").textContent = readings.length;
  $("chart-box").dataset.lastSeq = last ? String(last.seq) : "";
  $("last-reading").textContent = last
    ? `Last reading seq ${last.seq}, taken ${new Date(last.ts * 1000).toLocaleTimeString()}`
    : "";
  const points = readings.filter((r) => r[state.metric] !== null && r[state.metric] !== undefined)
    .map((r) => ({ t: r.ts, v: Number(r[state.metric]) }));
  $("chart-empty").hidden = points.length > 0;
  Chart.draw($("chart"), points, METRICS[state.metric].unit);
}

function chooseMetric(button) {
  state.metric = button.dataset.metric;
  for (const tab of document.querySelectorAll("#metric-tabs .tab")) {
    tab.setAttribute("aria-selected", String(tab === button));
  }
  draw();
}

// ---- start ------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("filter").addEventListener("input", renderDevices);
  for (const tab of document.querySelectorAll("#metric-tabs .tab")) tab.addEventListener("click", () => chooseMetric(tab));
  window.addEventListener("resize", draw);
  if (token()) showDashboard(); else $("token").focus();
});
