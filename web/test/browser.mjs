// The page in a real browser: headless Chromium with WebGPU (on a machine without a GPU,
// its SwiftShader Vulkan) trains the energy example for a few epochs, once with a loss
// weighting computed on the GPU (uw) and once with a gradient method (pcgrad: a readback
// every step). The metrics it reports must match `hydra train` on the same config and seed
// within TOLERANCE; the checkpoint it downloads must be read by `hydra eval` natively and
// give the page's test metrics; it leaves a screenshot of each run. A browser without
// WebGPU must get the page's message. Any failure exits 1.
//
//   HYDRA_BIN   the native command (default target/release/hydra)
//   CHROMIUM    the browser (default /usr/bin/chromium)
//   OUT         where screenshots, configs and documents go (default target/web)
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFile, mkdir, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const webDir = path.resolve(here, "..");
const bin = process.env.HYDRA_BIN || path.join(root, "target/release/hydra");
const out = process.env.OUT || path.join(root, "target/web");
const EPOCHS = 5;
// Both runs are f32 on a CPU rasterizer (SwiftShader here, lavapipe natively) with the same
// kernels, data, order and seed; only the drivers' rounding differs (fused multiply-adds,
// reduction order inside a workgroup). Measured: see README ("In a browser").
const TOLERANCE = { rel: 1e-3, abs: 1e-4 };

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm" };
function serve() {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    const file = path.join(webDir, path.normalize(url.pathname === "/" ? "/index.html" : url.pathname));
    if (!file.startsWith(webDir)) { res.writeHead(403).end(); return; }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--enable-unsafe-webgpu"],
  });
}

// Every number of the native document must be matched by the page's, within TOLERANCE
// (the run's seconds excepted); returns the largest relative difference seen.
function compare(page, native, where = "") {
  let worst = 0;
  for (const [k, v] of Object.entries(native)) {
    if (k === "seconds") continue;
    const p = page[k];
    const at = where ? `${where}.${k}` : k;
    if (typeof v === "number") {
      if (typeof p !== "number") throw new Error(`${at}: native ${v}, page ${p}`);
      const d = Math.abs(p - v);
      if (d > TOLERANCE.abs + TOLERANCE.rel * Math.abs(v)) throw new Error(`${at}: native ${v}, page ${p} (off by ${d})`);
      worst = Math.max(worst, d / Math.max(Math.abs(v), 1e-12));
    } else if (v && typeof v === "object") {
      if (!p || typeof p !== "object") throw new Error(`${at}: missing on the page`);
      worst = Math.max(worst, compare(p, v, at));
    } else if (v !== p) {
      throw new Error(`${at}: native ${v}, page ${p}`);
    }
  }
  return worst;
}

