import * as os from 'os';

// The coturn the browser tests start, shared by the Playwright config and the TURN test.
export const turnPort = Number(process.env.QC_E2E_TURN_PORT ?? 3478);
export const turnSecret = 'e2e-turn-secret';
// Where coturn writes its process id: the reconnect test pauses it to break the call's only
// network path. Set once by the Playwright runner; its workers inherit it.
process.env.QC_E2E_TURN_PIDFILE ??= `${os.tmpdir()}/qc-turn-${process.pid}.pid`;
export const turnPidFile = process.env.QC_E2E_TURN_PIDFILE;
