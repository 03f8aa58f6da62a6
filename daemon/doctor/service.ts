/**
 * `service`: the user service (systemd user unit, launchd agent) is installed and running. Not installed
 * is only a warning: running "tokenbroker daemon" by hand is legitimate.
 */
import fs from 'node:fs';
import { missingPaths, pathsOfKey, plistProgramPaths, REINSTALL_FIX } from './recorded-paths.js';
import { result, type CheckResult, type DoctorContext } from './types.js';

const TITLE = 'service';

export async function checkService(context: DoctorContext): Promise<CheckResult> {
  const { serviceStatus, LAUNCHD_LABEL, SYSTEMD_UNIT } = await import('../service/index.js');
  const status = await serviceStatus({ env: context.env });
  const where = status.unitPath === undefined ? '' : ` (${status.unitPath})`;
  const details = status.details ? `: ${status.details}` : '';
  if (!status.supported) {
    return result('service', TITLE, 'skip', `no supported service manager here${details}; run "tokenbroker daemon" yourself`);
  }
  if (!status.installed) {
    return result(
      'service',
      TITLE,
      'warn',
      `not installed as a ${status.manager} service${details}`,
      'tokenbroker service install (or keep running "tokenbroker daemon" yourself)',
    );
  }
  // Checked before "running": a unit whose node is gone cannot run, and restarting it will not help.
  const gone = status.unitPath === undefined ? [] : missingPaths(recordedPaths(status.unitPath, status.manager));
  if (gone.length > 0) {
    return result(
      'service',
      TITLE,
      'fail',
      `${status.unitPath} runs ${gone.join(' and ')}, which no longer ${gone.length === 1 ? 'exists' : 'exist'} (node upgraded or tokenbroker moved?)${details}`,
      REINSTALL_FIX,
    );
  }
  if (!status.running) {
    const restart =
      status.manager === 'systemd'
        ? `systemctl --user restart ${SYSTEMD_UNIT.replace(/\.service$/, '')}`
        : status.manager === 'launchd'
          ? `launchctl kickstart -k gui/${typeof process.getuid === 'function' ? process.getuid() : '$UID'}/${LAUNCHD_LABEL}`
          : 'tokenbroker service install';
    return result('service', TITLE, 'fail', `installed${where} but not running${details}`, `see why with "tokenbroker service logs", then ${restart}`);
  }
  return result('service', TITLE, 'ok', `installed${where} and running under ${status.manager}${details}`);
}

/** The absolute paths the unit (ExecStart=) or the agent (ProgramArguments) runs. */
function recordedPaths(unitPath: string, manager: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(unitPath, 'utf8');
  } catch {
    return [];
  }
  return manager === 'launchd' ? plistProgramPaths(text) : pathsOfKey(text, 'ExecStart');
}
