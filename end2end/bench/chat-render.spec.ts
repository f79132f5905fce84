// What an incoming message costs the reader's page, and whether the cost grows with the
// length of the conversation on screen: side by side for several builds
// (`scripts/bench chat-render [OTHER_CHECKOUT]` starts them and sets QC_BENCH_TARGETS).
// Not a test: it prints a table for docs/BENCHMARKS.md.
//
// For each build and for 200 and 2,000 messages loaded: a sender stores the messages over
// its own socket; the reader opens the conversation (time until the newest message is on
// screen), scrolls back until every message is loaded, then receives 200 more at 20 a
// second while the page is visible. Main-thread time per incoming message is Chromium's
// TaskDuration (DevTools protocol Performance.getMetrics) over those 200, divided by 200:
// script, style, layout and paint, everything the page did for them.
//
// With QC_BENCH_TRACE=1 the 200 incoming messages are also traced (Chromium's timeline and
// GC categories) and the renderer main thread's time is printed by kind of work, per
// message: what the part outside script, style and layout is. Tracing costs time itself, so
// the TaskDuration figures of a traced run are not the ones to report.
import { test, expect, type Browser, type BrowserContext, type Page } from '@playwright/test';

const PASSWORD = 'correct horse battery';

const targets = (process.env.QC_BENCH_TARGETS ?? '')
  .split(',')
  .filter(Boolean)
  .map((t) => {
    const [name, url] = t.split('=');
    return { name, url };
  });

async function person(browser: Browser, base: string, name: string): Promise<{ context: BrowserContext; page: Page; id: string }> {
  const context = await browser.newContext();
  const res = await context.request.post(`${base}/api/v1/user/register`, {
    data: { username: name, nickname: `Bench ${name.slice(-4)}`, password: PASSWORD },
    headers: { origin: base },
  });
  expect(res.status(), await res.text()).toBe(200);
  const page = await context.newPage();
  await page.goto(`${base}/me`);
  await page.locator('body[data-hydrated="true"]').waitFor({ timeout: 60_000 });
  return { context, page, id: (await res.json()).id };
}

/** Sends `count` texts from `page`'s user to `to` over a socket of its own, `every` ms apart
 *  (0: as fast as acknowledged, in windows of 50), and waits for every acknowledgement. */
