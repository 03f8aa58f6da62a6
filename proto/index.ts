export * from './version.js';
export * from './errors.js';
export * from './messages.js';
export * from './validate.js';
export * from './framing.js';
export * from './paths.js';
