// The browser tests against a cluster that is already running: `scripts/cluster` (three
// nodes behind nginx on :3000) started with REGISTER_MAX_PER_IP=100000
// CONTACT_REQUESTS_PER_HOUR=100000, then e.g.
//   npx playwright test -c cluster.config.ts -g "chat live|group of three|rings on every tab"
// Each page's requests and sockets go round robin over the nodes. Not part of scripts/test.
import base from './playwright.config';
import { defineConfig } from '@playwright/test';

export default defineConfig({
  ...base,
  use: { ...base.use, baseURL: process.env.QC_CLUSTER_URL ?? 'http://127.0.0.1:3000' },
  webServer: undefined,
});
