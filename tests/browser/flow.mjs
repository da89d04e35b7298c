// A real browser through the first-run flow of the README: `portcullis serve all --dev` on
// ephemeral loopback ports, `portcullis clients create`, `portcullis token user`, then headless
// Chromium (Debian's, driven by playwright-core) types a username on the demo login page,
// allows the consent, and lands on the callback; `token user` must then print the tokens.
//
// Usage: node flow.mjs [path/to/portcullis]   (default: ../../target/release/portcullis)
// Stops by itself: every wait is bounded and a watchdog ends everything after 120 s.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(process.argv[2] ?? path.join(here, '../../target/release/portcullis'));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CLIENT_ID = 'browser-demo';
const CLIENT_SECRET = 'browser-demo-secret';
const USER = 'alice';

const children = [];
let browser;

function fail(message) {
  console.error(`browser test FAILED: ${message}`);
  cleanup();
  console.log('browser: 0 passed, 1 failed');
  process.exit(1);
}

function cleanup() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  if (browser) browser.close().catch(() => {});
}

const watchdog = setTimeout(() => fail('timed out after 120 s'), 120_000);

function check(condition, message) {
  if (!condition) fail(message);
}

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts the binary; collects stdout lines and stderr text. */
function run(args, env = {}) {
  const child = spawn(BIN, args, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const result = { child, lines: [], stderr: '', waiters: [] };
  createInterface({ input: child.stdout }).on('line', (line) => {
    result.lines.push(line);
    for (const w of result.waiters.splice(0)) w();
  });
  child.stderr.on('data', (d) => { result.stderr += d; });
  result.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return result;
}

async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until a printed line matches. */
async function lineMatching(proc, regex, ms, what) {
  const found = () => proc.lines.find((l) => regex.test(l));
  return withTimeout((async () => {
    while (!found()) {
      if (proc.child.exitCode !== null) {
        throw new Error(`${what}: exited with ${proc.child.exitCode}: ${proc.stderr}`);
      }
      await new Promise((r) => { proc.waiters.push(r); setTimeout(r, 200); });
    }
    return found();
  })(), ms, what);
}

async function waitReady(url) {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(`${url} never became ready`);
}

async function main() {
  const [publicPort, adminPort, callbackPort] = [await freePort(), await freePort(), await freePort()];
  check(new Set([publicPort, adminPort, callbackPort]).size === 3, 'ports collided; run again');
  const publicUrl = `http://127.0.0.1:${publicPort}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;

  // 1. The server, exactly as the quick start runs it (ports and issuer moved off the defaults).
  const server = run(['serve', 'all', '--dev'], {
    SERVE_PUBLIC_HOST: '127.0.0.1',
    SERVE_ADMIN_HOST: '127.0.0.1',
    SERVE_PUBLIC_PORT: String(publicPort),
    SERVE_ADMIN_PORT: String(adminPort),
    URLS_SELF_ISSUER: `${publicUrl}/`,
  });
  await waitReady(`${adminUrl}/health/ready`);

  // 2. The client.
  const create = run([
    'clients', 'create', '--endpoint', adminUrl,
    '--id', CLIENT_ID, '--secret', CLIENT_SECRET,
    '--grant-types', 'authorization_code,refresh_token',
    '--response-types', 'code',
    '--scope', 'openid,offline',
    '--callbacks', `http://127.0.0.1:${callbackPort}/callback`,
  ]);
  const created = await withTimeout(create.exited, 20_000, 'clients create');
  check(created === 0, `clients create exited ${created}: ${create.stderr}`);

  // 3. The example client, waiting for the browser.
  const user = run([
    'token', 'user', '--endpoint', publicUrl,
    '--client-id', CLIENT_ID, '--client-secret', CLIENT_SECRET,
    '--port', String(callbackPort),
  ]);
  const urlLine = await lineMatching(user, /^\thttp:\/\/.*\/oauth2\/auth\?/, 20_000, 'token user');
  const authUrl = urlLine.trim();

  // 4. Chromium clicks through.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in CI cannot use Chromium's sandbox; the pages are our own, on loopback.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));

  await page.goto(authUrl);
  await page.waitForURL(/\/oauth2\/fallbacks\/login\?login_challenge=/);
  check(await page.getByText('Development aid.').isVisible(), 'no development label on the login page');
  // The stylesheet is allowed by its CSP hash: the banner is styled.
  const banner = await page.locator('.dev').evaluate((e) => getComputedStyle(e).backgroundColor);
  check(banner === 'rgb(255, 243, 205)', `the stylesheet was blocked (banner background ${banner})`);
  await page.getByLabel('Username').fill(USER);
  await page.getByRole('button', { name: 'Log in' }).click();

  await page.waitForURL(/\/oauth2\/fallbacks\/consent\?consent_challenge=/);
  const consentText = await page.locator('main').innerText();
  check(consentText.includes(CLIENT_ID) && consentText.includes(USER), `consent page: ${consentText}`);
  check(await page.getByRole('checkbox', { name: 'openid' }).isChecked(), 'openid not offered');
  await page.getByRole('button', { name: 'Allow' }).click();

  await page.waitForURL(new RegExp(`^http://127\\.0\\.0\\.1:${callbackPort}/callback\\?`));
  await page.getByText('Tokens received').waitFor();
  const shown = await page.locator('body').innerText();
  check(problems.length === 0, `browser console errors: ${problems.join(' | ')}`);

  // 5. token user exits 0 and prints the tokens it showed.
  const code = await withTimeout(user.exited, 20_000, 'token user exit');
  check(code === 0, `token user exited ${code}: ${user.stderr}`);
  const out = user.lines.join('\n');
  const match = out.match(/Access Token:\n\t(\S+)\nRefresh Token:\n\t(\S+)\nExpires in:\n\t(.+)\nID Token:\n\t(\S+)/);
  check(match, `no tokens printed:\n${out}`);
  const [, access, refresh, , idToken] = match;
  check(shown.includes(access), 'the browser page does not show the printed access token');
  check(refresh.length > 0 && idToken.split('.').length === 3, 'refresh or ID token missing');

  const intro = await fetch(`${adminUrl}/oauth2/introspect`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: access }),
  }).then((r) => r.json());
  check(intro.active === true && intro.sub === USER && intro.client_id === CLIENT_ID,
    `introspection: ${JSON.stringify(intro)}`);

  await browser.close();
  browser = undefined;
  server.child.kill('SIGTERM');
  const stopped = await withTimeout(server.exited, 15_000, 'server shutdown');
  check(stopped === 0, `server exited ${stopped}: ${server.stderr}`);
  clearTimeout(watchdog);
  console.log(`browser test passed: ${USER} logged in through Chromium; token user printed tokens`);
  console.log('browser: 1 passed, 0 failed');
}

main().catch((e) => fail(e.stack ?? String(e)));
