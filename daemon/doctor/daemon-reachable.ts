/** `daemon`: a daemon answers on the socket (hello + status), and it is this version. */
import path from 'node:path';
import { connect } from '../../client/index.js';
import { BrokerError } from '../../proto/index.js';
import { packageVersion } from '../version.js';
import { formatDuration } from '../duration.js';
import { result, type CheckResult, type DoctorContext } from './types.js';

const TITLE = 'daemon';
const START_FIX = 'start it: "tokenbroker service install" (runs it now and at every login), or "tokenbroker daemon" in a terminal';

export async function checkDaemon(context: DoctorContext): Promise<CheckResult> {
  let client;
  try {
    client = await connect({ socketPath: context.socketPath, clientName: 'tokenbroker-doctor', reconnect: false, connectTimeoutMs: 3_000, timeoutMs: 5_000 });
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    if (error.code === 'DAEMON_NOT_RUNNING') {
      return result('daemon', TITLE, 'fail', `not running: nothing answers on ${context.socketPath} [DAEMON_NOT_RUNNING]`, START_FIX);
    }
    if (error.code === 'UNSUPPORTED_PROTOCOL') {
      return result(
        'daemon',
        TITLE,
        'fail',
        `${error.message} [${error.code}]`,
        'restart the daemon so that it runs the same version as this CLI ("systemctl --user restart tokenbroker", or stop and start "tokenbroker daemon")',
      );
    }
    if (error.code === 'SOCKET_UNTRUSTED') {
      return result(
        'daemon',
        TITLE,
        'fail',
        `${error.message} [${error.code}]`,
        "set TOKENBROKER_SOCKET (or --socket) to your own daemon's socket, and check the socket directory",
      );
    }
    return result('daemon', TITLE, 'fail', `cannot talk to the daemon on ${context.socketPath}: ${error.message} [${error.code}]`, START_FIX);
  }
  try {
    const status = await client.status();
    const profiles = status.profiles.length === 1 ? '1 profile' : `${status.profiles.length} profiles`;
    const detail = `running: pid ${status.pid}, version ${status.daemonVersion}, up ${formatDuration(status.uptimeSeconds * 1000)}, ${profiles}, socket ${status.socketPath}`;
    const ours = packageVersion();
    if (status.daemonVersion !== ours) {
      return result(
        'daemon',
        TITLE,
        'warn',
        `${detail}; this CLI is version ${ours}`,
        'restart the daemon so it runs this version ("systemctl --user restart tokenbroker", or stop and start "tokenbroker daemon")',
      );
    }
    if (context.config?.path != null && status.configPath !== null && path.resolve(status.configPath) !== path.resolve(context.config.path)) {
      return result(
        'daemon',
        TITLE,
        'warn',
        `${detail}; it reads the config ${status.configPath}, while these checks used ${context.config.path}`,
        `run doctor with --config ${status.configPath}, or restart the daemon with the config you meant`,
      );
    }
    return result('daemon', TITLE, 'ok', detail);
  } catch (error) {
    const message = error instanceof BrokerError ? `${error.message} [${error.code}]` : (error as Error).message;
    return result(
      'daemon',
      TITLE,
      'fail',
      `connected to ${context.socketPath}, but the status request failed: ${message}`,
      'see the daemon\'s log ("tokenbroker service logs"), then restart it',
    );
  } finally {
    await client.close();
  }
}
