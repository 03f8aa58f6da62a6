/** When `tokenbroker login` suggests --device: no browser can come up where the command runs. */
import { describe, expect, it } from 'vitest';
import { deviceHint, hasNoDisplay } from '../../daemon/cli/commands/login-device.js';

describe('hasNoDisplay', () => {
  it('Linux without X11 or Wayland has none; with either it has one', () => {
    expect(hasNoDisplay({}, 'linux')).toBe(true);
    expect(hasNoDisplay({ DISPLAY: ':0' }, 'linux')).toBe(false);
    expect(hasNoDisplay({ WAYLAND_DISPLAY: 'wayland-0' }, 'linux')).toBe(false);
    expect(hasNoDisplay({ DISPLAY: '' }, 'freebsd')).toBe(true);
  });

  it('an SSH session has none, whatever the platform (a browser would open on the remote screen)', () => {
    expect(hasNoDisplay({ DISPLAY: ':0', SSH_CONNECTION: '10.0.0.2 50000 10.0.0.1 22' }, 'linux')).toBe(true);
    expect(hasNoDisplay({ SSH_TTY: '/dev/pts/3' }, 'darwin')).toBe(true);
  });

  it('macOS and Windows always have one outside SSH', () => {
    expect(hasNoDisplay({}, 'darwin')).toBe(false);
    expect(hasNoDisplay({}, 'win32')).toBe(false);
  });

  it('the hint names the command to run', () => {
    expect(deviceHint('work')).toContain('tokenbroker login --device --profile work');
  });
});