async function sendMany(page: Page, to: string, count: number, prefix: string, every: number) {
  const acked = await page.evaluate(async ({ to, count, prefix, every }) => {
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`);
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
    let acked = 0;
    let waiting: (() => void) | null = null;
    ws.onmessage = (ev) => {
      if (JSON.parse(ev.data).type === 'ack') {
        acked += 1;
        waiting?.();
      }
    };
    const until = (n: number) => new Promise<void>((resolve) => {
      const check = () => (acked >= n ? resolve() : (waiting = check));
      check();
    });
    for (let i = 0; i < count; i++) {
      ws.send(JSON.stringify({
        type: 'send', client_id: `${prefix}-${i}`, to: { user: to },
        content: { kind: 'text', text: `${prefix} message number ${i}` },
      }));
      if (every > 0) await new Promise((r) => setTimeout(r, every));
      else if (i % 50 === 49) await until(i + 1);
    }
    await until(count);
    ws.close();
    return acked;
  }, { to, count, prefix, every });
  expect(acked).toBe(count);
}

type Figures = {
  loaded: number; openMs: number; perMessageMs: number; idleMs: number;
  scriptMs: number; styleMs: number; layoutMs: number;
  /** With QC_BENCH_TRACE=1: ms per message on the renderer's main thread, by trace event. */
  trace?: Record<string, number>;
};

const TRACE = process.env.QC_BENCH_TRACE === '1';

type TraceEvent = { name: string; ph: string; pid: number; tid: number; ts?: number; dur?: number; args?: { name?: string } };

/** The reader's main-thread time by event name, in ms per message of self time (what is
 *  not inside a nested event), so the kinds add up to the busy time. The sender's page runs
 *  in another renderer of the same browser: the reader's is the one where the user-timing
 *  mark `qc-reader` was set. */
function byKind(trace: Buffer, messages: number): Record<string, number> {
  const events: TraceEvent[] = JSON.parse(trace.toString()).traceEvents;
  const reader = events.find((e) => e.name === 'qc-reader')?.pid;
  if (reader === undefined) console.warn('the mark qc-reader is not in the trace: every renderer counted');
  const main = new Set(events
    .filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain')
    .filter((e) => reader === undefined || e.pid === reader)
    .map((e) => `${e.pid}:${e.tid}`));
  // Self time: an event's duration less that of the events nested in it, so the kinds add
  // up to the thread's busy time.
  const sums: Record<string, number> = {};
  const mine = events
    .filter((e) => e.ph === 'X' && e.dur !== undefined && e.ts !== undefined && main.has(`${e.pid}:${e.tid}`))
    .sort((a, b) => a.ts! - b.ts! || b.dur! - a.dur!);
  const open: { e: TraceEvent; end: number; self: number }[] = [];
  const close = (until: number) => {
    while (open.length > 0 && open[open.length - 1].end <= until) {
      const done = open.pop()!;
      sums[done.e.name] = (sums[done.e.name] ?? 0) + done.self / 1000 / messages;
    }
  };
  for (const e of mine) {
    close(e.ts!);
    if (open.length > 0) open[open.length - 1].self -= e.dur!;
    open.push({ e, end: e.ts! + e.dur!, self: e.dur! });
  }
  close(Infinity);
  sums['(all of it)'] = Object.values(sums).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(sums)
    .filter(([, ms]) => ms >= 0.02)
    .sort(([, a], [, b]) => b - a)
    .slice(0, 25));
}

async function measure(browser: Browser, base: string, loaded: number): Promise<Figures> {
  const stamp = `${Date.now().toString(36)}${loaded}`;
  const sender = await person(browser, base, `snd_${stamp}`);
  const reader = await person(browser, base, `rdr_${stamp}`);
  expect((await sender.context.request.post(`${base}/api/v1/relation/request`,
    { data: { username: `rdr_${stamp}`, memo: '' }, headers: { origin: base } })).status()).toBe(200);
  expect((await reader.context.request.post(`${base}/api/v1/relation/accept`,
    { data: { username: `snd_${stamp}` }, headers: { origin: base } })).status()).toBe(200);
  await sendMany(sender.page, reader.id, loaded, 'old', 0);

  // Open the conversation.
  const page = reader.page;
  const t0 = Date.now();
  await page.goto(`${base}/chats/user/${sender.id}`);
  await expect(page.getByTestId('messages').locator('.bubble-row').last()).toContainText(`old message number ${loaded - 1}`, { timeout: 60_000 });
  const openMs = Date.now() - t0;
  // Scroll back until all of it is loaded.
  const rows = page.getByTestId('messages').locator('.bubble-row');
  for (let tries = 0; tries < 400 && (await rows.count()) < loaded; tries++) {
    await page.getByTestId('messages').evaluate((el) => { el.scrollTop = 0; });
    await page.waitForTimeout(150);
  }
  expect(await rows.count()).toBe(loaded);
  await page.getByTestId('messages').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await page.waitForTimeout(500);

  // 200 more at 20 a second, the page visible.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  // What the page does anyway in the ten seconds the messages take (timers, heartbeat,
  // garbage collection), for comparison.
  const idleStart = await metrics();
  await page.waitForTimeout(10_000);
  const idleEnd = await metrics();
  const idleMs = ((idleEnd.TaskDuration ?? 0) - (idleStart.TaskDuration ?? 0)) * 1000 / 200;
  if (TRACE) {
    await browser.startTracing(page, {
      categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'v8.gc', 'blink.user_timing', 'toplevel'],
    });
    await page.evaluate(() => performance.mark('qc-reader'));
  }
  const before = await metrics();
  await sendMany(sender.page, reader.id, 200, 'new', 50);
  // Every message is acknowledged by now, so it reaches the reader within milliseconds. The
  // check that it is on screen comes after the reading: Playwright's query over thousands of
  // rows would otherwise be counted as the page's work (0.3-1 ms "per message").
  await page.waitForTimeout(500);
  const after = await metrics();
  const trace = TRACE ? byKind(await browser.stopTracing(), 200) : undefined;
  expect(await rows.last().textContent({ timeout: 1_000 })).toContain('new message number 199');
  const per = (name: string) => ((after[name] ?? 0) - (before[name] ?? 0)) * 1000 / 200;
  await sender.context.close();
  await reader.context.close();
  return {
    loaded,
    openMs,
    perMessageMs: per('TaskDuration'),
    idleMs,
    scriptMs: per('ScriptDuration'),
    styleMs: per('RecalcStyleDuration'),
    layoutMs: per('LayoutDuration'),
    trace,
  };
}

test('an incoming message with 200 and with 2,000 on screen, side by side', async ({ browser }) => {
  test.setTimeout(1_800_000);
  expect(targets.length, 'QC_BENCH_TARGETS names the builds').toBeGreaterThan(0);
  const results: Record<string, Figures[]> = {};
  for (const loaded of [200, 2000]) {
    for (const t of targets) {
      (results[t.name] ??= []).push(await measure(browser, t.url, loaded));
    }
  }
  const lines = [
    '| build | loaded | open the conversation | main thread per incoming message | of which script / style / layout | the idle page, per 1/200 of the same time |',
    '|---|---|---|---|---|---|',
  ];
  for (const t of targets) {
    for (const r of results[t.name]) {
      lines.push(`| ${t.name} | ${r.loaded} | ${r.openMs} ms | ${r.perMessageMs.toFixed(2)} ms | ` +
        `${r.scriptMs.toFixed(2)} / ${r.styleMs.toFixed(2)} / ${r.layoutMs.toFixed(2)} ms | ${r.idleMs.toFixed(2)} ms |`);
    }
    const [small, large] = results[t.name];
    lines.push(`| ${t.name} | 2,000 ÷ 200 | | ${(large.perMessageMs / small.perMessageMs).toFixed(2)}× | | |`);
  }
  console.log(`\n${lines.join('\n')}\n`);
  if (TRACE) {
    for (const t of targets) {
      for (const r of results[t.name]) {
        console.log(`${t.name}, ${r.loaded} loaded: main thread by kind of work, ms per message`);
        for (const [name, ms] of Object.entries(r.trace ?? {})) console.log(`  ${ms.toFixed(3).padStart(7)}  ${name}`);
      }
    }
  }
  console.log(JSON.stringify(results));
});
