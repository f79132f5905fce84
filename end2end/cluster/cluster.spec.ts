// Three nodes behind nginx (cluster.config.ts), each person's browser pinned to a node of its
// own by the qc_node cookie (docs/nginx-cluster.conf): what one node's socket sends reaches
// sockets on the others — messages, receipts, typing, presence, a group, a call ringing on
// two devices on two nodes — and a node restarting gracefully loses nobody anything. Every
// test first checks, on each node's /metrics, that the sockets are where they were pinned.
import * as fs from 'fs';
import * as path from 'path';
import { type APIRequestContext, type Browser, type Page } from '@playwright/test';
import { test, expect, register, login, hydrated, uniqueName, watchConsole, myId, befriend, openChat, send, bubble } from '../tests/fixtures';

const clusterDir = path.join(process.env.QC_E2E_CLUSTER_DIR ?? '', 'cluster');

type Person = { page: Page; problems: string[]; close: () => Promise<void> };

/** A new browser whose every request and socket goes to node `node` (1-3). */
async function onNode(browser: Browser, node: number): Promise<Person> {
  const context = await browser.newContext();
  await context.addCookies([{ name: 'qc_node', value: String(node), url: 'http://127.0.0.1:3000' }]);
  const page = await context.newPage();
  return { page, problems: watchConsole(page), close: () => context.close() };
}

