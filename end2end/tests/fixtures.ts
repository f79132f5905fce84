// Shared helpers: a page that records console problems, unique usernames, and the steps a
// person takes (register, log in, wait for the app to become interactive).
import { test as base, expect, type Page, type BrowserContext, type Browser } from '@playwright/test';

export { expect };

/** An API answer the app shows in words (wrong password, conflict, ...): Chromium logs the
 *  status as a console error, but it is an expected outcome, not a problem of the page. */
const EXPECTED_API_REFUSAL = /Failed to load resource: the server responded with a status of (400|401|403|409|429)\b/;

/** Console errors, warnings (hydration mismatches are warnings) and uncaught exceptions. */
export function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (EXPECTED_API_REFUSAL.test(msg.text()) && msg.location().url.includes('/api/v1/')) {
      return;
    }
    if (msg.type() === 'error' || msg.type() === 'warning') {
      problems.push(`${msg.type()}: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  return problems;
}

let counter = 0;
/** A username no other test in this run uses. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter}`.slice(0, 32);
}

export const PASSWORD = 'correct horse battery';

/** Waits until the WASM has hydrated the page. */
export async function hydrated(page: Page) {
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 30_000 });
}

/** Fills and submits the register form, ending in the chats view. */
export async function register(page: Page, username: string, nickname: string) {
  await page.goto('/register');
  await hydrated(page);
  const form = page.locator('#register-form');
  await form.locator('input[name="username"]').fill(username);
  await form.locator('input[name="nickname"]').fill(nickname);
  await form.locator('input[name="password"]').fill(PASSWORD);
  await form.locator('button[type="submit"]').click();
  await expect(page).toHaveURL(/\/chats$/);
  await expect(page.locator('nav.rail')).toBeVisible();
}

export async function login(page: Page, username: string, password = PASSWORD) {
  await page.goto('/login');
  await hydrated(page);
  const form = page.locator('#login-form');
  await form.locator('input[name="username"]').fill(username);
  await form.locator('input[name="password"]').fill(password);
  await form.locator('button[type="submit"]').click();
}

type Fixtures = { problems: string[] };

/** A `page` whose console must stay clean: the test fails on any error or warning. */
export const test = base.extend<Fixtures>({
  problems: async ({ page }, use) => {
    const problems = watchConsole(page);
    await use(problems);
    expect(problems, 'console errors or warnings').toEqual([]);
  },
});

/** A second signed-out browser context with a console watch of its own. */
export async function secondUser(browser: Browser, locale = 'en-US'): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ locale });
  const page = await context.newPage();
  const problems = watchConsole(page);
  return { context, page, problems };
}

/** The signed-in user's id. */
export async function myId(page: Page): Promise<string> {
  const res = await page.request.post('/api/v1/user/me', { data: {} });
  expect(res.status()).toBe(200);
  return (await res.json()).id;
}

/** `a` asks `b` to be friends and `b` accepts, through the API. */
export async function befriend(a: Page, b: Page, bName: string, aName: string) {
  expect((await a.request.post('/api/v1/relation/request', { data: { username: bName, memo: 'hi' } })).status()).toBe(200);
  expect((await b.request.post('/api/v1/relation/accept', { data: { username: aName } })).status()).toBe(200);
}

/** Opens a conversation and waits until it can be typed into. */
export async function openChat(page: Page, path: string) {
  await page.goto(path);
  await hydrated(page);
  await expect(page.getByTestId('composer')).toBeVisible();
}

/** Types `text` into the open conversation's composer and sends it with Enter. */
export async function send(page: Page, text: string) {
  const box = page.getByTestId('composer').locator('textarea');
  await box.fill(text);
  await box.press('Enter');
}

/** The message row holding `text` in the open conversation. */
export function bubble(page: Page, text: string) {
  return page.getByTestId('messages').locator('.bubble-row', { hasText: text });
}

/** Puts the page's relay sockets under the test's control: `setUp(false)` cuts the open
 *  ones and refuses new ones until `setUp(true)`. */
export async function controlNetwork(page: Page): Promise<(up: boolean) => Promise<void>> {
  let up = true;
  const live: { close: () => Promise<void> }[] = [];
  await page.routeWebSocket(/\/ws$/, (ws) => {
    if (!up) {
      void ws.close();
      return;
    }
    const server = ws.connectToServer();
    live.push({ close: async () => { await ws.close(); await server.close(); } });
  });
  return async (next: boolean) => {
    up = next;
    if (!next) {
      for (const socket of live.splice(0)) await socket.close();
    }
  };
}

/** Makes `page`'s visibility the test's to switch (headless pages are always visible) and
 *  records the desktop notifications the app creates. Call before the page loads. */
export async function watchNotifications(page: Page): Promise<{
  setHidden: (hidden: boolean) => Promise<void>;
  notes: () => Promise<{ title: string; body: string }[]>;
}> {
  await page.context().grantPermissions(['notifications']);
  await page.addInitScript(() => {
    const w = window as unknown as { qcHidden: boolean; qcNotes: { title: string; body: string }[]; Notification: typeof Notification };
    w.qcHidden = false;
    w.qcNotes = [];
    Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => w.qcHidden });
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (w.qcHidden ? 'hidden' : 'visible') });
    const Real = w.Notification;
    w.Notification = class extends Real {
      constructor(title: string, options?: NotificationOptions) {
        super(title, options);
        w.qcNotes.push({ title, body: options?.body ?? '' });
      }
    };
  });
  return {
    setHidden: (hidden: boolean) => page.evaluate((hidden) => {
      (window as unknown as { qcHidden: boolean }).qcHidden = hidden;
      document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
    }, hidden),
    notes: () => page.evaluate(() => (window as unknown as { qcNotes: { title: string; body: string }[] }).qcNotes),
  };
}
