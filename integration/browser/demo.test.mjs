// Browser test of cloakroom-demo: two devices (two Chromium instances, each
// with a fresh profile) log in as the same user, both appear in /sessions,
// one logs out everywhere, the other is logged out on its next request.
// Cookie attributes are read from the browser's own cookie jar.
//
// Run through ./run.sh, which starts cloakroomd and the demo and sets
// DEMO_URL. CHROMIUM overrides the browser binary (default /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.DEMO_URL;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const devices = [];

// device starts a browser with a fresh user-data-dir: a separate device.
async function device(name) {
  const dir = mkdtempSync(join(tmpdir(), `cloakroom-${name}-`));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath,
    headless: true,
    userAgent: `CloakroomBrowserTest/${name}`,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const d = { name, dir, context, page: context.pages()[0] ?? await context.newPage() };
  devices.push(d);
  return d;
}

async function status(d) {
  await d.page.goto(base + '/');
  return (await d.page.locator('#status').innerText()).trim();
}

async function login(d, user, { remember = false } = {}) {
  await d.page.goto(base + '/');
  await d.page.fill('#login-user', user);
  if (remember) await d.page.check('input[name=remember]');
  await Promise.all([d.page.waitForURL(base + '/'), d.page.click('#login')]);
  assert.equal(await d.page.locator('#user').innerText(), user);
}

async function sessions(d) {
  const resp = await d.page.goto(base + '/sessions');
  return { status: resp.status(), list: await resp.json() };
}

async function sessionCookie(d) {
  const all = await d.context.cookies(base);
  return all.find((c) => c.name === 'session');
}

before(() => assert.ok(base, 'DEMO_URL must be set (use run.sh)'));

after(async () => {
  for (const d of devices) {
    await d.context.close();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('log out everywhere ends the session on every device', { timeout: 120_000 }, async () => {
  const laptop = await device('laptop');
  const phone = await device('phone');

  assert.equal(await status(laptop), 'Not logged in.');
  await login(laptop, 'alice');
  await login(phone, 'alice');

  for (const d of [laptop, phone]) {
    const { status: code, list } = await sessions(d);
    assert.equal(code, 200);
    assert.equal(list.length, 2, `${d.name} sees both sessions`);
    const current = list.filter((s) => s.current);
    assert.equal(current.length, 1, `${d.name}: exactly one session is marked current`);
    assert.equal(current[0].user_agent, `CloakroomBrowserTest/${d.name}`);
    const cookie = await sessionCookie(d);
    for (const s of list) assert.ok(!JSON.stringify(s).includes(cookie.value.split('.').pop()), 'the list never shows an ID');
  }

  const laptopCookie = await sessionCookie(laptop);
  const phoneCookie = await sessionCookie(phone);
  assert.notEqual(laptopCookie.value, phoneCookie.value);

  await laptop.page.goto(base + '/');
  await Promise.all([laptop.page.waitForURL(base + '/'), laptop.page.click('#logout-everywhere')]);
  assert.equal((await laptop.page.locator('#status').innerText()).trim(), 'Not logged in.');

  // The phone still holds its cookie; its next request finds no session.
  assert.equal((await sessionCookie(phone)).value, phoneCookie.value);
  assert.equal(await status(phone), 'Not logged in.');
  assert.equal((await sessions(phone)).status, 401);
  assert.notEqual((await sessionCookie(phone))?.value, phoneCookie.value, 'the dead cookie was replaced');
});

test('the session cookie has safe attributes in the browser jar', { timeout: 60_000 }, async () => {
  const d = await device('jar');
  await login(d, 'bob');
  const c = await sessionCookie(d);
  assert.ok(c, 'a cookie named session exists');
  assert.equal(c.httpOnly, true, 'HttpOnly');
  assert.equal(c.sameSite, 'Lax', 'SameSite=Lax');
  assert.equal(c.path, '/', 'Path=/');
  assert.equal(c.domain, new URL(base).hostname, 'host-only: no Domain attribute');
  assert.equal(c.expires, -1, 'a browser-session cookie without remember-me');
  assert.equal(c.secure, false, 'not Secure over plain HTTP (the demo runs with --insecure-cookies)');
  assert.equal(await d.page.evaluate(() => document.cookie), '', 'invisible to scripts');
});

test('remember me makes the cookie persistent', { timeout: 60_000 }, async () => {
  const d = await device('remember');
  await login(d, 'carol', { remember: true });
  const c = await sessionCookie(d);
  const days = (c.expires - Date.now() / 1000) / 86400;
  assert.ok(days > 29 && days <= 30, `expires in ${days} days; want about 30`);
});
