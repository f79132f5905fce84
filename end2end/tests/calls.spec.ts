// Video and voice calls between two Chromium contexts with fake camera and microphone,
// inside the private network namespace: media flows over 127.0.0.1 only.
//
// The call screen exposes what its own getStats() poll reads as data attributes
// (frames decoded, audio packets and energy received, the local candidate type), so the
// tests check what the other side actually receives.
import * as path from 'path';
import { type Page, type Browser } from '@playwright/test';
import { test, expect, register, uniqueName, secondUser, myId, befriend, openChat, controlNetwork } from './fixtures';

const screenshots = path.resolve(__dirname, '../../docs/screenshots');

type Side = { page: Page; id: string; name: string };

async function pair(page: Page, browser: Browser, nickA: string, nickB: string) {
  const other = await secondUser(browser);
  const a: Side = { page, id: '', name: uniqueName('call_a') };
  const b: Side = { page: other.page, id: '', name: uniqueName('call_b') };
  await register(a.page, a.name, nickA);
  await register(b.page, b.name, nickB);
  await befriend(a.page, b.page, b.name, a.name);
  a.id = await myId(a.page);
  b.id = await myId(b.page);
  return { a, b, other };
}

const call = (page: Page) => page.getByTestId('call');

async function stat(page: Page, name: string): Promise<number> {
  return Number((await call(page).getAttribute(`data-${name}`)) ?? '0');
}

/** How much a statistic grows over `ms`. */
async function growth(page: Page, name: string, ms = 2000): Promise<number> {
  const before = await stat(page, name);
  await page.waitForTimeout(ms);
  return (await stat(page, name)) - before;
}

async function remotePlays(page: Page) {
  await expect
    .poll(() => page.getByTestId('remote-video').evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 15_000 })
    .toBeGreaterThan(0);
}

async function startCall(caller: Side, callee: Side, kind: 'video' | 'audio') {
  await openChat(caller.page, `/chats/user/${callee.id}`);
  await caller.page.getByTestId(`start-${kind}-call`).click();
}

