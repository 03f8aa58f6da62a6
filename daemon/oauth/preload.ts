/**
 * got and jose are loaded on first use (http.ts, id-token.ts), so an idle daemon does not hold them.
 * A session warms them up shortly before its refresh timer fires (refresh-timer.ts), so the planned
 * refresh does not wait for module loading.
 */
import { loadGot } from './http.js';
import { loadJose } from './id-token.js';

/** Starts loading what a refresh needs; never throws (a failed import fails the refresh itself, loudly). */
export function preloadProviderModules(): void {
  Promise.all([loadGot(), loadJose()]).catch(() => undefined);
}
