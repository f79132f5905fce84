// Calls through a real TURN server: coturn on 127.0.0.1 (started by the Playwright config
// with the same shared secret as the app). The app's call is forced onto relayed candidates
// and must connect through them; credentials that are wrong or expired get no relay at all.
import * as crypto from 'crypto';
import * as fs from 'fs';
import { type Page, type Browser } from '@playwright/test';
import { test, expect, register, uniqueName, secondUser, myId, befriend, openChat } from './fixtures';
import { turnSecret, turnPidFile } from '../turn';

type Server = { urls: string[]; username?: string; credential?: string };

/** Relay candidates a fresh connection gathers with `servers` and relay-only ICE. */
async function relayCandidates(page: Page, servers: Server[]): Promise<number> {
  return page.evaluate(async (iceServers) => {
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
    pc.createDataChannel('probe');
    let relays = 0;
    const done = new Promise<void>((resolve) => {
      pc.onicecandidate = (e) => {
        if (!e.candidate) resolve();
        else if (e.candidate.type === 'relay') relays += 1;
      };
      setTimeout(resolve, 8000);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await done;
    pc.close();
    return relays;
  }, servers);
}

const framesDecoded = async (p: Page) => Number(await p.getByTestId('call').getAttribute('data-frames-decoded'));

/** A starts a video call to B, both forced onto relayed candidates; answers once media flows. */
async function relayOnlyCall(a: Page, b: Page, aId: string, bId: string) {
  for (const p of [a, b]) {
    await p.evaluate(() => localStorage.setItem('qc.ice_policy', 'relay'));
  }
  await openChat(b, `/chats/user/${aId}`);
  await openChat(a, `/chats/user/${bId}`);
  await a.getByTestId('start-video-call').click();
  await b.getByTestId('call').getByTestId('call-accept').click();
  for (const p of [a, b]) {
    const call = p.getByTestId('call');
    await expect(call).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
    await expect(call).toHaveAttribute('data-candidate-type', 'relay', { timeout: 10_000 });
    await expect.poll(() => framesDecoded(p), { timeout: 15_000 }).toBeGreaterThan(10);
  }
}

async function friends(page: Page, browser: Browser, prefix: string) {
  const other = await secondUser(browser);
  const [aName, bName] = [uniqueName(`${prefix}_a`), uniqueName(`${prefix}_b`)];
  await register(page, aName, 'Tara');
  await register(other.page, bName, 'Ulf');
  await befriend(page, other.page, bName, aName);
  return { other, aId: await myId(page), bId: await myId(other.page) };
}

test('a relay-only call goes through coturn with the minted credentials; bad ones fail', async ({ page, problems, browser }) => {
  const { other, aId, bId } = await friends(page, browser, 'turn');

  // The server's minted credentials: username "<expiry>:<user id>".
  const res = await page.request.post('/api/v1/call/ice_servers', { data: {} });
  expect(res.status()).toBe(200);
  const servers: Server[] = await res.json();
  const turn = servers.find((s) => s.urls.some((u) => u.startsWith('turn:')));
  expect(turn?.username).toMatch(new RegExp(`^\\d+:${aId}$`));
  expect(await relayCandidates(page, servers)).toBeGreaterThan(0);

  // A wrong password, and a correctly signed but expired username, are refused by coturn.
  expect(await relayCandidates(page, [{ ...turn!, credential: 'wrong' }])).toBe(0);
  const expired = `${Math.floor(Date.now() / 1000) - 60}:${aId}`;
  const signed = crypto.createHmac('sha1', turnSecret).update(expired).digest('base64');
  expect(await relayCandidates(page, [{ ...turn!, username: expired, credential: signed }])).toBe(0);

  await relayOnlyCall(page, other.page, aId, bId);
  await page.getByTestId('call').getByTestId('call-hangup').click();
  await expect(other.page.getByTestId('call')).toHaveAttribute('data-state', 'ended-completed');
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a call whose network path breaks says Reconnecting… and comes back', async ({ page, problems, browser }) => {
  const { other, aId, bId } = await friends(page, browser, 'ice');
  await relayOnlyCall(page, other.page, aId, bId);

  // The call's only path is through coturn: pausing coturn breaks it on both sides.
  const turnPid = Number(fs.readFileSync(turnPidFile!, 'utf8').trim());
  expect(turnPid).toBeGreaterThan(1);
  process.kill(turnPid, 'SIGSTOP');
  try {
    for (const p of [page, other.page]) {
      const call = p.getByTestId('call');
      await expect(call).toHaveAttribute('data-state', 'reconnecting', { timeout: 20_000 });
      await expect(call.getByTestId('call-status')).toHaveText('Reconnecting…');
    }
  } finally {
    process.kill(turnPid, 'SIGCONT');
  }
  // The path is back: the call recovers by itself and video flows again.
  for (const p of [page, other.page]) {
    await expect(p.getByTestId('call')).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
  }
  for (const p of [page, other.page]) {
    const before = await framesDecoded(p);
    await expect.poll(() => framesDecoded(p), { timeout: 10_000 }).toBeGreaterThan(before + 10);
  }
  await page.getByTestId('call').getByTestId('call-hangup').click();
  await expect(other.page.getByTestId('call')).toHaveAttribute('data-state', 'ended-completed');
  expect(other.problems).toEqual([]);
  await other.context.close();
});