// Trains `method` on the page; with `csv`, on that file picked in the page's file input
// (the config then reads it by name) instead of the built-in data.
async function trainOnPage(browser, base, method, csv) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const query = `example=energy&method=${method}&epochs=${EPOCHS}`;
  if (csv) {
    await page.goto(`${base}/index.html?${query}`);
    await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 60000 });
    await page.setInputFiles("#csv", csv);
    await page.click("#train");
  } else {
    await page.goto(`${base}/index.html?${query}&autostart=1`);
  }
  await page.waitForFunction(() => ["done", "error", "no-webgpu"].includes(document.body.dataset.state), null, { timeout: 600000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  const status = await page.textContent("#status");
  if (state === "no-webgpu") throw new Error(`the browser offers no WebGPU (${await page.textContent("#no-webgpu")}); Chromium needs --enable-unsafe-webgpu`);
  if (state !== "done") throw new Error(`the page failed: ${status} ${errors.join("; ")}`);
  const doc = JSON.parse(await page.textContent("#metrics-json"));
  const config = await page.textContent("#config-used");
  const epochs = await page.evaluate(() => window.hydraEpochs);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  const name = csv ? `${method}-csv` : method;
  const checkpoint = path.join(out, `${name}-page.safetensors`);
  await download.saveAs(checkpoint);
  await page.screenshot({ path: path.join(out, `page-${name}.png`), fullPage: true });
  await page.close();
  return { doc, config, epochs, checkpoint };
}

function trainNatively(config, method) {
  const cfgPath = path.join(out, `${method}.toml`);
  const docPath = path.join(out, `${method}-native.json`);
  return writeFile(cfgPath, config).then(async () => {
    execFileSync(bin, ["train", "--config", cfgPath, "--baselines", "--metrics-json", docPath], { stdio: ["ignore", "ignore", "pipe"] });
    return JSON.parse(await readFile(docPath, "utf8"));
  });
}

// `hydra eval` reads the page's checkpoint natively: its test metrics are the page's.
function evalNatively(method, checkpoint, doc) {
  const cfgPath = path.join(out, `${method}.toml`);
  const json = execFileSync(bin, ["eval", "--config", cfgPath, "--checkpoint", checkpoint, "--split", "test", "--json"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const native = JSON.parse(json.toString());
  let worst = 0;
  for (const [task, per] of Object.entries(native.tasks)) {
    worst = Math.max(worst, compare(doc.tasks[task].test, per.test, `eval.${task}.test`));
  }
  return worst;
}

// Every architecture (with equal weights) and every weighting method (on hard sharing), as
// the page's menus list them, plus the recommender example (embeddings of categorical columns),
// train one epoch on the page: each kernel they use compiles and passes WebGPU's validation,
// which is stricter than native wgpu's (uniform control flow at barriers, no writable aliasing).
async function everyKernelOnWebGpu(browser, base) {
  const page = await browser.newPage();
  await page.goto(`${base}/index.html`);
  await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 60000 });
  const options = (id) => page.$$eval(`#${id} option`, (os) => os.map((o) => o.value));
  const runs = [
    ...(await options("arch")).map((a) => ["energy", a, "ew"]),
    ...(await options("method")).map((m) => ["energy", "hps", m]),
    ["recsys", "mmoe", "ew"],
  ];
  await page.close();
  for (const [example, arch, method] of runs) {
    const p = await browser.newPage();
    await p.goto(`${base}/index.html?example=${example}&arch=${arch}&method=${method}&epochs=1&baselines=0&autostart=1`);
    await p.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 300000 });
    const state = await p.evaluate(() => document.body.dataset.state);
    const status = await p.textContent("#status");
    await p.close();
    if (state !== "done") throw new Error(`${example}, ${arch}, ${method} on the page: ${status}`);
  }
  return runs.length;
}

async function noWebGpuMessage(browser, base) {
  const page = await browser.newPage();
  await page.addInitScript(() => { delete Navigator.prototype.gpu; });
  await page.goto(`${base}/index.html`);
  await page.waitForFunction(() => document.body.dataset.state === "no-webgpu", null, { timeout: 30000 });
  const text = await page.textContent("#no-webgpu");
  await page.close();
  if (!/needs WebGPU/.test(text)) throw new Error(`no clear message without WebGPU: ${text}`);
  return text;
}

async function main() {
  await mkdir(out, { recursive: true });
  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch();
  try {
    // The picked CSV is read by name next to the config the native run reads.
    const csv = path.join(out, "energy_efficiency.csv");
    await writeFile(csv, await readFile(path.join(root, "data/energy_efficiency.csv")));
    for (const [method, file] of [["uw"], ["pcgrad"], ["ew", csv]]) {
      const t0 = Date.now();
      const run = await trainOnPage(browser, base, method, file);
      const { doc, epochs, checkpoint } = run;
      const name = file ? `${method}-csv` : method;
      if (file && !run.config.includes('path = "energy_efficiency.csv"')) throw new Error(`the picked file is not the config's data: ${run.config}`);
      const config = run.config;
      if (epochs !== EPOCHS) throw new Error(`${method}: the page streamed ${epochs} epochs, not ${EPOCHS}`);
      await writeFile(path.join(out, `${name}-page.json`), JSON.stringify(doc, null, 2));
      const native = await trainNatively(config, name);
      const worst = compare(doc, native);
      const evalWorst = evalNatively(name, checkpoint, doc);
      console.log(
        `web test: ${name}: ${EPOCHS} epochs on the page in ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
          `every metric matches the native run (largest relative difference ${worst.toExponential(2)}); ` +
          `hydra eval reads the page's checkpoint (${evalWorst.toExponential(2)})`,
      );
    }
    console.log(`web test: ${await everyKernelOnWebGpu(browser, base)} architectures, methods and examples train an epoch on WebGPU`);
    console.log(`web test: without WebGPU the page says: ${(await noWebGpuMessage(browser, base)).slice(0, 80)}…`);
    console.log(`web test: screenshots in ${out}`);
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((e) => {
  console.error(`web test failed: ${e.message}`);
  process.exit(1);
});
