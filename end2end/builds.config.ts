// Benchmarks that compare builds of quick-chat side by side (not tests):
// `scripts/bench first-load|chat-render [OTHER_CHECKOUT]` starts the builds and runs one
// spec of bench/ against them (their addresses in QC_BENCH_TARGETS); no server of its own.
import base from './playwright.config';
import { defineConfig } from '@playwright/test';

export default defineConfig({
  ...base,
  testDir: './bench',
  testMatch: ['first-load.spec.ts', 'chat-render.spec.ts'],
  timeout: 1_800_000,
  webServer: undefined,
});
