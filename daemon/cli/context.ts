import type { ConnectOptions } from '../../client/index.js';

/** What every command gets: where to print and how to reach the daemon. */
export interface CommandContext {
  out(text: string): void;
  err(text: string): void;
  connectOptions(socket: string | undefined): ConnectOptions;
  /** The command table (name → summary, help): for `completion` and "Did you mean". */
  readonly commands?: Readonly<Record<string, { readonly summary: string; load(): Promise<{ readonly help: string }> }>>;
}
