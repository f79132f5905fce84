// The call-setup benchmark (not a test): the browser-test set-up with bench/ as the tests.
//   cd end2end && unshare -n -- bash -c 'ip link set lo up && npx playwright test -c bench.config.ts'
import base from './playwright.config';
import { defineConfig } from '@playwright/test';

export default defineConfig({ ...base, testDir: './bench', timeout: 300_000 });
