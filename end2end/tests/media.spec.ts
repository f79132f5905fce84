// Pictures and files in real browsers: sent by the file picker and by paste, seen by the
// friend as thumbnails of the right shape and opened in the viewer (keyboard: arrows, Esc,
// + and − to zoom); a PDF downloads byte for byte; a slow upload shows its progress and can
// be cancelled.
import * as zlib from 'zlib';
import * as fs from 'fs';
import { test, expect, register, uniqueName, secondUser, myId, befriend, openChat, controlNetwork, hydrated, watchConsole } from './fixtures';

/** A PNG of `w` × `h`: left half one colour, right half another. */
function png(w: number, h: number, left: [number, number, number], right: [number, number, number]): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = x < w / 2 ? left : right;
      raw.set([r, g, b], y * (w * 3 + 1) + 1 + x * 3);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A PDF-looking file of `n` bytes that does not compress. */
function pdf(n: number): Buffer {
  const bytes = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = x >> 16;
  }
  bytes.write('%PDF-1.7\n', 0, 'ascii');
  return bytes;
}

async function friends(page: import('@playwright/test').Page, browser: import('@playwright/test').Browser) {
  const a = uniqueName('media_a');
  const b = uniqueName('media_b');
  const other = await secondUser(browser);
  await register(page, a, 'Ada');
  await register(other.page, b, 'Ben');
  await befriend(page, other.page, b, a);
  const aId = await myId(page);
  const bId = await myId(other.page);
  await openChat(page, `/chats/user/${bId}`);
  await openChat(other.page, `/chats/user/${aId}`);
  return { other, a, b };
}