test('a video call: ring, answer, see and hear each other, mute, camera off, hang up', async ({ page, problems, browser }) => {
  const { a, b, other } = await pair(page, browser, 'Vera', 'Viktor');
  await openChat(b.page, `/chats/user/${a.id}`);
  await startCall(a, b, 'video');
  await expect(call(a.page)).toHaveAttribute('data-state', /outgoing|ringing/);
  await expect(call(a.page)).toHaveAttribute('data-state', 'ringing');
  await expect(call(a.page).getByTestId('call-status')).toHaveText('Ringing…');

  // Viktor sees who calls, with Accept and Decline.
  await expect(call(b.page)).toHaveAttribute('data-state', 'incoming');
  await expect(call(b.page).getByTestId('call-peer')).toHaveText('Vera');
  await expect(call(b.page).getByTestId('call-status')).toHaveText('is inviting you to a video call');
  await expect(call(b.page).getByTestId('call-decline')).toBeVisible();
  await call(b.page).getByTestId('call-accept').click();

  for (const side of [a, b]) {
    await expect(call(side.page)).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
    await remotePlays(side.page);
    // Video frames keep being decoded, and audio arrives.
    expect(await growth(side.page, 'frames-decoded')).toBeGreaterThan(10);
    expect(await stat(side.page, 'audio-packets')).toBeGreaterThan(0);
    await expect(call(side.page).getByTestId('call-timer')).toHaveText(/^00:\d\d$/);
    await expect(call(side.page).getByTestId('call-quality')).toBeVisible();
  }
  await a.page.setViewportSize({ width: 1280, height: 800 });
  await a.page.screenshot({ path: path.join(screenshots, 'call.png') });

  // Vera mutes: Viktor receives no more sound from her; unmuted, it comes back.
  // (The statistics are read once a second, so each step waits two before measuring.)
  expect(await growth(b.page, 'audio-packets')).toBeGreaterThan(20);
  await call(a.page).getByTestId('call-mute').click();
  await expect(call(a.page).getByTestId('call-mute')).toHaveAttribute('aria-pressed', 'true');
  await b.page.waitForTimeout(2000);
  expect(await growth(b.page, 'audio-packets')).toBeLessThan(3);
  await call(a.page).getByTestId('call-mute').click();
  await expect.poll(() => growth(b.page, 'audio-packets', 1000), { timeout: 15_000 }).toBeGreaterThan(10);

  // Vera turns her camera off: Viktor decodes no more frames; on again, they flow.
  await call(a.page).getByTestId('call-camera').click();
  await expect(call(a.page).getByTestId('local-video')).toBeHidden();
  await b.page.waitForTimeout(2000);
  expect(await growth(b.page, 'frames-decoded')).toBeLessThan(3);
  await call(a.page).getByTestId('call-camera').click();
  await expect(call(a.page).getByTestId('local-video')).toBeVisible();
  await expect.poll(() => growth(b.page, 'frames-decoded', 1000), { timeout: 15_000 }).toBeGreaterThan(5);

  // Vera switches to another microphone (Chromium's fake devices offer several): the
  // call goes on with it, Viktor still receives her audio.
  const mics = call(a.page).getByTestId('device-audioinput').locator('option');
  await expect.poll(() => mics.count()).toBeGreaterThan(0);
  const ids = await mics.evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  const current = await call(a.page).getByTestId('device-audioinput').inputValue();
  const next = ids.find((id) => id !== current) ?? current;
  await call(a.page).getByTestId('device-audioinput').selectOption(next);
  await expect
    .poll(() => a.page.getByTestId('local-video').evaluate((v: HTMLVideoElement) =>
      (v.srcObject as MediaStream).getAudioTracks()[0]?.getSettings().deviceId))
    .toBe(next);
  await expect.poll(() => growth(b.page, 'audio-packets', 1000), { timeout: 15_000 }).toBeGreaterThan(10);

  // Viktor hangs up: it ends on both sides and leaves a line in the chat.
  await call(b.page).getByTestId('call-hangup').click();
  await expect(call(a.page)).toHaveAttribute('data-state', 'ended-completed');
  await expect(call(a.page).getByTestId('call-status')).toHaveText('Call ended');
  for (const side of [a, b]) {
    await expect(side.page.getByTestId('call-record').last()).toContainText(/Video call \d\d:\d\d/, { timeout: 10_000 });
  }
  await expect(call(a.page)).toBeHidden({ timeout: 10_000 });
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('declined, cancelled, unanswered and busy calls each say so on both sides', async ({ page, problems, browser }) => {
  const { a, b, other } = await pair(page, browser, 'Dora', 'Dmitri');
  await openChat(b.page, `/chats/user/${a.id}`);

  // Declined.
  await startCall(a, b, 'video');
  await call(b.page).getByTestId('call-decline').click();
  await expect(call(a.page).getByTestId('call-status')).toHaveText('Declined');
  await expect(a.page.getByTestId('call-record').last()).toHaveText(/Declined call/);
  await expect(call(a.page)).toBeHidden({ timeout: 10_000 });

  // Cancelled before an answer.
  await a.page.getByTestId('start-audio-call').click();
  await expect(call(b.page)).toHaveAttribute('data-state', 'incoming');
  await call(a.page).getByTestId('call-hangup').click();
  await expect(call(b.page).getByTestId('call-status')).toHaveText('Cancelled');
  await expect(b.page.getByTestId('call-record').last()).toHaveText(/Cancelled call/);
  await expect(call(b.page)).toBeHidden({ timeout: 10_000 });

  // Nobody answers (the test server rings for 6 s).
  await a.page.getByTestId('start-video-call').click();
  await expect(call(b.page)).toHaveAttribute('data-state', 'incoming');
  await expect(call(a.page).getByTestId('call-status')).toHaveText('No answer', { timeout: 15_000 });
  await expect(call(b.page)).toHaveAttribute('data-state', 'ended-missed');
  await expect(b.page.getByTestId('call-record').last()).toHaveText(/Missed video call/);
  await expect(call(a.page)).toBeHidden({ timeout: 10_000 });
  await expect(call(b.page)).toBeHidden({ timeout: 10_000 });

  // Busy: Dmitri is in a call with a third friend when Dora calls.
  const third = await secondUser(browser);
  const cName = uniqueName('call_c');
  await register(third.page, cName, 'Cyril');
  await befriend(third.page, b.page, b.name, cName);
  const cId = await myId(third.page);
  await openChat(third.page, `/chats/user/${b.id}`);
  await third.page.getByTestId('start-audio-call').click();
  await call(b.page).getByTestId('call-accept').click();
  await expect(call(b.page)).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
  await a.page.getByTestId('start-video-call').click();
  await expect(call(a.page).getByTestId('call-status')).toHaveText('Busy — in another call');
  await expect(a.page.getByTestId('call-record').last()).toHaveText(/busy/);
  await expect(call(b.page)).toHaveAttribute('data-state', 'active');
  await call(third.page).getByTestId('call-hangup').click();
  await expect(call(b.page)).toHaveAttribute('data-state', 'ended-completed');
  expect(cId).not.toEqual('');

  expect(other.problems).toEqual([]);
  expect(third.problems).toEqual([]);
  await third.context.close();
  await other.context.close();
});

test('a voice call rings on every tab of the callee, even one opened while ringing; one answers, the others stop', async ({ page, problems, browser }) => {
  const { a, b, other } = await pair(page, browser, 'Ada', 'Bo');
  const secondTab = await other.context.newPage();
  await openChat(b.page, `/chats/user/${a.id}`);
  await openChat(secondTab, `/chats/user/${a.id}`);
  await startCall(a, b, 'audio');
  await expect(call(b.page)).toHaveAttribute('data-state', 'incoming');
  await expect(call(secondTab)).toHaveAttribute('data-state', 'incoming');
  await expect(call(b.page).getByTestId('call-status')).toHaveText('is inviting you to a voice call');
  // A tab Bo opens while it rings rings too.
  const lateTab = await other.context.newPage();
  await openChat(lateTab, `/chats/user/${a.id}`);
  await expect(call(lateTab)).toHaveAttribute('data-state', 'incoming');

  await call(secondTab).getByTestId('call-accept').click();
  await expect(call(b.page).getByTestId('call-status')).toHaveText('Answered on another device');
  await expect(call(b.page)).toBeHidden({ timeout: 10_000 });
  await expect(call(lateTab)).toBeHidden({ timeout: 10_000 });
  for (const p of [a.page, secondTab]) {
    await expect(call(p)).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
    // Voice only: no camera, no video decoded, audio arriving.
    await expect(call(p).getByTestId('call-camera')).toHaveCount(0);
    await expect.poll(() => stat(p, 'audio-packets'), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await stat(p, 'frames-decoded')).toBe(0);
  }
  await call(a.page).getByTestId('call-hangup').click();
  await expect(call(secondTab)).toHaveAttribute('data-state', 'ended-completed');
  await expect(secondTab.getByTestId('call-record').last()).toContainText(/Voice call \d\d:\d\d/);
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a call goes on when a socket drops and comes back; a side that stays away drops it', async ({ page, problems, browser }) => {
  const setUp = await controlNetwork(page);
  const { a, b, other } = await pair(page, browser, 'Rhea', 'Rolf');
  await openChat(b.page, `/chats/user/${a.id}`);
  await startCall(a, b, 'video');
  await call(b.page).getByTestId('call-accept').click();
  for (const side of [a, b]) {
    await expect(call(side.page)).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
    await remotePlays(side.page);
  }

  // Rhea's socket drops for a moment (a Wi-Fi hand-over): the media flows between the
  // browsers, not through the relay, and the call goes on on both sides.
  await setUp(false);
  await expect(a.page.getByTestId('conn-state')).toBeVisible();
  await b.page.waitForTimeout(1000);
  await expect(call(b.page)).toHaveAttribute('data-state', 'active');
  await setUp(true);
  await expect(a.page.getByTestId('conn-state')).toHaveCount(0, { timeout: 20_000 });
  // Past the server's resume time (5 s here): the new socket took the old one's place.
  await b.page.waitForTimeout(4000);
  for (const side of [a, b]) {
    await expect(call(side.page)).toHaveAttribute('data-state', 'active');
    expect(await growth(side.page, 'frames-decoded')).toBeGreaterThan(10);
  }
  // Signalling reaches the new socket: Rolf hangs up and Rhea hears it at once.
  await call(b.page).getByTestId('call-hangup').click();
  await expect(call(a.page)).toHaveAttribute('data-state', 'ended-completed');
  await expect(call(a.page)).toBeHidden({ timeout: 10_000 });

  // This time Rhea stays away past the resume time: Rolf's side ends as dropped, and so
  // does hers when she is back (the call record syncs in).
  await a.page.getByTestId('start-audio-call').click();
  await call(b.page).getByTestId('call-accept').click();
  for (const side of [a, b]) {
    await expect(call(side.page)).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
  }
  await setUp(false);
  await expect(call(b.page)).toHaveAttribute('data-state', 'ended-failed', { timeout: 10_000 });
  await expect(call(b.page).getByTestId('call-status')).toHaveText('Connection lost');
  await expect(b.page.getByTestId('call-record').last()).toContainText('Call dropped', { timeout: 10_000 });
  await setUp(true);
  await expect(call(a.page)).toHaveAttribute('data-state', 'ended-failed', { timeout: 20_000 });
  await expect(call(a.page).getByTestId('call-status')).toHaveText('Connection lost');
  await expect(a.page.getByTestId('call-record').last()).toContainText('Call dropped');
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('leaving the page mid-call hangs up at once', async ({ page, problems, browser }) => {
  const { a, b, other } = await pair(page, browser, 'Lena', 'Lars');
  await openChat(b.page, `/chats/user/${a.id}`);
  await startCall(a, b, 'audio');
  await call(b.page).getByTestId('call-accept').click();
  for (const side of [a, b]) {
    await expect(call(side.page)).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
  }
  // Lena closes the conversation's page: Lars hears she hung up before the relay's resume
  // time (5 s here) would have dropped the call.
  const left = Date.now();
  await a.page.goto('about:blank');
  await expect(call(b.page)).toHaveAttribute('data-state', 'ended-completed', { timeout: 4_000 });
  expect(Date.now() - left).toBeLessThan(4_000);
  await expect(b.page.getByTestId('call-record').last()).toContainText(/Voice call \d\d:\d\d/);
  expect(other.problems).toEqual([]);
  await other.context.close();
});
