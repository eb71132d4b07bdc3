// Drives `kars serve`'s instance page in Debian's Chromium (playwright-core, no browser
// download) for tests/serve_browser.rs. Arguments: the server's base URL, the instance id, the
// tokens of a QA person, a product manager and a developer, and the folder for screenshots.
// Prints one JSON object with what it saw; the Rust test asserts on it.
import { chromium } from "playwright-core";

const [base, id, qaToken, pmToken, devToken, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.KARS_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
  ],
});
const seen = { console_errors: [] };
const page_url = `${base}/ui/instances/${id}`;

async function signIn(token, who) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 1400 } });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") seen.console_errors.push(`${who}: ${m.text()}`); });
  page.on("pageerror", (e) => seen.console_errors.push(`${who}: ${e.message}`));
  await page.goto(`${base}/`);
  await page.fill("input[name=token]", token);
  await Promise.all([page.waitForURL(`${base}/`), page.click("#signin")]);
  seen[`${who}_cookie`] = (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
  await page.goto(page_url);
  await page.waitForSelector("#graph svg", { timeout: 20000 });
  return page;
}

const status = async (page) =>
  (await page.request.get(`${base}/api/instances/${id}`, { headers: { Authorization: `Bearer ${qaToken}` } })).json();
const buttons = (page) =>
  page.$$eval("#actions button", (bs) => bs.map((b) => `${b.dataset.node}:${b.dataset.outcome}`));

try {
  // A product manager watches the page; QA signs in and sees the graph with the current node.
  const pm = await signIn(pmToken, "pm");
  const qa = await signIn(qaToken, "qa");
  seen.qa_node = await qa.textContent("#node");
  seen.qa_buttons = await buttons(qa);
  seen.current_in_svg = await qa.$$eval("#graph svg .kars_current", (nodes) => nodes.length);
  seen.pm_drawn_before = await pm.evaluate(() => document.body.dataset.drawn);
  await qa.screenshot({ path: `${shots}/qa-before.png`, fullPage: true });
  await qa.screenshot({ path: `${shots}/qa-viewport.png` });

  // Forged posts with QA's own session: no CSRF token, a wrong one. Nothing may be written.
  seen.version_before_forgery = (await status(qa)).version;
  const bare = await qa.request.post(`${base}/ui/instances/${id}/act`, { form: { node: seen.qa_node } });
  const wrong = await qa.request.post(`${base}/ui/instances/${id}/act`, {
    form: { node: seen.qa_node, csrf: "0".repeat(64) },
  });
  seen.forged_statuses = [bare.status(), wrong.status()];
  seen.version_after_forgery = (await status(qa)).version;

  // QA completes the node; the PM's page follows without a reload.
  await qa.click(`#actions button[data-node="${seen.qa_node}"]`);
  await qa.waitForFunction((n) => document.querySelector("#node")?.textContent !== n, seen.qa_node);
  seen.qa_node_after = await qa.textContent("#node");
  await pm.waitForFunction((n) => document.querySelector("#node")?.textContent !== n, seen.qa_node, { timeout: 10000 });
  seen.pm_node_after = await pm.textContent("#node");
  seen.pm_drawn_after = await pm.evaluate(() => document.body.dataset.drawn);
  await pm.screenshot({ path: `${shots}/pm-updated.png`, fullPage: true });

  // A developer sees who may act, and no button.
  const dev = await signIn(devToken, "dev");
  seen.dev_buttons = await buttons(dev);
  seen.dev_who = await dev.textContent("#who");
  await dev.screenshot({ path: `${shots}/developer.png`, fullPage: true });
} catch (e) {
  seen.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