test('pictures by the file picker and by paste reach the friend, who opens them in the viewer', async ({ page, problems, browser }) => {
  const { other } = await friends(page, browser);
  // Ben has a second tab, on the chat list: the conversation is new and not open there.
  const tab2 = await other.context.newPage();
  const tab2Problems = watchConsole(tab2);
  await tab2.goto('/chats');
  await hydrated(tab2);

  // A wide picture through the paperclip's file picker.
  const wide = png(800, 400, [220, 30, 30], [30, 30, 220]);
  await page.getByTestId('file-input').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: wide });
  const mine = page.getByTestId('messages').getByTestId('bubble-image');
  await expect(mine).toHaveCount(1);
  const theirs = other.page.getByTestId('messages').getByTestId('bubble-image');
  await expect(theirs).toHaveCount(1);
  // The thumbnail has loaded, in the picture's shape (2:1) from the first paint.
  const img = theirs.first().locator('img');
  await expect(img).toHaveJSProperty('complete', true);
  expect(await img.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(320);
  const box = await img.boundingBox();
  expect(box).not.toBeNull();
  expect(Math.round(box!.width / box!.height)).toBe(2);
  // The second tab lists the new conversation by name with the picture as its last
  // message (the first tab, where it is open, has read it), and shows the thumbnail once
  // opened.
  const row = tab2.locator('.conversation-row', { hasText: 'Ada' });
  await expect(row).toContainText('[Picture]');
  await row.locator('a').click();
  await expect(tab2.getByTestId('messages').getByTestId('bubble-image').locator('img')).toHaveJSProperty('complete', true);
  expect(tab2Problems).toEqual([]);
  await tab2.close();

  // A tall screenshot pasted into the composer.
  const tall = png(300, 600, [20, 160, 60], [240, 200, 0]);
  await page.getByTestId('composer').locator('textarea').evaluate((el, b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'screenshot.png', { type: 'image/png' }));
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, tall.toString('base64'));
  await expect(theirs).toHaveCount(2);
  await expect(page.getByTestId('composer').locator('textarea')).toHaveValue('');

  // The friend opens the first one full size, goes to the next with →, closes with Esc.
  await theirs.first().click();
  const viewer = other.page.getByTestId('viewer');
  await expect(viewer).toBeVisible();
  await expect(viewer).toContainText('sunset.png');
  await expect(viewer).toContainText('1 / 2');
  const full = viewer.locator('img');
  await expect(full).toHaveJSProperty('complete', true);
  expect(await full.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(800);
  // A click on the picture shows it at its own size, another fits it again; + and − too.
  await other.page.setViewportSize({ width: 390, height: 740 });
  const fitted = (await full.boundingBox())!;
  expect(fitted.width).toBeLessThanOrEqual(390);
  await full.click();
  await expect(viewer.locator('.viewer-stage')).toHaveClass(/zoomed/);
  expect((await full.boundingBox())!.width).toBe(800);
  // It is moved around by scrolling its stage, and the viewer stays the screen's size.
  const stage = viewer.locator('.viewer-stage');
  const room = await stage.evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth }));
  expect(room.scroll).toBeGreaterThan(room.client);
  expect((await viewer.boundingBox())!.width).toBeLessThanOrEqual(390);
  await full.click();
  await expect(stage).not.toHaveClass(/zoomed/);
  await other.page.keyboard.press('+');
  await expect(stage).toHaveClass(/zoomed/);
  await other.page.keyboard.press('-');
  await expect(stage).not.toHaveClass(/zoomed/);
  // Zoomed, the next picture opens fitted.
  await other.page.keyboard.press('+');
  await other.page.setViewportSize({ width: 1280, height: 720 });
  await other.page.keyboard.press('ArrowRight');
  await expect(viewer).toContainText('screenshot.png');
  await expect(viewer).toContainText('2 / 2');
  await expect(stage).not.toHaveClass(/zoomed/);
  await other.page.keyboard.press('Escape');
  await expect(viewer).toHaveCount(0);

  // On a phone-sized window the viewer fits the screen.
  await other.page.setViewportSize({ width: 390, height: 740 });
  await theirs.nth(1).click();
  const shown = await other.page.getByTestId('viewer').locator('img').boundingBox();
  expect(shown!.width).toBeLessThanOrEqual(390);
  expect(shown!.height).toBeLessThanOrEqual(740);
  await other.page.keyboard.press('Escape');

  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a PDF arrives as a file and downloads byte for byte', async ({ page, problems, browser }) => {
  const { other } = await friends(page, browser);
  const bytes = pdf(150_000);
  await page.getByTestId('file-input').setInputFiles({ name: 'Plan 计划.pdf', mimeType: 'application/pdf', buffer: bytes });
  const file = other.page.getByTestId('messages').getByTestId('bubble-file');
  await expect(file).toHaveCount(1);
  await expect(file).toContainText('Plan 计划.pdf');
  await expect(file).toContainText('146.5 KB');
  const [download] = await Promise.all([other.page.waitForEvent('download'), file.click()]);
  expect(download.suggestedFilename()).toBe('Plan 计划.pdf');
  const saved = fs.readFileSync(await download.path());
  expect(saved.equals(bytes)).toBe(true);
  // The conversation list names it.
  await expect(other.page.locator('.conversation-row, [data-conversation]').first()).toContainText('Plan 计划.pdf');
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a slow upload shows its progress and can be cancelled; nothing is sent', async ({ page, problems, browser }) => {
  const { other } = await friends(page, browser);
  // 256 KB/s up: a 2 MB file takes about eight seconds.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: 256 * 1024,
  });
  await page.getByTestId('file-input').setInputFiles({ name: 'big.pdf', mimeType: 'application/pdf', buffer: pdf(2_000_000) });
  const upload = page.getByTestId('upload');
  await expect(upload).toBeVisible();
  await expect(upload).toContainText('big.pdf');
  // Progress moves past 0 % and is shown as a number too.
  await expect
    .poll(async () => Number((await upload.getByTestId('upload-percent').textContent())?.replace('%', '')), { timeout: 15_000 })
    .toBeGreaterThan(0);
  // The user can keep typing meanwhile.
  await page.getByTestId('composer').locator('textarea').fill('still typing');
  await upload.getByTestId('upload-cancel').click();
  await expect(upload).toHaveCount(0);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  // Nothing reaches the friend.
  await page.waitForTimeout(1000);
  await expect(other.page.getByTestId('messages').getByTestId('bubble-file')).toHaveCount(0);
  await expect(page.getByTestId('messages').getByTestId('bubble-file')).toHaveCount(0);
  await expect(page.getByTestId('composer').locator('textarea')).toHaveValue('still typing');
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('an upload goes on while the user is in another tab, and is sent', async ({ page, problems, browser }) => {
  const { other } = await friends(page, browser);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
  await page.getByTestId('file-input').setInputFiles({ name: 'minutes.pdf', mimeType: 'application/pdf', buffer: pdf(1_500_000) });
  await expect
    .poll(async () => Number((await page.getByTestId('upload-percent').textContent())?.replace('%', '')), { timeout: 15_000 })
    .toBeGreaterThan(0);
  // The user goes to Contacts (in the app, no reload) while it uploads.
  await page.locator('[data-nav="contacts"]').click();
  await expect(page).toHaveURL(/\/contacts$/);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  // It still becomes a message: the friend gets it, and it is there on return.
  await expect(other.page.getByTestId('messages').getByTestId('bubble-file')).toHaveCount(1, { timeout: 30_000 });
  await page.locator('[data-nav="chats"]').click();
  await page.locator('.conversation-row').first().locator('a').click();
  await expect(page.getByTestId('messages').getByTestId('bubble-file')).toContainText('minutes.pdf');
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a new profile picture shows in the friend\'s chat list without a reload', async ({ page, problems, browser }) => {
  const { other } = await friends(page, browser);
  const row = other.page.locator('.conversation-row').first();
  await expect(row.locator('.avatar img')).toHaveCount(0);
  await page.goto('/me/profile');
  await expect(page.getByTestId('avatar-change')).toBeVisible();
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByTestId('avatar-input').setInputFiles({
    name: 'me.png',
    mimeType: 'image/png',
    buffer: png(900, 600, [200, 40, 40], [40, 40, 200]),
  });
  // The crop dialog offers the middle square; the mouse takes it.
  await page.getByTestId('crop-use').click();
  // Mine shows it, square.
  const mine = page.locator('.avatar-editor .avatar img');
  await expect(mine).toHaveAttribute('src', /\/api\/v1\/media\/.+\/thumb$/);
  await expect(mine).toHaveJSProperty('complete', true);
  expect(await mine.evaluate((el: HTMLImageElement) => [el.naturalWidth, el.naturalHeight])).toEqual([320, 320]);
  // The friend's list shows it live.
  const theirs = row.locator('.avatar img');
  await expect(theirs).toHaveAttribute('src', (await mine.getAttribute('src'))!);
  await expect(theirs).toHaveJSProperty('complete', true);
  expect(await theirs.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(320);
  // Back to initials, live too.
  await page.getByTestId('avatar-remove').click();
  await expect(theirs).toHaveCount(0);
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a picture added offline uploads and sends when the connection returns; an uploaded one outlives a reload', async ({ page, problems, browser }) => {
  const setUp = await controlNetwork(page);
  const { other } = await friends(page, browser);
  const theirs = other.page.getByTestId('messages').getByTestId('bubble-image');
  const mine = page.getByTestId('messages').getByTestId('bubble-image');
  const myRows = page.getByTestId('messages').locator('.bubble-row', { has: page.getByTestId('bubble-image') });

  // The network drops (the socket and the uploads): the picture waits, and says so.
  const media = /\/api\/v1\/media\?/;
  await page.route(media, (route) => route.abort('internetdisconnected'));
  await setUp(false);
  await expect(page.getByTestId('conn-state')).toBeVisible();
  await page.getByTestId('file-input').setInputFiles({ name: 'offline.png', mimeType: 'image/png', buffer: png(300, 200, [10, 120, 10], [10, 10, 120]) });
  await expect(page.getByTestId('upload-waiting')).toBeVisible();
  // It waits as the user's own bubble, showing the picture from their disk.
  const preview = page.getByTestId('upload').locator('img.upload-preview');
  await expect(preview).toHaveJSProperty('complete', true);
  expect(await preview.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(300);
  await page.waitForTimeout(1500);
  await expect(theirs).toHaveCount(0);

  // It comes back: the upload goes on by itself and the picture is sent, once.
  await page.unroute(media);
  await setUp(true);
  await expect(page.getByTestId('conn-state')).toHaveCount(0, { timeout: 20_000 });
  await expect(page.getByTestId('upload')).toHaveCount(0, { timeout: 20_000 });
  await expect(theirs).toHaveCount(1);
  await expect(mine).toHaveCount(1);
  await expect(myRows).toHaveAttribute('data-state', /sent|read/);

  // Only the socket is down: the file is stored but the message cannot go out yet. The
  // page is reloaded meanwhile; the stored picture is not lost and goes out on return.
  await setUp(false);
  await expect(page.getByTestId('conn-state')).toBeVisible();
  await page.getByTestId('file-input').setInputFiles({ name: 'reloaded.png', mimeType: 'image/png', buffer: png(200, 300, [120, 10, 10], [10, 120, 120]) });
  await expect(mine).toHaveCount(2);
  await expect(myRows.nth(1)).toHaveAttribute('data-state', 'sending');
  await page.reload();
  await hydrated(page);
  const kept = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('qc.unsent.')).map((k) => localStorage.getItem(k)).join());
  expect(kept).toContain('reloaded.png');
  await setUp(true);
  await expect(myRows.nth(1)).toHaveAttribute('data-state', /sent|read/, { timeout: 20_000 });
  await expect(mine).toHaveCount(2);
  await expect(theirs).toHaveCount(2);
  await expect(theirs.nth(1).locator('img')).toHaveAttribute('alt', 'reloaded.png');

  // The refused requests while "offline" are the test's doing, not the page's problem.
  problems.splice(0, problems.length, ...problems.filter((p) => !/ERR_INTERNET_DISCONNECTED/.test(p)));
  expect(other.problems).toEqual([]);
  await other.context.close();
});

/** The colour at (`x`, `y`) (fractions of its size) of a loaded same-origin picture. */
async function colourAt(img: import('@playwright/test').Locator, x: number, y: number): Promise<number[]> {
  return img.evaluate((el: HTMLImageElement, [fx, fy]) => {
    const c = document.createElement('canvas');
    c.width = el.naturalWidth;
    c.height = el.naturalHeight;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(el, 0, 0);
    return Array.from(ctx.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data.slice(0, 3));
  }, [x, y]);
}

const isRed = ([r, g, b]: number[]) => r > 150 && g < 90 && b < 90;

test('a group\'s owner crops its picture by keyboard; a member sees it live', async ({ page, problems, browser }) => {
  const { other, b: benName } = await friends(page, browser);
  const created = await page.request.post('/api/v1/community/create', { data: { name: 'Hikers', description: '' } });
  expect(created.status()).toBe(200);
  const gid = (await created.json()).id as string;
  expect((await other.page.request.post('/api/v1/community/join', { data: { community_id: gid, memo: '' } })).status()).toBe(200);
  expect((await page.request.post('/api/v1/community/approve', { data: { community_id: gid, username: benName } })).status()).toBe(200);
  await other.page.goto(`/chats/group/${gid}`);
  await other.page.locator('body[data-hydrated="true"]').waitFor();
  const groupRow = other.page.locator('.conversation-row', { hasText: 'Hikers' });
  await expect(groupRow).toHaveCount(1);
  await expect(groupRow.locator('.avatar img')).toHaveCount(0);

  await page.goto(`/contacts/group/${gid}`);
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.locator('.owner-tools summary').click();
  // Left half red, right half blue: the middle square would show both.
  await page.getByTestId('avatar-input').setInputFiles({ name: 'peak.png', mimeType: 'image/png', buffer: png(900, 600, [220, 30, 30], [30, 30, 220]) });
  const dialog = page.getByTestId('crop-dialog');
  await expect(dialog).toBeVisible();
  await expect(page.getByTestId('crop-frame')).toBeFocused();
  // Zoom in twice, then move the picture right until only red is in the frame.
  await page.getByTestId('crop-zoom').fill('2');
  await page.getByTestId('crop-frame').focus();
  for (let i = 0; i < 10; i++) await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  await expect(dialog).toHaveCount(0);
  const mine = page.locator('.card-head .avatar img');
  await expect(mine).toHaveAttribute('src', /\/api\/v1\/media\/.+\/thumb$/);
  await expect(mine).toHaveJSProperty('complete', true);
  for (const x of [0.05, 0.5, 0.95]) expect(isRed(await colourAt(mine, x, 0.5)), `x=${x}`).toBe(true);

  // The member's chat list shows it without a reload.
  const theirs = groupRow.locator('.avatar img');
  await expect(theirs).toHaveAttribute('src', (await mine.getAttribute('src'))!);
  await expect(theirs).toHaveJSProperty('complete', true);

  // On a phone-sized window the whole dialog fits; Esc cancels a crop, nothing changes.
  await page.setViewportSize({ width: 360, height: 640 });
  await page.getByTestId('avatar-input').setInputFiles({ name: 'blue.png', mimeType: 'image/png', buffer: png(400, 400, [30, 30, 220], [30, 30, 220]) });
  await expect(dialog).toBeVisible();
  for (const part of ['crop-frame', 'crop-zoom', 'crop-use']) {
    await expect(page.getByTestId(part)).toBeInViewport({ ratio: 1 });
  }
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
  await expect(theirs).toHaveAttribute('src', (await mine.getAttribute('src'))!);
  expect(other.problems).toEqual([]);
  await other.context.close();
});
