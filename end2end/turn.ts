// The coturn the browser tests start, shared by the Playwright config and the TURN test.
export const turnPort = Number(process.env.QC_E2E_TURN_PORT ?? 3478);
export const turnSecret = 'e2e-turn-secret';
