/**
 * Colour and emphasis for the CLI's output, through node:util's styleText with the stream it goes to:
 * nothing but the text when that stream is not a terminal (a pipe, a file) or NO_COLOR /
 * NODE_DISABLE_COLORS is set; colour on a pipe too when FORCE_COLOR is 1–3 (FORCE_COLOR=0 turns it off).
 */

// Not `import … from 'node:util'` (the facade loads util's lazy parts: start-up time), as in usage.ts.
const { styleText } = process.getBuiltinModule('node:util');

export type Style = Parameters<typeof styleText>[0];

// styleText checks the stream (TTY, NO_COLOR, FORCE_COLOR) since Node 22.13; before that it always
// colours, so an older node (below this package's engines) gets plain text.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const CHECKS_STREAM = major > 22 || (major === 22 && minor >= 13);

function paint(style: Style, text: string, stream: NodeJS.WriteStream): string {
  return CHECKS_STREAM ? styleText(style, text, { stream }) : text;
}

/** `text` styled for stdout. */
export function out(style: Style, text: string): string {
  return paint(style, text, process.stdout);
}

/** `text` styled for stderr. */
export function err(style: Style, text: string): string {
  return paint(style, text, process.stderr);
}
