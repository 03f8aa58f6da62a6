/**
 * The unit layer alone, as a config file of its own for StrykerJS (stryker.config.mjs), whose vitest runner
 * runs every project of the config it is given. The layer itself is defined once, in vitest.config.ts.
 */
import { defineConfig } from 'vitest/config';
import { unitProject } from './vitest.config.js';

export default defineConfig({ test: { ...unitProject.test, maxWorkers: 2 } });
