// Contacts in two browsers: find a person, send a request with a note, see the badge and
// the note, accept, see each other; remove and see "removed you"; a group with a join
// request, approval, two members, and leaving.
import { test, expect, register, hydrated, uniqueName, secondUser } from './fixtures';

test('friend request with a note, accept, remove', async ({ page, problems, browser }) => {
  const a = uniqueName('amy');
  const b = uniqueName('bill');
  const other = await secondUser(browser);
  await register(page, a, 'Amy');
  await register(other.page, b, 'Bill');

  // A finds B by username and sends a request with a note.
  await page.locator('nav.rail [data-nav="contacts"]').click();
  await page.getByTestId('add-contact').click();
  const dialog = page.getByTestId('add-dialog');
  await dialog.locator('input[name="query"]').fill(b);
  await dialog.getByRole('button', { name: 'Search' }).click();
  await dialog.getByText('Bill', { exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/contacts/user/${b}$`));
  const detail = page.getByTestId('user-detail');
  await expect(detail.locator('.card-title')).toHaveText('Bill');
  await detail.locator('input[name="memo"]').fill('Hi Bill, Amy from the club');
  await detail.getByTestId('request-form').getByRole('button', { name: 'Add friend' }).click();
  await expect(detail).toContainText('Request sent');

  // B sees a badge on Contacts and the request with its note under New friends.
  await other.page.goto('/chats');
  await hydrated(other.page);
  await expect(other.page.getByTestId('contacts-badge')).toHaveText('1');
  await other.page.locator('nav.rail [data-nav="contacts"]').click();
  const request = other.page.locator(`[data-section="new-friends"] li[data-username="${a}"]`);
  await expect(request).toContainText('Hi Bill, Amy from the club');
  await expect(other.page.getByTestId('new-friends-count')).toHaveText('1');
  await request.getByRole('button', { name: 'Accept' }).click();
  await expect(other.page.locator(`[data-section="friends"] li[data-username="${a}"]`)).toBeVisible();
  await expect(other.page.getByTestId('contacts-badge')).toHaveCount(0);

  // A sees B under Friends after navigating.
  await page.locator('nav.rail [data-nav="chats"]').click();
  await page.locator('nav.rail [data-nav="contacts"]').click();
  const friend = page.locator(`[data-section="friends"] li[data-username="${b}"]`);
  await expect(friend).toBeVisible();
  await friend.click();
  await expect(page.getByTestId('send-message')).toBeVisible();

  // A removes B; B keeps a greyed "removed you" entry.
  await page.getByRole('button', { name: 'Remove friend' }).click();
  await page.getByTestId('confirm-remove').click();
  await expect(page.locator(`[data-section="friends"] li[data-username="${b}"]`)).toHaveCount(0);
  await other.page.locator('nav.rail [data-nav="chats"]').click();
  await other.page.locator('nav.rail [data-nav="contacts"]').click();
  const removed = other.page.locator(`[data-section="removed"] li[data-username="${a}"]`);
  await expect(removed).toContainText('removed you');
  await expect(other.page.locator(`[data-section="friends"] li[data-username="${a}"]`)).toHaveCount(0);
  await removed.click();
  await expect(other.page.getByTestId('removed-you')).toBeVisible();
  await expect(other.page.getByTestId('request-form').getByRole('button', { name: 'Add friend' })).toBeVisible();

  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a group: create, ask to join, approve, two members, leave', async ({ page, problems, browser }) => {
  const owner = uniqueName('olga');
  const joiner = uniqueName('jack');
  const groupName = `Book club ${Date.now().toString(36)}`;
  const other = await secondUser(browser);
  await register(page, owner, 'Olga');
  await register(other.page, joiner, 'Jack');

  // A creates the group.
  await page.locator('nav.rail [data-nav="contacts"]').click();
  await page.getByTestId('add-contact').click();
  await page.getByRole('tab', { name: 'Create group' }).click();
  const create = page.getByTestId('create-group-form');
  await create.locator('input[name="name"]').fill(groupName);
  await create.locator('input[name="description"]').fill('We read one book a month');
  await create.getByRole('button', { name: 'Create group' }).click();
  await expect(page.getByTestId('group-name')).toHaveText(groupName);
  await expect(page.getByTestId('member-count')).toHaveText('1');

  // B finds it by name and asks to join with a note.
  await other.page.locator('nav.rail [data-nav="contacts"]').click();
  await other.page.getByTestId('add-contact').click();
  const dialog = other.page.getByTestId('add-dialog');
  await dialog.getByRole('tab', { name: 'Find groups' }).click();
  await dialog.locator('input[name="query"]').fill(groupName.toLowerCase());
  await dialog.getByRole('button', { name: 'Search' }).click();
  await dialog.getByText(groupName).click();
  const join = other.page.getByTestId('join-form');
  await join.locator('input[name="memo"]').fill('I love books');
  await join.getByRole('button', { name: 'Ask to join' }).click();
  await expect(other.page.getByTestId('group-detail')).toContainText('Request sent');

  // A sees the request with the note and approves it.
  await page.locator('nav.rail [data-nav="chats"]').click();
  await expect(page.getByTestId('contacts-badge')).toHaveText('1');
  await page.locator('nav.rail [data-nav="contacts"]').click();
  const request = page.locator(`[data-section="new-friends"] li[data-username="${joiner}"]`);
  await expect(request).toContainText('I love books');
  await request.getByRole('button', { name: 'Approve' }).click();
  await expect(request).toHaveCount(0);

  // Both see two members.
  await page.locator(`[data-section="groups"] li`, { hasText: groupName }).click();
  await expect(page.getByTestId('member-count')).toHaveText('2');
  await expect(page.getByTestId('members').locator('li')).toHaveCount(2);
  await other.page.locator('nav.rail [data-nav="chats"]').click();
  await other.page.locator('nav.rail [data-nav="contacts"]').click();
  await other.page.locator(`[data-section="groups"] li`, { hasText: groupName }).click();
  await expect(other.page.getByTestId('members').locator('li')).toHaveCount(2);
  await expect(other.page.getByTestId('members')).toContainText('Olga');

  // B leaves; A sees one member again.
  await other.page.getByTestId('leave-group').click();
  await expect(other.page).toHaveURL(/\/contacts$/);
  await expect(other.page.locator(`[data-section="groups"] li`, { hasText: groupName })).toHaveCount(0);
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('member-count')).toHaveText('1');

  expect(other.problems).toEqual([]);
  await other.context.close();
});
