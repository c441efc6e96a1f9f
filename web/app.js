// The page: plain JavaScript over the wasm front (pkg/, built by web/build.sh).
import init, { Session, examples, methods } from "./pkg/hydra_web.js";

const $ = (id) => document.getElementById(id);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let session = null;
let history = [];

function setStatus(text, state) {
  $("status").textContent = text;
  $("status").className = state === "error" ? "error" : "";
  document.body.dataset.state = state;
}

async function adapterName() {
  const a = await navigator.gpu.requestAdapter();
  const i = (a && a.info) || {};
  return [i.vendor, i.architecture, i.device, i.description].filter((x) => x).join(" ") || "WebGPU adapter";
}

async function webgpuMissing() {
  if (!("gpu" in navigator)) return "this browser has no WebGPU (navigator.gpu is missing)";
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return "WebGPU is present but offers no adapter (the GPU may be blocked or disabled)";
  } catch (e) {
    return `WebGPU failed to give an adapter: ${e.message}`;
  }
  return null;
}

// A line chart of series [{name, values}] over epochs; `range` fixes the y axis, `log` uses
// a log scale.
function drawChart(canvas, series, { range = null, log = false } = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 52, R = 10, T = 10, B = 26;
  ctx.clearRect(0, 0, W, H);
  const f = (v) => (log ? Math.log10(Math.max(v, 1e-12)) : v);
  const all = series.flatMap((s) => s.values.filter(Number.isFinite).map(f));
  if (all.length === 0) return;
  let [lo, hi] = range ? range.map(f) : [Math.min(...all), Math.max(...all)];
  if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
  const n = Math.max(...series.map((s) => s.values.length));
  const x = (i) => L + (n <= 1 ? 0 : (i / (n - 1)) * (W - L - R));
  const y = (v) => T + (1 - (f(v) - lo) / (hi - lo)) * (H - T - B);
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#333"; ctx.font = "11px system-ui"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(L, T); ctx.lineTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
  const label = (v) => (log ? (10 ** v).toPrecision(2) : v.toPrecision(2));
  ctx.textAlign = "right";
  ctx.fillText(label(hi), L - 4, T + 8); ctx.fillText(label(lo), L - 4, H - B);
  if (range && lo < 0 && hi > 0) {
    ctx.strokeStyle = "#ccc"; ctx.beginPath(); ctx.moveTo(L, y(0)); ctx.lineTo(W - R, y(0)); ctx.stroke();
    ctx.fillText("0", L - 4, y(0) + 4);
  }
  ctx.textAlign = "center"; ctx.fillText(`epoch ${n}`, W - R - 24, H - 8);
  series.forEach((s, k) => {
    ctx.strokeStyle = COLORS[k % COLORS.length]; ctx.lineWidth = 2; ctx.beginPath();
    let started = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      if (started) ctx.lineTo(x(i), y(v)); else { ctx.moveTo(x(i), y(v)); started = true; }
    });
    ctx.stroke();
    ctx.fillStyle = COLORS[k % COLORS.length]; ctx.textAlign = "left";
    ctx.fillText(s.name, L + 8, T + 12 + 13 * k);
  });
}

function drawAll(tasks) {
  const per = (key) => tasks.map((t) => ({ name: t, values: history.map((r) => r[key][t]) }));
  drawChart($("chart-loss"), per("train_loss"), { log: true });
  drawChart($("chart-weights"), per("weights"));
  const pairs = [];
  for (let a = 0; a < tasks.length; a++)
    for (let b = a + 1; b < tasks.length; b++)
      pairs.push({
        name: `${tasks[a]} · ${tasks[b]}`,
        values: history.map((r) => (r.grad_cosines[tasks[a]] || {})[tasks[b]] ?? NaN),
      });
  drawChart($("chart-cosines"), pairs, { range: [-1, 1] });
}

