// Sessions ended elsewhere, seen from the browser: the device list under Me, "sign out
// everywhere else", and a password change that sends the other device's open page to the
// login page at once (no reload, no stale chat that still receives messages). Everything
// runs under the server's Content-Security-Policy; any violation is a console error, which
// fails the test.
import { test, expect, register, login, hydrated, uniqueName, secondUser, PASSWORD } from './fixtures';

test('signing out elsewhere and changing the password end the other pages at once', async ({ page, problems, browser }) => {
  const name = uniqueName('dev');
  await register(page, name, 'Devi');

  // The same person on a phone.
  const phone = await secondUser(browser);
  await login(phone.page, name);
  await expect(phone.page).toHaveURL(/\/chats$/);
  await hydrated(phone.page);
  // Its socket is up (the status line says nothing).
  await expect(phone.page.getByTestId('conn-state')).toHaveCount(0);

  // The laptop lists both devices, this one first, and signs the phone out.
  await page.goto('/me/sessions');
  await hydrated(page);
  const rows = page.getByTestId('session');
  await expect(rows).toHaveCount(2);
  await expect(rows.first()).toHaveAttribute('data-current', 'true');
  await expect(rows.first()).toContainText('This device');
  await expect(rows.first()).toContainText('127.0.0.1');
  await expect(rows.nth(1)).toContainText('Chrome');
  await page.getByTestId('sign-out-others').click();
  await expect(page.getByRole('status')).toContainText('Every other device has been signed out.');
  await expect(rows).toHaveCount(1);

  // The phone's open page leaves for the login page by itself.
  await expect(phone.page).toHaveURL(/\/login$/, { timeout: 10_000 });
  await expect(phone.page.locator('#login-form')).toBeVisible();

  // Signed in again on the phone; the laptop changes the password: the phone goes again.
  await login(phone.page, name);
  await expect(phone.page).toHaveURL(/\/chats$/);
  await hydrated(phone.page);
  await page.goto('/me/password');
  await hydrated(page);
  const form = page.locator('#password-form');
  await form.locator('input[name="current_password"]').fill(PASSWORD);
  await form.locator('input[name="new_password"]').fill('a whole new secret');
  await form.locator('input[name="confirm_password"]').fill('a whole new secret');
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(form.getByRole('status')).toContainText('Password changed');
  await expect(phone.page).toHaveURL(/\/login$/, { timeout: 10_000 });

  // The laptop itself stays signed in and connected.
  await page.goto('/chats');
  await hydrated(page);
  await expect(page.locator('nav.rail')).toBeVisible();
  await expect(page.getByTestId('conn-state')).toHaveCount(0);

  // In Chinese too.
  await page.goto('/me/sessions');
  await hydrated(page);
  await page.context().addCookies([{ name: 'qc_lang', value: 'zh', url: page.url() }]);
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('session').first()).toContainText('本机');

  expect(phone.problems).toEqual([]);
  await phone.context.close();
});

test('a login form posted from another site signs nobody in', async ({ page, problems, baseURL }) => {
  const victim = uniqueName('victim');
  const attacker = uniqueName('attacker');
  await register(page, attacker, 'Attacker');
  await page.goto('/me');
  await hydrated(page);
  await page.getByTestId('logout').click();
  await expect(page).toHaveURL(/\/login$/);
  await register(page, victim, 'Victim');
  await page.goto('/me');
  await hydrated(page);
  await page.getByTestId('logout').click();
  await expect(page).toHaveURL(/\/login$/);

  // A page on another site (Playwright serves it at 127.0.0.2, another site to the browser
  // and still on loopback) posts our login form with the attacker's account, hoping the
  // victim then types into it.
  await page.route('http://127.0.0.2:3999/**', (route) => route.fulfill({
    contentType: 'text/html',
    body: `<form id="f" method="post" action="${baseURL}/api/v1/user/login_form">
             <input name="username" value="${attacker}"><input name="password" value="${PASSWORD}">
           </form><script>document.getElementById('f').submit()</script>`,
  }));
  const refused = page.waitForResponse((res) => res.url().endsWith('/api/v1/user/login_form'));
  await page.goto('http://127.0.0.2:3999/prize');
  expect((await refused).status()).toBe(403);
  const cookies = await page.context().cookies(baseURL);
  expect(cookies.filter((c) => c.name === 'qc_session')).toEqual([]);
  // Back on our site nobody is signed in.
  await page.goto('/chats');
  await expect(page).toHaveURL(/\/login$/);
});

test('the page refuses a script injected into it', async ({ page, problems }) => {
  await register(page, uniqueName('csp'), 'Cressida');
  // What a stored-XSS payload would do once in the page: the policy (nonce-only inline
  // scripts) stops it, and the browser reports the violation.
  const violated = await page.evaluate(() => new Promise<string>((resolve) => {
    document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true });
    const s = document.createElement('script');
    s.textContent = 'window.__injected = true';
    document.body.appendChild(s);
    setTimeout(() => resolve('no violation'), 3000);
  }));
  expect(violated).toBe('script-src-elem');
  expect(await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected)).toBeUndefined();
  // That refusal is the one console error this test expects (Chromium's wording varies by
  // version: "Refused to execute inline script …", "Executing inline script violates …").
  const refusal = problems.findIndex((p) => /inline script/.test(p) && /Content Security Policy/.test(p));
  expect(refusal).toBeGreaterThanOrEqual(0);
  problems.splice(refusal, 1);
});
