// Real-time chat in real browsers: live messages both ways with read receipts and typing;
// a user who was away gets everything in order on return; a group of three.
import * as path from 'path';
import { test, expect, register, hydrated, uniqueName, secondUser, myId, befriend, openChat, send, bubble, controlNetwork } from './fixtures';

const screenshots = path.resolve(__dirname, '../../docs/screenshots');

test('two friends chat live: both directions, read receipts, typing', async ({ page, problems, browser }) => {
  const a = uniqueName('chat_a');
  const b = uniqueName('chat_b');
  const other = await secondUser(browser);
  await register(page, a, 'Alma');
  await register(other.page, b, 'Boris');
  await befriend(page, other.page, b, a);
  const aId = await myId(page);
  const bId = await myId(other.page);

  await openChat(page, `/chats/user/${bId}`);
  await openChat(other.page, `/chats/user/${aId}`);
  await expect(page.getByTestId('conversation-title')).toHaveText('Boris');
  await expect(page.getByTestId('presence')).toHaveText('online');

  await send(page, 'Hello Boris');
  await expect(bubble(other.page, 'Hello Boris')).toBeVisible();
  // Boris has the chat open, so it is read at once.
  await expect(bubble(page, 'Hello Boris')).toHaveAttribute('data-state', 'read');

  // Typing shows on the other side.
  await other.page.getByTestId('composer').locator('textarea').pressSequentially('Hi Al', { delay: 30 });
  await expect(page.getByTestId('typing')).toHaveText('Boris is typing…');
  // Shift+Enter adds a line; Enter sends.
  const box = other.page.getByTestId('composer').locator('textarea');
  await box.press('Shift+Enter');
  await box.pressSequentially('how are you?');
  await box.press('Enter');
  await expect(bubble(page, 'how are you?')).toBeVisible();
  await expect(bubble(page, 'how are you?').locator('.bubble-text')).toHaveText('Hi Al\nhow are you?');
  await expect(box).toHaveValue('');
  await expect(page.getByTestId('typing')).toHaveText('');

  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: path.join(screenshots, 'chat.png') });

  // The conversation list shows the newest message and time.
  await page.goto('/chats');
  await hydrated(page);
  const row = page.locator(`[data-conversation="${b}"]`);
  await expect(row).toContainText('how are you?');
  await expect(row.locator('.row-time')).toHaveText(/\d\d:\d\d/);

  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a user who was away finds every message, in order, with an unread badge', async ({ page, problems, browser }) => {
  const a = uniqueName('away_a');
  const c = uniqueName('away_c');
  const other = await secondUser(browser);
  await register(page, a, 'Anna');
  await register(other.page, c, 'Carl');
  await befriend(page, other.page, c, a);
  const cId = await myId(other.page);
  const cookies = await other.context.cookies();
  // Carl closes the page and goes away.
  await other.page.close();

  await openChat(page, `/chats/user/${cId}`);
  for (const text of ['one', 'two', 'three']) {
    await send(page, `message ${text}`);
    await expect(bubble(page, `message ${text}`)).toHaveAttribute('data-state', 'sent');
  }

  // Carl comes back in a new page of the same browser.
  const back = await other.context.newPage();
  expect(cookies.length).toBeGreaterThan(0);
  await back.goto('/chats');
  await hydrated(back);
  const row = back.locator(`[data-conversation="${a}"]`);
  await expect(row.getByTestId('unread')).toHaveText('3');
  await expect(back.getByTestId('chats-badge')).toHaveText('3');
  await expect(back).toHaveTitle('(3) quick-chat');
  await row.click();
  const texts = back.getByTestId('messages').locator('.bubble-text');
  await expect(texts).toHaveText(['message one', 'message two', 'message three']);
  await expect(back.getByTestId('chats-badge')).toHaveCount(0);
  // Anna sees them read.
  await expect(bubble(page, 'message three')).toHaveAttribute('data-state', 'read');
  await other.context.close();
});

test('the network drops mid-chat: what was typed meanwhile goes out on return, nothing is missed', async ({ page, problems, browser }) => {
  // Dora's network, under the test's control.
  const setUp = await controlNetwork(page);
  const d = uniqueName('drop_d');
  const e = uniqueName('drop_e');
  const other = await secondUser(browser);
  await register(page, d, 'Dora');
  await register(other.page, e, 'Emil');
  await befriend(page, other.page, e, d);
  const dId = await myId(page);
  const eId = await myId(other.page);
  await openChat(page, `/chats/user/${eId}`);
  await openChat(other.page, `/chats/user/${dId}`);
  await send(page, 'before the drop');
  await expect(bubble(other.page, 'before the drop')).toBeVisible();

  // The network drops.
  await setUp(false);
  await expect(page.getByTestId('conn-state')).toBeVisible();
  await send(page, 'typed offline 1');
  await send(page, 'typed offline 2');
  await send(other.page, 'while Dora was away 1');
  await send(other.page, 'while Dora was away 2');
  await expect(bubble(other.page, 'while Dora was away 2')).toHaveAttribute('data-state', 'sent');
  await page.waitForTimeout(2000);
  for (const text of ['typed offline 1', 'typed offline 2']) {
    await expect(bubble(page, text)).toHaveAttribute('data-state', 'sending');
    await expect(bubble(other.page, text)).toHaveCount(0);
  }
  await expect(bubble(page, 'while Dora was away 1')).toHaveCount(0);

  // It comes back: the outbox goes out with its client ids, the missed messages come in.
  await setUp(true);
  await expect(page.getByTestId('conn-state')).toHaveCount(0, { timeout: 20_000 });
  await expect(bubble(page, 'typed offline 2')).toHaveAttribute('data-state', /sent|read/);
  // Both screens hold each message once, in the order the server stored them.
  const stored = ['before the drop', 'while Dora was away 1', 'while Dora was away 2', 'typed offline 1', 'typed offline 2'];
  for (const p of [page, other.page]) {
    await expect(p.getByTestId('messages').locator('.bubble-text')).toHaveText(stored);
  }
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a group of three chats together', async ({ page, problems, browser }) => {
  const names = [uniqueName('grp_a'), uniqueName('grp_b'), uniqueName('grp_c')];
  const second = await secondUser(browser);
  const third = await secondUser(browser);
  await register(page, names[0], 'Gaia');
  await register(second.page, names[1], 'Gus');
  await register(third.page, names[2], 'Gil');
  const created = await page.request.post('/api/v1/community/create', { data: { name: 'Trio' } });
  const group = (await created.json()).id;
  for (const [p, name] of [[second.page, names[1]], [third.page, names[2]]] as const) {
    expect((await p.request.post('/api/v1/community/join', { data: { community_id: group } })).status()).toBe(200);
    expect((await page.request.post('/api/v1/community/approve', { data: { community_id: group, username: name } })).status()).toBe(200);
  }
  for (const p of [page, second.page, third.page]) {
    await openChat(p, `/chats/group/${group}`);
  }
  await send(page, 'Welcome to Trio');
  await expect(bubble(second.page, 'Welcome to Trio')).toBeVisible();
  await expect(bubble(third.page, 'Welcome to Trio')).toBeVisible();
  await send(third.page, 'Thanks!');
  await expect(bubble(page, 'Thanks!')).toBeVisible();
  await expect(bubble(second.page, 'Thanks!')).toBeVisible();
  for (const o of [second, third]) {
    expect(o.problems).toEqual([]);
    await o.context.close();
  }
});
