#!/usr/bin/env node
// A stand-in for the system browser in tests: BROWSER=<this file> makes `open` (via xdg-open) run it with the
// URL. It appends the URL as one line to the file named by TOKENBROKER_TEST_BROWSER_LOG and exits 0; the test
// then plays the user with waitForBrowserUrl() and a BrowserUser. Plain JavaScript so any Node can run it.
import { appendFileSync } from 'node:fs';

const log = process.env.TOKENBROKER_TEST_BROWSER_LOG;
const url = process.argv[2];
if (!log || !url) {
  process.stderr.write('fake-browser: needs TOKENBROKER_TEST_BROWSER_LOG and a URL argument\n');
  process.exit(1);
}
// One short write with O_APPEND: concurrent invocations do not interleave within a line.
appendFileSync(log, `${url.replace(/[\r\n]/g, '')}\n`);
