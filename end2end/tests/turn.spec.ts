// Calls through a real TURN server: coturn on 127.0.0.1 (started by the Playwright config
// with the same shared secret as the app). The app's call is forced onto relayed candidates
// and must connect through them; credentials that are wrong or expired get no relay at all.
import * as crypto from 'crypto';
import { type Page } from '@playwright/test';
import { test, expect, register, uniqueName, secondUser, myId, befriend, openChat } from './fixtures';
import { turnSecret } from '../turn';

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

test('a relay-only call goes through coturn with the minted credentials; bad ones fail', async ({ page, problems, browser }) => {
  const other = await secondUser(browser);
  const [aName, bName] = [uniqueName('turn_a'), uniqueName('turn_b')];
  await register(page, aName, 'Tara');
  await register(other.page, bName, 'Ulf');
  await befriend(page, other.page, bName, aName);
  const [aId, bId] = [await myId(page), await myId(other.page)];

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

  // The app's own call, forced onto relayed candidates.
  for (const p of [page, other.page]) {
    await p.evaluate(() => localStorage.setItem('qc.ice_policy', 'relay'));
  }
  await openChat(other.page, `/chats/user/${aId}`);
  await openChat(page, `/chats/user/${bId}`);
  await page.getByTestId('start-video-call').click();
  await other.page.getByTestId('call').getByTestId('call-accept').click();
  for (const p of [page, other.page]) {
    const call = p.getByTestId('call');
    await expect(call).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
    await expect(call).toHaveAttribute('data-candidate-type', 'relay', { timeout: 10_000 });
    await expect.poll(async () => Number(await call.getAttribute('data-frames-decoded')), { timeout: 15_000 }).toBeGreaterThan(10);
  }
  await page.getByTestId('call').getByTestId('call-hangup').click();
  await expect(other.page.getByTestId('call')).toHaveAttribute('data-state', 'ended-completed');
  expect(other.problems).toEqual([]);
  await other.context.close();
});
