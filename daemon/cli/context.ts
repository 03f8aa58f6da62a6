import type { ConnectOptions } from '../../client/index.js';

/** What every command gets: where to print and how to reach the daemon. */
export interface CommandContext {
  out(text: string): void;
  err(text: string): void;
  connectOptions(socket: string | undefined): ConnectOptions;
}
