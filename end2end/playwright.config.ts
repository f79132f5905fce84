// Browser tests against the release build of quick-chat, in Debian's Chromium.
//
// Run through scripts/test, which builds once and starts this inside a private network
// namespace (`unshare -n`): the server, Chromium and all WebRTC media stay on 127.0.0.1.
// The server gets a fresh SQLite file for every run.
import { defineConfig } from '@playwright/test';
import * as os from 'os';
import * as path from 'path';
import { turnPort, turnSecret, turnPidFile } from './turn';

const port = Number(process.env.QC_E2E_PORT ?? 3000);
const root = path.resolve(__dirname, '..');
const dataDir = process.env.QC_E2E_DATA_DIR ?? path.join(os.tmpdir(), `qc-e2e-${process.pid}`);

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        '--allow-loopback-in-peer-connection',
        '--autoplay-policy=no-user-gesture-required',
      ],
    },
  },
  webServer: [{
    command: `rm -rf "${dataDir}" && exec ${process.env.QC_E2E_SERVER ?? './target/release/server'}`,
    cwd: root,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      BIND_ADDR: `127.0.0.1:${port}`,
      DATA_DIR: dataDir,
      LEPTOS_SITE_ROOT: path.join(root, 'target/site'),
      LEPTOS_ENV: 'PROD',
      RUST_LOG: 'warn',
      // Every test registers its people from 127.0.0.1 and befriends them; the limits
      // that protect a real server from one address would stop the suite.
      REGISTER_MAX_PER_IP: '100000',
      CONTACT_REQUESTS_PER_HOUR: '100000',
      // Unanswered calls end after 6 s here instead of 30 s, so the no-answer test is quick.
      CALL_RING_SECS: '6',
      // A call whose side dropped its socket waits 5 s for it instead of 20 s.
      CALL_RESUME_SECS: '5',
      // Calls may also relay through the coturn below (tests force it with
      // localStorage "qc.ice_policy" = "relay"); host candidates stay first otherwise.
      TURN_URLS: `turn:127.0.0.1:${turnPort}?transport=udp`,
      TURN_SECRET: turnSecret,
      TURN_TTL_SECS: '600',
    },
  }, {
    // A real TURN server (Debian's coturn) on loopback, checking the credentials the app
    // mints from the shared secret.
    command: `exec turnserver --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 --listening-port ${turnPort} ` +
      `--min-port 49200 --max-port 49300 --use-auth-secret --static-auth-secret ${turnSecret} ` +
      `--realm quick-chat --fingerprint --allow-loopback-peers --no-cli --no-tls --no-dtls ` +
      `--log-file stdout --simple-log --pidfile ${turnPidFile}`,
    port: turnPort,
    reuseExistingServer: false,
    timeout: 30_000,
    stdout: 'ignore',
    stderr: 'pipe',
  }],
});
