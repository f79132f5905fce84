// Time from Accept to the first decoded remote video frame on the callee's screen, over
// ten calls between two Chromium contexts on loopback. Prints the median; the figure goes
// into docs/BENCHMARKS.md with the command that produced it (see bench.config.ts).
import { test, expect, register, uniqueName, secondUser, myId, befriend, openChat } from '../tests/fixtures';

test('accept to first remote frame, median of 10 calls', async ({ page, browser }) => {
  const other = await secondUser(browser);
  const [aName, bName] = [uniqueName('bench_a'), uniqueName('bench_b')];
  await register(page, aName, 'Bench A');
  await register(other.page, bName, 'Bench B');
  await befriend(page, other.page, bName, aName);
  await openChat(page, `/chats/user/${await myId(other.page)}`);
  await openChat(other.page, `/chats/user/${await myId(page)}`);

  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    await page.getByTestId('start-video-call').click();
    await expect(other.page.getByTestId('call')).toHaveAttribute('data-state', 'incoming');
    // Measured inside the callee's page: click, then watch the remote element's frames.
    const ms = await other.page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const t0 = performance.now();
          (document.querySelector('[data-testid="call-accept"]') as HTMLButtonElement).click();
          const tick = () => {
            const v = document.querySelector('[data-testid="remote-video"]') as HTMLVideoElement | null;
            if (v && v.getVideoPlaybackQuality().totalVideoFrames > 0) resolve(performance.now() - t0);
            else setTimeout(tick, 2);
          };
          tick();
        }),
    );
    times.push(ms);
    await page.getByTestId('call-hangup').click();
    await expect(page.getByTestId('call')).toBeHidden({ timeout: 10_000 });
    await expect(other.page.getByTestId('call')).toBeHidden({ timeout: 10_000 });
  }
  times.sort((x, y) => x - y);
  const median = (times[4] + times[5]) / 2;
  console.log(`accept → first remote frame over ${times.length} calls: median ${median.toFixed(0)} ms, ` +
    `min ${times[0].toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(', ')})`);
  await other.context.close();
});
