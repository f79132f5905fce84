// Contacts as three people use them at once: requests show who asks and their whole note
// (in the list and on the group's card), open cards follow what the others do without a
// reload, a person has one colour everywhere, and the lists load once, not on every click.
import { test, expect, register, hydrated, uniqueName, secondUser, befriend, send, bubble } from './fixtures';
import type { Page, Locator } from '@playwright/test';

/** Whether the text of `el` shows in full (no ellipsis, nothing cut off). */
async function readable(el: Locator): Promise<boolean> {
  return el.evaluate((e) => e.scrollWidth <= e.clientWidth + 1 && e.getBoundingClientRect().width >= 40);
}

const note = 'Hi Ola, this is Kim from the Thursday climbing group, we met at the wall';

test('a request shows who asks and their whole note, in the list and on the group card', async ({ page, problems, browser }) => {
  const [o, k, l] = [uniqueName('lc_ola'), uniqueName('lc_kim'), uniqueName('lc_lea')];
  const kim = await secondUser(browser);
  const lea = await secondUser(browser);
  await register(page, o, 'Ola Nordmann');
  await register(kim.page, k, 'Kim Andersen');
  await register(lea.page, l, 'Lea');
  expect((await kim.page.request.post('/api/v1/relation/request', { data: { username: o, memo: note } })).status()).toBe(200);
  const created = await page.request.post('/api/v1/community/create', { data: { name: 'Climbers' } });
  const group = (await created.json()).id;
  expect((await lea.page.request.post('/api/v1/community/join', { data: { community_id: group, memo: 'Can I join?' } })).status()).toBe(200);

  await page.goto('/contacts');
  await hydrated(page);
  const friendRow = page.locator(`[data-section="new-friends"] li[data-username="${k}"]`);
  await expect(friendRow.locator('.row-title')).toHaveText('Kim Andersen');
  await expect(friendRow.getByTestId('request-memo')).toHaveText(note);
  expect(await readable(friendRow.locator('.row-title')), 'the name is not cut').toBe(true);
  expect(await readable(friendRow.getByTestId('request-memo')), 'the note is not cut').toBe(true);
  const joinRow = page.locator(`[data-section="new-friends"] li[data-username="${l}"]`);
  await expect(joinRow.locator('.row-title')).toHaveText('Lea → Climbers');

  // The owner opens the group: the join request is on its card, with who asks and why.
  await page.locator('[data-section="groups"] li', { hasText: 'Climbers' }).click();
  const card = page.getByTestId('join-requests');
  await expect(card.locator(`li[data-username="${l}"] .row-title`)).toHaveText('Lea');
  await expect(card.getByTestId('request-memo')).toHaveText('Can I join?');
  await expect(page.getByTestId('group-detail')).toContainText('1 member ·');
  await card.getByRole('button', { name: 'Approve' }).click();
  await expect(card).toHaveCount(0);
  await expect(page.getByTestId('member-count')).toHaveText('2');
  await expect(page.getByTestId('group-detail')).toContainText('2 members ·');
  await expect(page.getByTestId('members').locator('li')).toHaveCount(2);

  // At phone width the row still reads in full.
  await page.setViewportSize({ width: 375, height: 740 });
  await page.goto('/contacts');
  await hydrated(page);
  await expect(friendRow.getByTestId('request-memo')).toHaveText(note);
  expect(await readable(friendRow.locator('.row-title'))).toBe(true);
  const [memoBox, buttonBox] = await Promise.all([
    friendRow.getByTestId('request-memo').boundingBox(),
    friendRow.getByRole('button', { name: 'Accept' }).boundingBox(),
  ]);
  expect(memoBox && memoBox.width > 150, 'the note has room').toBeTruthy();
  expect(buttonBox && memoBox && buttonBox.y >= memoBox.y + memoBox.height - 1, 'the answers sit under the note').toBeTruthy();

  for (const other of [kim, lea]) {
    expect(other.problems).toEqual([]);
    await other.context.close();
  }
});

