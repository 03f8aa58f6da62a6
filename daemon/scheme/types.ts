/**
 * Shared shapes of the scheme-handler registration: options, the report of what was (or would be)
 * done, and the status answer. Each platform file (linux, macos, windows) works in these terms.
 */
import type { ActionReport } from '../system/run.js';

export type { CommandRecord, FileWrite } from '../system/run.js';

export interface SchemeOptions {
  /** Absolute path of the tokenbroker CLI entry (`dist/daemon/cli/main.js`). Required to register unless `command` is given. */
  readonly cliPath?: string;
  /** Absolute path of the Node.js binary that runs the CLI. @default the invoked node (system/node-path.ts) */
  readonly nodePath?: string;
  /**
   * The handler's command line without the URL, replacing `[nodePath, cliPath, "callback"]`; the OS
   * appends the URL as the last argument. For tests (a script that records what it receives).
   */
  readonly command?: readonly string[];
  /** Report what would be done and change nothing. @default false */
  readonly dryRun?: boolean;
  /** Which OS's mechanism to use. Another platform than the running one implies `dryRun`. @default process.platform */
  readonly platform?: NodeJS.Platform;
  /** HOME, XDG_DATA_HOME, XDG_CONFIG_HOME and the PATH the commands are looked up on. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/** The options resolved once, every default filled in. */
export interface ResolvedSchemeOptions {
  /** The handler argv before the URL; empty when not needed (unregister, status). */
  readonly command: readonly string[];
  readonly dryRun: boolean;
  readonly platform: NodeJS.Platform;
  readonly env: NodeJS.ProcessEnv;
  readonly home: string;
}

/** What `registerScheme` / `unregisterScheme` did, or would do in a dry run (for `--dry-run` and `--json`). */
export interface SchemeReport extends ActionReport {
  readonly action: 'register' | 'unregister';
  readonly scheme: string;
  readonly platform: NodeJS.Platform;
  /** True when nothing was changed: asked for, or the platform is not the running one. */
  readonly dryRun: boolean;
  /** The command the OS runs, URL last (register only). */
  readonly handler?: readonly string[];
}

export interface SchemeStatus {
  readonly scheme: string;
  readonly platform: NodeJS.Platform;
  /** Our handler is installed and is the one the OS picks for the scheme. */
  readonly registered: boolean;
  /** What the OS would run for the scheme (a desktop file id, an app bundle path, a command line). */
  readonly handler?: string;
  readonly details: string;
}

export function emptyReport(action: SchemeReport['action'], scheme: string, options: ResolvedSchemeOptions): SchemeReport {
  return {
    action,
    scheme,
    platform: options.platform,
    dryRun: options.dryRun,
    ...(action === 'register' ? { handler: [...options.command, '<url>'] } : {}),
    filesWritten: [],
    filesRemoved: [],
    commands: [],
    notes: [],
  };
}
