// The browser tests on a cluster: end2end/cluster.sh starts a PostgreSQL and a Redis of its
// own and scripts/cluster (three nodes of the release build behind nginx on :3000, with
// docs/nginx-cluster.conf), inside scripts/test's private network namespace. Runs the
// pinned tests of cluster/ (each person's browser on a node of its own, by the qc_node
// cookie) and the chat and call tests of tests/ unpinned (every request and socket round
// robin over the nodes).
//   cd end2end && unshare -n -- bash -c 'ip link set lo up && npx playwright test -c cluster.config.ts'
import base from './playwright.config';
import { defineConfig } from '@playwright/test';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');
// Set here, in the runner, so the test workers (which load this file again) see the same.
process.env.QC_E2E_CLUSTER_DIR ??= path.join(os.tmpdir(), `qc-e2e-cluster-${process.pid}`);

export default defineConfig({
  ...base,
  testDir: '.',
  testMatch: ['cluster/*.spec.ts', 'tests/chat.spec.ts', 'tests/calls.spec.ts'],
  use: { ...base.use, baseURL: 'http://127.0.0.1:3000' },
  webServer: {
    command: 'exec bash end2end/cluster.sh',
    cwd: root,
    url: 'http://127.0.0.1:3000/healthz',
    reuseExistingServer: false,
    timeout: 120_000,
    // The nodes stop gracefully, then the databases.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 30_000 },
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