test('open cards follow what the others do, without a reload', async ({ page, problems, browser }) => {
  const [a, b, c] = [uniqueName('lc_ada'), uniqueName('lc_bo'), uniqueName('lc_cy')];
  const bo = await secondUser(browser);
  const cy = await secondUser(browser);
  await register(page, a, 'Ada');
  await register(bo.page, b, 'Bo');
  await register(cy.page, c, 'Cy');

  // Ada asks Bo and keeps Bo's card open; Bo accepts elsewhere.
  await page.goto(`/contacts/user/${b}`);
  await hydrated(page);
  const detail = page.getByTestId('user-detail');
  await detail.locator('input[name="memo"]').fill('hello');
  await detail.getByTestId('request-form').getByRole('button', { name: 'Add friend' }).click();
  await expect(detail).toContainText('Request sent');
  expect((await bo.page.request.post('/api/v1/relation/accept', { data: { username: a } })).status()).toBe(200);
  await expect(page.getByTestId('send-message')).toBeVisible();
  await expect(detail).not.toContainText('Request sent');
  await expect(page.locator(`[data-section="friends"] li[data-username="${b}"]`)).toBeVisible();

  // Cy asks to join Ada's group and keeps its card open; Ada approves elsewhere.
  const created = await page.request.post('/api/v1/community/create', { data: { name: 'Live card' } });
  const group = (await created.json()).id;
  await cy.page.goto(`/contacts/group/${group}`);
  await hydrated(cy.page);
  await cy.page.getByTestId('join-form').getByRole('button', { name: 'Ask to join' }).click();
  await expect(cy.page.getByTestId('group-detail')).toContainText('Request sent');
  await page.goto(`/contacts/group/${group}`);
  await hydrated(page);
  await expect(page.getByTestId('join-requests')).toContainText('Cy');
  expect((await page.request.post('/api/v1/community/approve', { data: { community_id: group, username: c } })).status()).toBe(200);
  await expect(cy.page.getByTestId('leave-group')).toBeVisible();
  await expect(cy.page.getByTestId('member-count')).toHaveText('2');
  // Ada's own open card, changed by her API call in another tab: the event updates it too.
  await expect(page.getByTestId('member-count')).toHaveText('2');
  await expect(page.getByTestId('join-requests')).toHaveCount(0);

  // Bo removes Ada: her open card of Bo turns to "removed you"; a click on the same
  // item in the list shows it fresh, too.
  await page.goto(`/contacts/user/${b}`);
  await hydrated(page);
  await expect(page.getByTestId('send-message')).toBeVisible();
  expect((await bo.page.request.post('/api/v1/relation/remove', { data: { username: a } })).status()).toBe(200);
  await expect(page.getByTestId('removed-you')).toBeVisible();
  await page.locator(`[data-section="removed"] li[data-username="${b}"]`).click();
  await expect(page.getByTestId('removed-you')).toBeVisible();

  for (const other of [bo, cy]) {
    expect(other.problems).toEqual([]);
    await other.context.close();
  }
});

/** Counts the page's `relation/list` requests. */
function countLists(page: Page): () => number {
  let n = 0;
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/relation/list')) n += 1;
  });
  return () => n;
}

test('the lists load once, and a person has one colour everywhere', async ({ page, problems, browser }) => {
  const [a, b] = [uniqueName('lc_una'), uniqueName('lc_vic')];
  const vic = await secondUser(browser);
  await register(page, a, 'Una');
  await register(vic.page, b, 'Vic');
  await befriend(page, vic.page, b, a);
  // The page register() left open hears the new friendship and reloads its lists: leave it
  // before counting.
  await page.goto('about:blank');
  const lists = countLists(page);
  let sockets = 0;
  page.on('websocket', () => (sockets += 1));
  await page.goto('/chats');
  await hydrated(page);
  // Around the app without reloading the page: Contacts, Vic's card, a chat with Vic, Chats.
  await page.locator('nav.rail [data-nav="contacts"]').click();
  const friend = page.locator(`[data-section="friends"] li[data-username="${b}"]`);
  await friend.click();
  await page.getByTestId('send-message').click();
  await send(page, 'Hi Vic');
  await expect(bubble(page, 'Hi Vic')).toHaveAttribute('data-state', /sent|read/);
  await page.locator('nav.rail [data-nav="chats"]').click();
  await expect(page.locator(`[data-conversation="${b}"]`)).toBeVisible();
  await page.waitForTimeout(500);
  expect(lists(), 'six lists, loaded once').toBe(6);
  expect(sockets, 'one socket').toBe(1);

  // Vic's colour: the same class in Contacts, in the chat list and in the chat header.
  const colour = (el: Locator) => el.evaluate((e) => [...e.classList].find((c) => /^avatar-c\d+$/.test(c)));
  const inChats = await colour(page.locator(`[data-conversation="${b}"] .avatar`));
  await page.locator(`[data-conversation="${b}"]`).click();
  const inHeader = await colour(page.locator('.conversation-header .avatar'));
  await page.locator('nav.rail [data-nav="contacts"]').click();
  const inContacts = await colour(friend.locator('.avatar'));
  expect(inChats).toBeTruthy();
  expect([inHeader, inContacts]).toEqual([inChats, inChats]);

  expect(vic.problems).toEqual([]);
  await vic.context.close();
});

test('an untouched password field is not red', async ({ page, problems }) => {
  await page.goto('/login');
  await hydrated(page);
  const red = 'rgb(240, 180, 180)';
  const password = page.locator('#login-form input[name="password"]');
  const border = () => password.evaluate((e) => getComputedStyle(e).borderTopColor);
  await page.locator('#login-form input[name="username"]').focus();
  expect(await border()).not.toBe(red);
  // Typed into, emptied again and left: now it says so.
  await password.fill('x');
  await password.fill('');
  await page.locator('#login-form input[name="username"]').focus();
  await expect.poll(border).toBe(red);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a failed login keeps the username; chat says it needs JavaScript', async ({ page, problems, request }) => {
    const name = uniqueName('lc_nojs');
    expect((await request.post('/api/v1/user/register', { data: { username: name, nickname: 'No JS', password: 'correct horse battery' } })).status()).toBe(200);
    await page.goto('/login');
    const form = page.locator('#login-form');
    await form.locator('input[name="username"]').fill(name);
    await form.locator('input[name="password"]').fill('wrong password');
    await form.locator('button[type="submit"]').click();
    await expect(form.locator('[role="alert"]')).toHaveText('The username or password is incorrect.');
    await expect(form.locator('input[name="username"]')).toHaveValue(name);
    await expect(form.locator('input[name="password"]')).toHaveValue('');

    await form.locator('input[name="password"]').fill('correct horse battery');
    await form.locator('button[type="submit"]').click();
    await expect(page).toHaveURL(/\/chats$/);
    await expect(page.getByTestId('needs-js')).toBeVisible();
  });
});
