// What a first and a second visit cost, side by side for several builds of quick-chat
// (`scripts/bench first-load` starts them and sets QC_BENCH_TARGETS, e.g.
// "before=http://127.0.0.1:3101,after=http://127.0.0.1:3102"). Not a test: it prints a
// table for docs/BENCHMARKS.md.
//
// For each build, alternating, three rounds, each in fresh browser contexts (empty cache):
// - bytes received (headers and bodies as they came over the wire, from the DevTools
//   protocol's Network.loadingFinished) until the page is interactive and in all (what it
//   fetches by itself after that included), and requests that reached the server, for a first
//   visit to /login, a first visit to /chats signed in, and a second visit to /chats (a new
//   page of the same browser, its cache warm);
// - time to interactive on /chats, signed in, with the network throttled to 10 Mbit/s and
//   40 ms latency: from navigation start until the page is hydrated.
import { test, expect, type BrowserContext, type Page, type CDPSession } from '@playwright/test';

const PASSWORD = 'correct horse battery';

const targets = (process.env.QC_BENCH_TARGETS ?? '')
  .split(',')
  .filter(Boolean)
  .map((t) => {
    const [name, url] = t.split('=');
    return { name, url };
  });

/** Counts, from now on, the bytes every response of `page` brings (headers and body as they
 *  came over the wire) and the requests that reached the server (not answered from the
 *  browser's cache). */
async function counter(page: Page): Promise<{ bytes: () => number; requests: () => number }> {
  const cdp: CDPSession = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0;
  let requests = 0;
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
  });
  cdp.on('Network.responseReceived', (e) => {
    if (!e.response.fromDiskCache && !e.response.fromPrefetchCache && !e.response.fromServiceWorker) {
      requests += 1;
    }
  });
  return { bytes: () => bytes, requests: () => requests };
}

async function signedIn(context: BrowserContext, base: string, name: string) {
  const res = await context.request.post(`${base}/api/v1/user/login`, {
    data: { username: name, password: PASSWORD },
    headers: { origin: base },
  });
  expect(res.status()).toBe(200);
}

async function hydratedAt(page: Page) {
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 120_000 });
}

/** `interactive`: bytes received until the page was hydrated; `bytes`: in all, including
 *  what the page fetches afterwards on its own (the call screen's code, a few seconds after
 *  it is up). */
type Visit = { interactive: number; bytes: number; requests: number };
type Figures = { login: Visit; chats: Visit; again: Visit; tti: number };

/** Opens `url` in a new page of `context` and counts what it cost until the page is
 *  hydrated and the network quiet. */
async function visit(context: BrowserContext, url: string): Promise<Visit> {
  const page = await context.newPage();
  const count = await counter(page);
  await page.goto(url);
  await hydratedAt(page);
  const interactive = count.bytes();
  await page.waitForLoadState('networkidle');
  await page.waitForTimeout(4_000);
  await page.waitForLoadState('networkidle');
  const figures = { interactive, bytes: count.bytes(), requests: count.requests() };
  await page.close();
  return figures;
}

async function measure(browser: import('@playwright/test').Browser, base: string, name: string): Promise<Figures> {
  // A first visit to the login page, with an empty cache.
  const anonymous = await browser.newContext();
  const login = await visit(anonymous, `${base}/login`);
  await anonymous.close();
  // A first visit to the chats, signed in, with an empty cache; then a second visit: a new
  // page of the same browser, as when coming back later.
  const user = await browser.newContext();
  await signedIn(user, base, name);
  const chats = await visit(user, `${base}/chats`);
  const again = await visit(user, `${base}/chats`);
  await user.close();

  // Time to interactive, throttled, cold cache.
  const slow = await browser.newContext();
  await signedIn(slow, base, name);
  const slowPage = await slow.newPage();
  const cdp = await slow.newCDPSession(slowPage);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 40,
    downloadThroughput: 10_000_000 / 8,
    uploadThroughput: 10_000_000 / 8,
  });
  await slowPage.goto(`${base}/chats`, { waitUntil: 'commit' });
  await hydratedAt(slowPage);
  const tti = await slowPage.evaluate(() => performance.now());
  await slow.close();
  return { login, chats, again, tti };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

test('first and second visit, side by side', async ({ browser }) => {
  test.setTimeout(900_000);
  expect(targets.length, 'QC_BENCH_TARGETS names the builds').toBeGreaterThan(0);
  const name = `firstload_${Date.now().toString(36)}`;
  for (const t of targets) {
    const res = await browser.newContext().then((c) =>
      c.request.post(`${t.url}/api/v1/user/register`, {
        data: { username: name, nickname: 'First Load', password: PASSWORD },
        headers: { origin: t.url },
      }),
    );
    expect(res.status(), `register on ${t.name}`).toBe(200);
  }
  const results: Record<string, Figures[]> = {};
  for (let round = 0; round < 3; round++) {
    const order = round % 2 ? [...targets].reverse() : targets;
    for (const t of order) {
      (results[t.name] ??= []).push(await measure(browser, t.url, name));
    }
  }
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
  const cell = (r: Figures[], pick: (f: Figures) => Visit) =>
    `${kb(median(r.map((x) => pick(x).interactive)))} until interactive, ` +
    `${kb(median(r.map((x) => pick(x).bytes)))} in all (${median(r.map((x) => pick(x).requests))} requests)`;
  const lines = [
    `| build | first visit /login | first visit /chats (signed in) | second visit /chats | interactive on /chats at 10 Mbit/s, 40 ms |`,
    `|---|---|---|---|---|`,
  ];
  for (const t of targets) {
    const r = results[t.name];
    lines.push(`| ${t.name} | ${cell(r, (x) => x.login)} | ${cell(r, (x) => x.chats)} | ${cell(r, (x) => x.again)} | ` +
      `${(median(r.map((x) => x.tti)) / 1000).toFixed(2)} s |`);
  }
  console.log(`\nmedians of 3 rounds\n${lines.join('\n')}\n`);
  console.log(JSON.stringify(results));
});
