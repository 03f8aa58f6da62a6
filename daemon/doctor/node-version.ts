/** `node`: the Node.js running tokenbroker is one it supports (package.json "engines": >=22.13). */
import { result, type CheckResult } from './types.js';

export const MIN_NODE_VERSION = [22, 13] as const;

export function checkNodeVersion(version: string = process.versions.node, execPath: string = process.execPath): CheckResult {
  const [major = 0, minor = 0] = version.split('.').map((part) => Number.parseInt(part, 10));
  const [minMajor, minMinor] = MIN_NODE_VERSION;
  const supported = major > minMajor || (major === minMajor && minor >= minMinor);
  const detail = `Node.js ${version} (${execPath})`;
  if (supported) return result('node', 'Node.js', 'ok', detail);
  return result(
    'node',
    'Node.js',
    'fail',
    `${detail} is too old: tokenbroker needs Node.js ${minMajor}.${minMinor} or newer`,
    `install Node.js ${minMajor}.${minMinor}+ (24 LTS recommended: https://nodejs.org/ or your package manager), ` +
      'then run "tokenbroker service install" again so the service uses it',
  );
}
