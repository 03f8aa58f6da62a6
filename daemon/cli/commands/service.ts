import { spawn } from 'node:child_process';
import type { CommandContext } from '../context.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker service install|uninstall|status|logs [--dry-run] [--json] [--config FILE]
                           [-f] [-n LINES]

Runs the broker as a user service that starts at login and restarts after a crash.

  install    Linux: writes ~/.config/systemd/user/tokenbroker.service and runs
               systemctl --user daemon-reload; enable; restart
             macOS: writes ~/Library/LaunchAgents/dev.tokenbroker.daemon.plist and runs
               launchctl bootout (if loaded); launchctl bootstrap gui/$UID <plist>
             Windows: prints the Task Scheduler commands (not automated yet)
             Also registers the URL-scheme handler of every custom-scheme profile in the config.
             The service runs this CLI with node by the path you invoked it through (say
             /opt/homebrew/bin/node, not the versioned binary it links to), so a node upgrade
             keeps it working; "tokenbroker doctor" names a recorded path that is gone.
             Safe to run again.
  uninstall  stops and removes what install wrote, including the scheme handlers
  status     installed? running? (token, login and status start an installed service
             that is not running)
  logs       the service's log (journalctl --user -u tokenbroker / ~/Library/Logs/tokenbroker)

Options:
  --dry-run      print the files and commands, change nothing
  --json         machine-readable report
  --config FILE  the config whose profiles' schemes to register (default: the usual config path)
  -f             logs: follow
  -n LINES       logs: how many lines (default 100)
  -h, --help     this help`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values, positionals } = parse(
    'service',
    argv,
    {
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
      config: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      lines: { type: 'string', short: 'n' },
    },
    true,
  );
  const action = positionals[0];
  if (positionals.length !== 1 || !['install', 'uninstall', 'status', 'logs'].includes(action!)) {
    throw new UsageError('service: expected one of install, uninstall, status, logs');
  }
  const service = await import('../../service/index.js');
  const options = { dryRun: values['dry-run'] ?? false, ...(values.config === undefined ? {} : { configPath: values.config }) };

  if (action === 'status') {
    const status = await service.serviceStatus(options);
    context.out(values.json ? JSON.stringify(status, null, 2) : status.details);
    return status.installed && status.running ? 0 : 1;
  }
  if (action === 'logs') {
    const lines = values.lines === undefined ? 100 : Number(values.lines);
    if (!Number.isInteger(lines) || lines < 1) throw new UsageError(`service: -n must be a positive whole number, got ${JSON.stringify(values.lines)}`);
    const [file, ...args] = service.logsCommand({ follow: values.follow ?? false, lines });
    const child = spawn(file!, args, { stdio: 'inherit' });
    return new Promise((resolve) => {
      child.on('error', (error) => {
        context.err(`tokenbroker: cannot run ${file}: ${error.message}`);
        resolve(1);
      });
      child.on('exit', (code) => resolve(code ?? 1));
    });
  }
  const report = action === 'install' ? await service.installService(options) : await service.uninstallService(options);
  if (values.json) {
    context.out(JSON.stringify(report, null, 2));
    return 0;
  }
  const { formatCommand } = await import('../../system/run.js');
  const would = report.dryRun ? 'would ' : '';
  context.out(`${report.dryRun ? 'Dry run: ' : ''}${action} the ${report.manager} service (${report.unitPath})`);
  for (const file of report.filesWritten) {
    context.out(`  ${would}write ${file.path}`);
    if (report.dryRun) context.out(file.contents.replace(/^/gm, '      '));
  }
  for (const file of report.filesRemoved) context.out(`  ${would}remove ${file}`);
  for (const command of report.commands) {
    const outcome = command.skipped ? ` (skipped: ${command.skipped})` : command.ran ? ` (exit ${command.exitCode ?? 0})` : '';
    context.out(`  ${would}run ${formatCommand(command.argv)}${outcome}`);
  }
  if (report.schemes.length > 0) context.out(`  URL schemes: ${report.schemes.join(', ')}`);
  for (const note of report.notes) context.out(`  note: ${note}`);
  if (!report.dryRun && action === 'install') context.out('Check it with "tokenbroker service status" and "tokenbroker status".');
  return 0;
}