/** One value of node `node`'s metrics (scripts/cluster serves them on 127.0.0.1:910n). */
async function metric(request: APIRequestContext, node: number, name: string): Promise<number> {
  const res = await request.get(`http://127.0.0.1:910${node}/metrics`);
  expect(res.status()).toBe(200);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Waits until the nodes hold exactly these numbers of sockets. */
async function socketsPerNode(request: APIRequestContext, expected: [number, number, number]) {
  await expect
    .poll(async () => Promise.all([1, 2, 3].map((n) => metric(request, n, 'qc_ws_connections'))), { timeout: 15_000 })
    .toEqual(expected);
}

test('three people on three nodes: chat, receipts, typing, presence, a group, and a node restarting', async ({ browser, request }) => {
  const [a, b, c] = [uniqueName('cl_anna'), uniqueName('cl_boris'), uniqueName('cl_carl')];
  const anna = await onNode(browser, 1);
  const boris = await onNode(browser, 2);
  const carl = await onNode(browser, 3);
  await register(anna.page, a, 'Anna');
  await register(boris.page, b, 'Boris');
  await register(carl.page, c, 'Carl');
  await befriend(anna.page, boris.page, b, a);
  const annaId = await myId(anna.page);
  const borisId = await myId(boris.page);

  await openChat(anna.page, `/chats/user/${borisId}`);
  await openChat(boris.page, `/chats/user/${annaId}`);
  await carl.page.goto('/chats');
  await hydrated(carl.page);
  await socketsPerNode(request, [1, 1, 1]);

  // Presence, a message and its read receipt, typing: node 1 ⇄ node 2.
  await expect(anna.page.getByTestId('presence')).toHaveText('online');
  await send(anna.page, 'Hello from node one');
  await expect(bubble(boris.page, 'Hello from node one')).toBeVisible();
  await expect(bubble(anna.page, 'Hello from node one')).toHaveAttribute('data-state', 'read');
  await boris.page.getByTestId('composer').locator('textarea').pressSequentially('Hi An', { delay: 30 });
  await expect(anna.page.getByTestId('typing')).toHaveText('Boris is typing…');
  await boris.page.getByTestId('composer').locator('textarea').press('Enter');
  await expect(bubble(anna.page, 'Hi An')).toBeVisible();

  // A group of three, one member per node: everyone sees everyone's bubble, named.
  const created = await anna.page.request.post('/api/v1/community/create', { data: { name: 'Nodes' } });
  expect(created.status()).toBe(200);
  const group = (await created.json()).id;
  for (const [p, name] of [[boris.page, b], [carl.page, c]] as const) {
    expect((await p.request.post('/api/v1/community/join', { data: { community_id: group } })).status()).toBe(200);
    expect((await anna.page.request.post('/api/v1/community/approve', { data: { community_id: group, username: name } })).status()).toBe(200);
  }
  for (const p of [anna, boris, carl]) await openChat(p.page, `/chats/group/${group}`);
  await socketsPerNode(request, [1, 1, 1]);
  await send(carl.page, 'Carl on node three');
  for (const p of [anna, boris]) {
    await expect(bubble(p.page, 'Carl on node three').getByTestId('bubble-sender')).toContainText('Carl');
  }
  await send(anna.page, 'Anna on node one');
  await expect(bubble(carl.page, 'Anna on node one')).toBeVisible();
  await expect(bubble(boris.page, 'Anna on node one')).toBeVisible();

  // Node 2 restarts gracefully (scripts/cluster starts it again a second later). What is
  // sent meanwhile reaches Boris when his page is back, and his own message goes out.
  const pid = Number(fs.readFileSync(path.join(clusterDir, 'node2.pid'), 'utf8'));
  process.kill(pid, 'SIGTERM');
  await send(anna.page, 'sent while node two restarts');
  await expect(bubble(carl.page, 'sent while node two restarts')).toBeVisible();
  await expect(bubble(boris.page, 'sent while node two restarts')).toBeVisible({ timeout: 30_000 });
  await send(boris.page, 'Boris is back');
  await expect(bubble(anna.page, 'Boris is back')).toBeVisible();
  await expect(bubble(boris.page, 'Boris is back')).toHaveAttribute('data-state', /sent|read/);
  await socketsPerNode(request, [1, 1, 1]);
  // Nothing twice.
  await expect(bubble(boris.page, 'sent while node two restarts')).toHaveCount(1);

  expect(anna.problems).toEqual([]);
  expect(carl.problems).toEqual([]);
  // While node 2 was away, Boris's reconnect attempts failed (nginx answers 502 for it).
  expect(boris.problems.filter((p) => !/WebSocket connection to .* failed|status of 502/.test(p))).toEqual([]);
  for (const p of [anna, boris, carl]) await p.close();
});

test('a call from node 1 rings on two devices on nodes 2 and 3; answered on node 2, media flows', async ({ browser, request }) => {
  const [a, b] = [uniqueName('cl_vera'), uniqueName('cl_viktor')];
  const vera = await onNode(browser, 1);
  const viktor = await onNode(browser, 2);
  const viktorsPhone = await onNode(browser, 3);
  await register(vera.page, a, 'Vera');
  await register(viktor.page, b, 'Viktor');
  await login(viktorsPhone.page, b);
  await expect(viktorsPhone.page).toHaveURL(/\/chats$/);
  await befriend(vera.page, viktor.page, b, a);
  const viktorId = await myId(viktor.page);
  await openChat(vera.page, `/chats/user/${viktorId}`);
  await viktor.page.goto('/chats');
  await hydrated(viktor.page);
  await socketsPerNode(request, [1, 1, 1]);

  const call = (p: Page) => p.getByTestId('call');
  await vera.page.getByTestId('start-video-call').click();
  await expect(call(vera.page)).toHaveAttribute('data-state', 'ringing');
  for (const p of [viktor, viktorsPhone]) {
    await expect(call(p.page)).toHaveAttribute('data-state', 'incoming');
    await expect(call(p.page).getByTestId('call-peer')).toHaveText('Vera');
  }
  // The caller's node holds the call.
  expect(await Promise.all([1, 2, 3].map((n) => metric(request, n, 'qc_calls_active')))).toEqual([1, 0, 0]);

  await call(viktor.page).getByTestId('call-accept').click();
  await expect(call(viktorsPhone.page).getByTestId('call-status')).toHaveText('Answered on another device');
  await expect(call(viktorsPhone.page)).toBeHidden({ timeout: 10_000 });
  for (const p of [vera, viktor]) {
    await expect(call(p.page)).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
    // Video frames decoded on both sides: the offer, answer and candidates crossed nodes.
    await expect
      .poll(async () => Number((await call(p.page).getAttribute('data-frames-decoded')) ?? '0'), { timeout: 15_000 })
      .toBeGreaterThan(10);
  }
  await call(viktor.page).getByTestId('call-hangup').click();
  await expect(call(vera.page).getByTestId('call-status')).toHaveText('Call ended');
  await expect(vera.page.getByTestId('call-record').last()).toContainText(/Video call \d\d:\d\d/, { timeout: 10_000 });
  await expect
    .poll(async () => Promise.all([1, 2, 3].map((n) => metric(request, n, 'qc_calls_active'))))
    .toEqual([0, 0, 0]);

  for (const p of [vera, viktor, viktorsPhone]) {
    expect(p.problems).toEqual([]);
    await p.close();
  }
});