// The final table: each task's metrics beside its single-task baseline, Δ% and Δm%.
function showResults(doc, summary) {
  const split = summary.reported_split;
  $("split").textContent = split;
  const rows = [];
  const fmt = (v) => (v === undefined || v === null ? "–" : Number(v).toPrecision(4));
  for (const [task, per] of Object.entries(doc.tasks)) {
    const mtl = per[split] || {};
    const stl = (per.single_task || {})[split] || {};
    for (const metric of Object.keys(mtl)) {
      rows.push(`<tr><td>${task}</td><td>${metric}</td><td>${fmt(mtl[metric])}</td><td>${fmt(stl[metric])}</td><td></td></tr>`);
    }
    if (per.delta !== undefined) {
      const d = per.delta;
      const cls = d === null ? "" : d >= 0 ? "better" : "worse";
      rows.push(`<tr><td>${task}</td><td>Δ%</td><td></td><td></td><td class="${cls}">${d === null ? "undefined" : (d >= 0 ? "+" : "") + d.toFixed(2)}</td></tr>`);
    }
  }
  if (doc.delta_m !== null && doc.delta_m !== undefined) {
    const cls = doc.delta_m >= 0 ? "better" : "worse";
    rows.push(`<tr><th>all tasks</th><th>Δm%</th><td></td><td></td><td class="${cls}" id="delta-m">${(doc.delta_m >= 0 ? "+" : "") + doc.delta_m.toFixed(2)}</td></tr>`);
  }
  $("table").innerHTML = `<tr><th>task</th><th>metric</th><th>multi-task</th><th>single-task</th><th>Δ</th></tr>${rows.join("")}`;
  $("timing").textContent = `${doc.steps} multi-task steps, best epoch ${doc.best_epoch}, ${doc.seconds.toFixed(1)} s in all on ${summary.adapter} (WebGPU).`;
  $("metrics-json").textContent = JSON.stringify(doc, null, 2);
  $("config-used").textContent = session.config();
  $("results").hidden = false;
}

function overrides() {
  const o = {
    "model.arch": $("arch").value,
    "weighting.method": $("method").value,
    "train.epochs": Number($("epochs").value),
    "train.seed": Number($("seed").value),
  };
  if ($("csv").files.length > 0) {
    o["data.path"] = $("csv").files[0].name;
    o["data.dataset"] = null;
  }
  return o;
}

async function train() {
  $("train").disabled = true; $("download").disabled = true; $("results").hidden = true;
  history = [];
  try {
    setStatus("Reading the data and opening the GPU…", "opening");
    const file = $("csv").files[0];
    const bytes = file ? new Uint8Array(await file.arrayBuffer()) : undefined;
    session = await Session.open($("config").value, JSON.stringify(overrides()), file ? file.name : undefined, bytes);
    const summary = JSON.parse(session.summary());
    // wgpu has no adapter name on the web; the browser's adapter info says what it is.
    if (!summary.adapter) summary.adapter = await adapterName();
    const what = `${summary.tasks.join(", ")} · ${summary.arch} · ${summary.method} on ${summary.adapter}`;
    setStatus(`Training ${what}…`, "training");
    const doc = JSON.parse(await session.train($("baselines").checked, (line) => {
      const r = JSON.parse(line);
      history.push(r);
      window.hydraEpochs = history.length;
      drawAll(summary.tasks);
      setStatus(`Training ${what}: epoch ${r.epoch} of at most ${summary.epochs}`, "training");
    }));
    window.hydraResult = doc;
    showResults(doc, summary);
    setStatus(`Done: ${what}.`, "done");
    $("download").disabled = false;
  } catch (e) {
    setStatus(`Error: ${e.message ?? e}`, "error");
  } finally {
    $("train").disabled = false;
  }
}

async function download() {
  const bytes = await session.checkpoint();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  a.download = "hydra-model.safetensors";
  a.click();
  URL.revokeObjectURL(a.href);
}

function pick(example, configs) {
  const text = configs[example];
  $("config").value = text;
  const key = (k, d) => (text.match(new RegExp(`^\\s*${k}\\s*=\\s*"([^"]+)"`, "m")) || [null, d])[1];
  $("arch").value = key("arch", "hps");
  $("method").value = key("method", "ew");
}

async function main() {
  const missing = await webgpuMissing();
  if (missing) {
    $("no-webgpu").hidden = false;
    $("no-webgpu").textContent = `Hydra needs WebGPU, and ${missing}. It runs in Chrome or Edge 113+, Safari 26 and Firefox 141+ on Windows; on Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu.`;
    setStatus("No WebGPU here.", "no-webgpu");
    return;
  }
  await init();
  const configs = JSON.parse(examples());
  for (const name of Object.keys(configs)) $("example").add(new Option(name));
  for (const [name, computed] of JSON.parse(methods())) {
    const o = new Option(name, name);
    o.title = computed;
    $("method").add(o);
  }
  pick("energy", configs);
  $("example").onchange = () => pick($("example").value, configs);
  $("train").onclick = train;
  $("download").onclick = download;
  $("train").disabled = false;
  setStatus("Ready: pick an example or a CSV, and train.", "ready");
  const params = new URLSearchParams(location.search);
  if (params.has("example") && configs[params.get("example")]) {
    $("example").value = params.get("example");
    pick(params.get("example"), configs);
  }
  if (params.has("arch")) $("arch").value = params.get("arch");
  if (params.has("method")) $("method").value = params.get("method");
  if (params.has("epochs")) $("epochs").value = params.get("epochs");
  if (params.has("seed")) $("seed").value = params.get("seed");
  if (params.has("baselines")) $("baselines").checked = params.get("baselines") !== "0";
  if (params.has("autostart")) train();
}

main().catch((e) => setStatus(`Error: ${e.message ?? e}`, "error"));
