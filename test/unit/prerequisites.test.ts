import { afterEach, describe, expect, it, vi } from 'vitest';
import { MissingPrerequisiteError, onPath, requireOrSkip } from '../support/prerequisites.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('requireOrSkip', () => {
  it('runs the test when the prerequisite is there, in CI or not', () => {
    expect(requireOrSkip(true, 'x', {})).toBe(false);
    expect(requireOrSkip(true, 'x', { CI: '1' })).toBe(false);
  });

  it('skips (and says why) when it is missing outside CI', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(requireOrSkip(false, 'needs frobnicate', {})).toBe(true);
    expect(log).toHaveBeenCalledWith('SKIPPED — needs frobnicate');
  });

  it('fails when it is missing in CI', () => {
    expect(() => requireOrSkip(false, 'needs frobnicate', { CI: 'true' })).toThrow(MissingPrerequisiteError);
    expect(() => requireOrSkip(false, 'needs frobnicate', { CI: 'true' })).toThrow(/needs frobnicate — missing in CI/);
  });

  it('onPath finds a tool on PATH and not a made-up one', () => {
    expect(onPath('sh')).toBe(true);
    expect(onPath(`no-such-tool-${process.pid}`)).toBe(false);
  });
});
