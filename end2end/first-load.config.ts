// The first-load benchmark (not a test): `scripts/bench first-load` starts the builds to
// compare and runs this against them; no server of its own.
import base from './playwright.config';
import { defineConfig } from '@playwright/test';

export default defineConfig({
  ...base,
  testDir: './bench',
  testMatch: 'first-load.spec.ts',
  timeout: 900_000,
  webServer: undefined,
});
