/**
 * keytar is a native addon. npm installs a prebuilt binary when one matches this platform, CPU and
 * Node-API version (downloaded from GitHub by prebuild-install); otherwise it compiles it with
 * node-gyp, which needs a compiler toolchain and, on Linux, the libsecret headers. When neither
 * worked, or the library it links to is missing, loading it fails: this says exactly what to install
 * and what to run. (README, "Install", has the same list.)
 */
import path from 'node:path';

/** Matches the message of KeychainStore's failure to load the module (keychainUnavailable('load the keytar module', …)). */
export function isKeytarLoadFailure(message: string): boolean {
  return /^Cannot load the keytar module\b/.test(message);
}

/** What to install for node-gyp to build keytar on this platform. */
export function keytarToolchain(platform: NodeJS.Platform): string {
  if (platform === 'darwin') return 'the Xcode Command Line Tools (xcode-select --install) and python3';
  if (platform === 'win32') return 'Visual Studio Build Tools with "Desktop development with C++", and Python 3';
  return 'python3, make, a C++ compiler, pkg-config and the libsecret headers (Debian/Ubuntu: apt-get install build-essential python3 pkg-config libsecret-1-dev; Fedora: dnf install gcc-c++ make python3 pkgconf libsecret-devel)';
}

/** The fix line of the keychain check when keytar does not load. */
export function keytarFix(platform: NodeJS.Platform, packageRoot: string): string {
  const runtime = platform === 'linux' ? 'install libsecret (Debian/Ubuntu: apt-get install libsecret-1-0); if that is not it, ' : '';
  const dir = platform === 'win32' ? path.win32.normalize(packageRoot) : packageRoot;
  return `${runtime}install ${keytarToolchain(platform)}, then rebuild the module with this Node.js: cd "${dir}" && npm rebuild keytar`;
}
