// What a long conversation, several tabs, a hidden tab and a refused message look like in a
// real browser: history scrolls back page by page, every tab of a user shows the same
// conversation, a hidden tab gets a desktop notification, a refused message says why and
// goes out again with a tap.
import { type Page } from '@playwright/test';
import { test, expect, register, hydrated, uniqueName, secondUser, myId, befriend, openChat, send, bubble, controlNetwork, watchConsole, watchNotifications } from './fixtures';

/** Sends `count` numbered texts to `to` over the page's own authenticated socket, at the
 *  relay's sustained rate, and resolves once each one is acknowledged. */
async function sendMany(page: Page, to: string, count: number, prefix: string) {
  const stored = await page.evaluate(async ({ to, count, prefix }) => {
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`);
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
    const frame = (i: number) => JSON.stringify({
      type: 'send',
      client_id: `${prefix}-${i}`,
      to: { user: to },
      content: { kind: 'text', text: `${prefix} ${String(i).padStart(3, '0')}` },
    });
    const acked = new Set<string>();
    const done = new Promise<void>((resolve) => {
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.type === 'ack') {
          acked.add(msg.client_id);
          if (acked.size === count) resolve();
        } else if (msg.type === 'error' && msg.code === 'rate_limited' && msg.client_id) {
          // Over the rate: the same client id again a little later.
          const n = Number(String(msg.client_id).split('-').pop());
          setTimeout(() => ws.send(frame(n)), 300);
        }
      };
    });
    for (let i = 1; i <= count; i++) {
      ws.send(frame(i));
      await new Promise((r) => setTimeout(r, 52));
    }
    await done;
    ws.close();
    return acked.size;
  }, { to, count, prefix });
  expect(stored).toBe(count);
}

test('history scrolls back page by page; every tab of a user shows the same conversation', async ({ page, problems, browser }) => {
  const h = uniqueName('hist_h');
  const i = uniqueName('hist_i');
  const other = await secondUser(browser);
  await register(page, h, 'Hana');
  await register(other.page, i, 'Ivo');
  await befriend(page, other.page, i, h);
  const hId = await myId(page);
  const iId = await myId(other.page);

  // Ivo has written 100 messages: history comes in pages of 40.
  const total = 100;
  await sendMany(other.page, hId, total, 'line');
  const all = Array.from({ length: total }, (_, n) => `line ${String(n + 1).padStart(3, '0')}`);

  await openChat(page, `/chats/user/${iId}`);
  const texts = page.getByTestId('messages').locator('.bubble-text');
  await expect(texts).toHaveCount(40);
  await expect(texts.first()).toHaveText('line 061');
  await expect(texts.last()).toHaveText('line 100');
  await expect(bubble(page, 'line 100')).toBeInViewport();

  // Scrolling to the top loads the page before it, and the reader keeps their place.
  const list = page.getByTestId('messages');
  await list.evaluate((el) => { el.scrollTop = 0; });
  await expect(texts).toHaveCount(80);
  await expect(texts.first()).toHaveText('line 021');
  await expect(bubble(page, 'line 061')).toBeInViewport();
  await list.evaluate((el) => { el.scrollTop = 0; });
  await expect(texts).toHaveCount(total);
  // The whole conversation, in order, each message once; there is nothing before it.
  await expect(texts).toHaveText(all);
  await list.evaluate((el) => { el.scrollTop = 0; });
  await page.waitForTimeout(500);
  await expect(texts).toHaveCount(total);

  // A second tab of Hana's shows the same conversation, live, whichever tab she writes in.
  const tab = await page.context().newPage();
  const tabProblems = watchConsole(tab);
  await openChat(tab, `/chats/user/${iId}`);
  await openChat(other.page, `/chats/user/${hId}`);
  await send(page, 'written in the first tab');
  for (const p of [tab, other.page]) {
    await expect(bubble(p, 'written in the first tab')).toBeVisible();
  }
  await expect(bubble(tab, 'written in the first tab')).toHaveClass(/mine/);
  await expect(bubble(other.page, 'written in the first tab')).not.toHaveClass(/mine/);
  await send(tab, 'and this in the second');
  await expect(bubble(page, 'and this in the second')).toHaveClass(/mine/);
  await send(other.page, 'both tabs see this');
  for (const p of [page, tab]) {
    await expect(bubble(p, 'both tabs see this')).toBeVisible();
    await expect(p.getByTestId('messages').locator('.bubble-text').last()).toHaveText('both tabs see this');
  }
  expect(tabProblems).toEqual([]);
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a hidden tab gets a desktop notification; a refused message says why and goes out with a tap', async ({ page, problems, browser }) => {
  // The tab's visibility is the test's to switch, and its notifications are recorded.
  const { setHidden, notes } = await watchNotifications(page);

  // Jana's network, under the test's control.
  const setUp = await controlNetwork(page);

  const j = uniqueName('note_j');
  const k = uniqueName('note_k');
  const other = await secondUser(browser);
  await register(page, j, 'Jana');
  await register(other.page, k, 'Karl');
  await befriend(page, other.page, k, j);
  const jId = await myId(page);
  const kId = await myId(other.page);
  await openChat(page, `/chats/user/${kId}`);
  await openChat(other.page, `/chats/user/${jId}`);

  // Jana switches to another tab: Karl's message is not read, and a notification shows it.
  await setHidden(true);
  await send(other.page, 'are you there?');
  await expect(bubble(page, 'are you there?')).toHaveCount(1);
  await expect.poll(notes).toEqual([{ title: 'Karl', body: 'are you there?' }]);
  await expect(page).toHaveTitle('(1) quick-chat');
  await expect(bubble(other.page, 'are you there?')).toHaveAttribute('data-state', 'sent');
  // She comes back: it is read, and no notification for what she sees on screen.
  await setHidden(false);
  await expect(bubble(other.page, 'are you there?')).toHaveAttribute('data-state', 'read');
  await expect(page).toHaveTitle('quick-chat');
  await send(other.page, 'good, you are back');
  await expect(bubble(page, 'good, you are back')).toBeVisible();
  await expect(bubble(other.page, 'good, you are back')).toHaveAttribute('data-state', 'read');
  expect(await notes()).toHaveLength(1);

  await expect(page.getByTestId('not-friends')).toHaveCount(0);

  // A message typed while the network is down outlives a reload, and goes out on return.
  await setUp(false);
  await expect(page.getByTestId('conn-state')).toBeVisible();
  await send(page, 'typed offline, then reloaded');
  await expect(bubble(page, 'typed offline, then reloaded')).toHaveAttribute('data-state', 'sending');
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('conn-state')).toBeVisible();
  await setUp(true);
  await expect(bubble(page, 'typed offline, then reloaded')).toHaveAttribute('data-state', /sent|read/, { timeout: 20_000 });
  await expect(bubble(other.page, 'typed offline, then reloaded')).toHaveCount(1);

  // Karl removes Jana. Her next messages are refused, say why, and are kept.
  expect((await other.page.request.post('/api/v1/relation/remove', { data: { username: j } })).status()).toBe(200);
  await expect(page.getByTestId('not-friends')).toContainText('You are not friends any more');
  await send(page, 'still friends?');
  await send(page, 'never mind');
  for (const text of ['still friends?', 'never mind']) {
    await expect(bubble(page, text)).toHaveAttribute('data-state', 'failed');
    await expect(bubble(page, text).locator('.bubble-error')).toContainText('You are not friends. Tap to retry.');
  }
  // One she deletes; the other is still there after a reload.
  await bubble(page, 'never mind').getByTestId('discard').click();
  await expect(bubble(page, 'never mind')).toHaveCount(0);
  await page.reload();
  await hydrated(page);
  await expect(bubble(page, 'still friends?')).toHaveAttribute('data-state', 'failed');
  await expect(bubble(page, 'never mind')).toHaveCount(0);
  // They make up; one tap sends it, and Karl has it, once.
  await befriend(other.page, page, j, k);
  await expect(page.getByTestId('not-friends')).toHaveCount(0);
  await bubble(page, 'still friends?').locator('.bubble').click();
  await expect(bubble(page, 'still friends?')).toHaveAttribute('data-state', /sent|read/);
  await openChat(other.page, `/chats/user/${jId}`);
  await expect(bubble(other.page, 'still friends?')).toHaveCount(1);
  await expect(bubble(other.page, 'never mind')).toHaveCount(0);
  await page.reload();
  await hydrated(page);
  await expect(bubble(page, 'still friends?')).toHaveCount(1);
  await expect(bubble(page, 'still friends?')).toHaveAttribute('data-state', /sent|read/);
  expect(other.problems).toEqual([]);
  await other.context.close();
});
