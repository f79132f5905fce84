// The WASM is split (`cargo leptos build --split`): the chats come in the first download,
// every other screen's code when it is first shown. What a person notices: nothing, unless
// a part cannot be downloaded - then the page says so and offers a reload.
import { test, expect, hydrated, uniqueName, PASSWORD, watchConsole } from './fixtures';
import type { Page, Request } from '@playwright/test';

/** The WASM files `page` asks for from now on, by name without the content hash. */
function wasmRequests(page: Page): string[] {
  const names: string[] = [];
  page.on('request', (r: Request) => {
    const m = /\/pkg\/([^/?]+)\.wasm$/.exec(new URL(r.url()).pathname);
    if (m) names.push(m[1].replace(/\.[A-Za-z0-9_-]{22}$/, ''));
  });
  return names;
}

async function signUp(page: Page, prefix: string) {
  const name = uniqueName(prefix);
  const res = await page.request.post('/api/v1/user/register', {
    data: { username: name, nickname: 'Lazy Lu', password: PASSWORD },
  });
  expect(res.status()).toBe(200);
}

const screens = /^split___(contacts|user|group|me|profile|password|sessions|language|login|register)_route_view/;

test('the chats load no other screen; contacts and Me load when opened', async ({ page, problems }) => {
  await signUp(page, 'lazy');
  const wasm = wasmRequests(page);
  await page.goto('/chats');
  await hydrated(page);
  expect(wasm.filter((n) => n.startsWith('quick-chat'))).toHaveLength(1);
  expect(wasm.filter((n) => screens.test(n)), 'no other screen before it is opened').toEqual([]);

  // The call screen's code follows a few seconds later, before anyone calls.
  await expect.poll(() => wasm.some((n) => n.startsWith('split_call_screens')), { timeout: 10_000 }).toBe(true);

  await page.locator('.rail [data-nav="contacts"]').click();
  await expect(page).toHaveURL(/\/contacts$/);
  await expect(page.getByTestId('add-contact')).toBeVisible();
  expect(wasm.some((n) => n.startsWith('split___contacts_route_view'))).toBe(true);
  expect(wasm.some((n) => n.startsWith('split___me_route_view'))).toBe(false);

  await page.locator('.rail [data-nav="me"]').click();
  await expect(page.locator('#profile-form')).toBeVisible();
  expect(wasm.some((n) => n.startsWith('split___me_route_view'))).toBe(true);
  expect(problems).toEqual([]);
});

test('a screen whose code cannot be downloaded says so, and Reload brings it', async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watchConsole(page);
  await signUp(page, 'lazyfail');
  await page.goto('/chats');
  await hydrated(page);
  // As after a redeploy that removed the old files, or a dropped connection.
  const meScreen = /\/pkg\/split___me_route_view[^/]*\.wasm$/;
  await page.route(meScreen, (route) => route.abort());
  await page.locator('.rail [data-nav="me"]').click();
  const banner = page.locator('#qc-crashed[role="alert"]');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('could not be loaded');
  expect(problems.some((p) => p.includes('panicked'))).toBe(true);

  await page.unroute(meScreen);
  const reloaded = page.waitForEvent('load');
  await banner.getByRole('link', { name: 'Reload' }).click();
  await reloaded;
  await hydrated(page);
  problems.length = 0;
  await expect(banner).toBeHidden();
  await page.locator('.rail [data-nav="me"]').click();
  await expect(page.locator('#profile-form')).toBeVisible();
  expect(problems).toEqual([]);
  await context.close();
});
