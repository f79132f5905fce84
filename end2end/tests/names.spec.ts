// Everyone on screen has a name and a face: a first message from a friend names its row and
// its notification (whether the friendship began before or after the page loaded), and in a
// group every bubble names its sender.
import { test, expect, register, hydrated, uniqueName, secondUser, myId, befriend, openChat, send, bubble, watchNotifications } from './fixtures';

test('a first message from a friend is named in the list and in the notification', async ({ page, problems, browser }) => {
  const { setHidden, notes } = await watchNotifications(page);
  const [b, a, c] = [uniqueName('nm_ben'), uniqueName('nm_ann'), uniqueName('nm_cid')];
  const ann = await secondUser(browser);
  const cid = await secondUser(browser);
  await register(page, b, 'Ben');
  await register(ann.page, a, 'Ann');
  await register(cid.page, c, 'Cid');
  // Friends before Ben's page loads; nobody has written yet.
  await befriend(ann.page, page, b, a);
  await page.goto('/chats');
  await hydrated(page);
  await setHidden(true);

  await openChat(ann.page, `/chats/user/${await myId(page)}`);
  await send(ann.page, 'Hello Ben, it is Ann');
  const annRow = page.locator(`[data-conversation="${a}"]`);
  await expect(annRow.locator('.row-title')).toHaveText('Ann');
  await expect(annRow.locator('.avatar')).toHaveText('A');
  await expect(annRow).toContainText('Hello Ben, it is Ann');
  await expect.poll(notes).toEqual([{ title: 'Ann', body: 'Hello Ben, it is Ann' }]);

  // Friends after the page loaded: the same.
  await befriend(cid.page, page, b, c);
  await openChat(cid.page, `/chats/user/${await myId(page)}`);
  await send(cid.page, 'Cid here');
  const cidRow = page.locator(`[data-conversation="${c}"]`);
  await expect(cidRow.locator('.row-title')).toHaveText('Cid');
  await expect(cidRow.locator('.avatar')).toHaveText('C');
  await expect.poll(notes).toContainEqual({ title: 'Cid', body: 'Cid here' });

  for (const o of [ann, cid]) {
    expect(o.problems).toEqual([]);
    await o.context.close();
  }
});

test('in a group every bubble names its sender with a name and a face', async ({ page, problems, browser }) => {
  const names = [uniqueName('nm_nora'), uniqueName('nm_otto'), uniqueName('nm_pia')];
  const otto = await secondUser(browser);
  const pia = await secondUser(browser);
  await register(page, names[0], 'Nora');
  await register(otto.page, names[1], 'Otto');
  await register(pia.page, names[2], 'Pia');
  const created = await page.request.post('/api/v1/community/create', { data: { name: 'Names' } });
  const group = (await created.json()).id;
  for (const [p, name] of [[otto.page, names[1]], [pia.page, names[2]]] as const) {
    expect((await p.request.post('/api/v1/community/join', { data: { community_id: group } })).status()).toBe(200);
    expect((await page.request.post('/api/v1/community/approve', { data: { community_id: group, username: name } })).status()).toBe(200);
  }
  // Nora is friends with nobody: she knows Otto and Pia only as members.
  await openChat(otto.page, `/chats/group/${group}`);
  await openChat(pia.page, `/chats/group/${group}`);
  await send(otto.page, 'Otto says hi');
  await send(pia.page, 'Pia says hi');
  await openChat(page, `/chats/group/${group}`);
  for (const [text, name, initial] of [['Otto says hi', 'Otto', 'O'], ['Pia says hi', 'Pia', 'P']]) {
    const sender = bubble(page, text).getByTestId('bubble-sender');
    await expect(sender).toHaveText(`${initial}${name}`);
    await expect(sender.locator('.avatar')).toHaveText(initial);
  }
  // Live, too: a bubble that arrives while the group is open.
  await send(otto.page, 'and again');
  await expect(bubble(page, 'and again').getByTestId('bubble-sender')).toContainText('Otto');
  // Her own bubbles are not labelled.
  await send(page, 'Hello both');
  await expect(bubble(page, 'Hello both').getByTestId('bubble-sender')).toHaveCount(0);
  for (const o of [otto, pia]) {
    expect(o.problems).toEqual([]);
    await o.context.close();
  }
});
