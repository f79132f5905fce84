// Accounts in a real browser: register, profile, reload, log out and in, language, and the
// login page without JavaScript.
import * as path from 'path';
import { test, expect, register, login, hydrated, uniqueName, secondUser, PASSWORD } from './fixtures';

const screenshots = path.resolve(__dirname, '../../docs/screenshots');

test('two users register, edit their profiles, reload, log out and back in', async ({ page, problems, browser }) => {
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  const other = await secondUser(browser);

  await register(page, alice, 'Alice');
  await register(other.page, bob, 'Bob');

  // Each sees their own name in the Me tab.
  await page.locator('nav.rail [data-nav="me"]').click();
  await expect(page.getByTestId('me-nickname')).toHaveText('Alice');
  await other.page.locator('nav.rail [data-nav="me"]').click();
  await expect(other.page.getByTestId('me-nickname')).toHaveText('Bob');

  // Alice edits her profile.
  await page.getByRole('link', { name: 'Edit profile' }).click();
  const form = page.locator('#profile-form');
  await form.locator('input[name="nickname"]').fill('Alice Liddell');
  await form.locator('label.segment', { hasText: 'Female' }).click();
  await form.locator('input[name="signature"]').fill('Down the rabbit hole');
  await form.locator('input[name="mobile"]').fill('+44 20 7946 0000');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect(form.getByRole('status')).toHaveText('Saved');
  await expect(page.getByTestId('me-nickname')).toHaveText('Alice Liddell');

  // A refused value shows an error and keeps what was stored.
  await form.locator('input[name="mobile"]').fill('call me maybe');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect(form.getByRole('alert')).toContainText('mobile number');

  // Reload: everything stored is still there.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('me-nickname')).toHaveText('Alice Liddell');
  await expect(page.getByTestId('me-signature')).toHaveText('Down the rabbit hole');
  await expect(form.locator('input[name="mobile"]')).toHaveValue('+44 20 7946 0000');
  await expect(form.locator('input[value="female"]')).toBeChecked();

  // Bob's view is his own.
  await other.page.reload();
  await expect(other.page.getByTestId('me-nickname')).toHaveText('Bob');

  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto('/me/profile');
  await hydrated(page);
  await page.screenshot({ path: path.join(screenshots, 'shell.png') });

  // Log out, then back in.
  await page.goto('/me');
  await hydrated(page);
  await page.getByTestId('logout').click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/chats');
  await expect(page).toHaveURL(/\/login$/);
  await login(page, alice);
  await expect(page).toHaveURL(/\/chats$/);
  await page.locator('nav.rail [data-nav="me"]').click();
  await expect(page.getByTestId('me-nickname')).toHaveText('Alice Liddell');

  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('a wrong password is refused in words, the right one after it works', async ({ page, problems, browser }) => {
  const carol = uniqueName('carol');
  const other = await secondUser(browser);
  await register(other.page, carol, 'Carol');
  await other.context.close();

  await login(page, carol, 'not my password');
  await expect(page.locator('#login-form [role="alert"]')).toHaveText('The username or password is incorrect.');
  await expect(page).toHaveURL(/\/login/);
  await login(page, carol);
  await expect(page).toHaveURL(/\/chats$/);
});

test('password change signs out the other browser', async ({ page, problems, browser }) => {
  const dave = uniqueName('dave');
  await register(page, dave, 'Dave');
  const other = await secondUser(browser);
  await login(other.page, dave);
  await expect(other.page).toHaveURL(/\/chats$/);

  await page.goto('/me/password');
  await hydrated(page);
  const form = page.locator('#password-form');
  await form.locator('input[name="current_password"]').fill(PASSWORD);
  await form.locator('input[name="new_password"]').fill('a new long secret');
  await form.locator('input[name="confirm_password"]').fill('a new long secret');
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(form.getByRole('status')).toContainText('Password changed');

  await other.page.reload();
  await expect(other.page).toHaveURL(/\/login$/);
  await login(other.page, dave, 'a new long secret');
  await expect(other.page).toHaveURL(/\/chats$/);
  expect(other.problems).toEqual([]);
  await other.context.close();
});

test('the language switches, is remembered, and defaults from the browser', async ({ page, problems, browser }) => {
  await page.goto('/login');
  await hydrated(page);
  await expect(page.locator('#login-form button[type="submit"]')).toHaveText('Log in');
  await page.getByRole('button', { name: '中文' }).click();
  await expect(page.locator('#login-form button[type="submit"]')).toHaveText('登录');
  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
  await page.reload();
  await hydrated(page);
  await expect(page.locator('#login-form button[type="submit"]')).toHaveText('登录');

  // A browser that prefers Chinese gets Chinese without choosing.
  const zh = await secondUser(browser, 'zh-CN');
  await zh.page.goto('/login');
  await hydrated(zh.page);
  await expect(zh.page.locator('#login-form button[type="submit"]')).toHaveText('登录');
  const name = uniqueName('lang');
  await zh.page.goto('/register');
  await hydrated(zh.page);
  const form = zh.page.locator('#register-form');
  await form.locator('input[name="username"]').fill(name);
  await form.locator('input[name="nickname"]').fill('小明');
  await form.locator('input[name="password"]').fill(PASSWORD);
  await form.locator('button[type="submit"]').click();
  await expect(zh.page).toHaveURL(/\/chats$/);
  await expect(zh.page.locator('nav.rail [data-nav="chats"]')).toHaveText('消息');
  // Switch to English from the Me tab.
  await zh.page.goto('/me/language');
  await hydrated(zh.page);
  await zh.page.getByText('English', { exact: true }).click();
  await expect(zh.page.locator('nav.rail [data-nav="chats"]')).toHaveText('Chats');
  await zh.page.reload();
  await expect(zh.page.locator('nav.rail [data-nav="chats"]')).toHaveText('Chats');
  expect(zh.problems).toEqual([]);
  await zh.context.close();
});

test('a phone-sized window shows one pane with tabs at the bottom', async ({ page, problems }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await register(page, uniqueName('phone'), 'Phone User');
  const rail = page.locator('nav.rail');
  const box = await rail.boundingBox();
  expect(box && box.y > 700, 'the tab bar sits at the bottom').toBeTruthy();
  await page.locator('nav.rail [data-nav="me"]').click();
  await expect(page.locator('.detail-pane')).toBeHidden();
  await page.getByRole('link', { name: 'Edit profile' }).click();
  await expect(page.locator('#profile-form')).toBeVisible();
  await expect(page.locator('.list-pane')).toBeHidden();
  await page.screenshot({ path: path.join(screenshots, 'phone-profile.png') });
  await page.getByRole('link', { name: 'Back' }).click();
  await expect(page.getByTestId('me-nickname')).toBeVisible();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the login page renders and logs in', async ({ page, problems, request }) => {
    const erin = uniqueName('erin');
    const res = await request.post('/api/v1/user/register', {
      data: { username: erin, nickname: 'Erin', password: PASSWORD },
    });
    expect(res.status()).toBe(200);

    await page.goto('/login');
    const form = page.locator('#login-form');
    await form.locator('input[name="username"]').fill(erin);
    await form.locator('input[name="password"]').fill('wrong password');
    await form.locator('button[type="submit"]').click();
    await expect(page.locator('#login-form [role="alert"]')).toHaveText('The username or password is incorrect.');

    await form.locator('input[name="username"]').fill(erin);
    await form.locator('input[name="password"]').fill(PASSWORD);
    await form.locator('button[type="submit"]').click();
    await expect(page).toHaveURL(/\/chats$/);
    await expect(page.locator('nav.rail')).toBeVisible();
    await expect(page.locator('.rail-me')).toHaveAttribute('title', 'Erin');
  });
});
