/**
 * Logging: pino to stdout (journald and launchd capture it). Secrets are wrapped in `Secret` before they
 * ever reach a log call; the redaction list below is the second layer, for anything that slips through.
 */
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const SECRET_KEYS = [
  'accessToken',
  'refreshToken',
  'idToken',
  'access_token',
  'refresh_token',
  'id_token',
  'authorizationCode',
  'codeVerifier',
  'code_verifier',
  'client_secret',
  'password',
  'authorization',
  'Authorization',
  'token',
];

/** pino redact paths: each secret key at the top level and up to two levels down. */
export const REDACT_PATHS = SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

/**
 * JSON lines by default (what journald, launchd and log tools read). Pretty, coloured lines (pino-pretty,
 * loaded only then) when the daemon logs to a terminal (`tokenbroker daemon` run by hand), unless
 * TOKENBROKER_LOG_FORMAT=json; TOKENBROKER_LOG_FORMAT=pretty asks for them on a pipe too.
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Logger {
  const format = env['TOKENBROKER_LOG_FORMAT'];
  const pretty = destination === undefined && (format === 'pretty' || (format !== 'json' && process.stdout.isTTY === true));
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? (pretty ? prettyStream() : process.stdout),
  );
}

function prettyStream(): NodeJS.WritableStream {
  const require = createRequire(import.meta.url);
  const pinoPretty = require('pino-pretty') as (options: Record<string, unknown>) => NodeJS.WritableStream;
  // colorize: pino-pretty's default follows the terminal, NO_COLOR and FORCE_COLOR
  return pinoPretty({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'hostname', sync: true });
}
