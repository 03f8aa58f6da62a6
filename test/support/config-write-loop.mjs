// A writer killed at random moments by test/hardening/config-write-crash.test.ts. It reads the version
// counter of the config file (the clientId of profile "counter", "v<k>"), then writes versions k+1,
// k+2, … in a loop through the real writer in dist/ (daemon/config-write.js), printing "<k>\n" after each
// write has returned. The file is large (many profiles) so that a write takes a while.
//
// Usage: node config-write-loop.mjs <dist/daemon/config-write.js> <config file> <profiles>
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

const [writerModule, file, count] = process.argv.slice(2);
const { readConfigDocument, saveConfigDocument } = await import(pathToFileURL(writerModule).href);

const document = readConfigDocument(file);
const profiles = document.json.profiles;
let version = Number(/^v(\d+)$/.exec(profiles.counter.clientId)[1]);
const padding = 'x'.repeat(200);
for (let i = 0; i < Number(count); i += 1) {
  profiles[`p${i}`] ??= { issuer: `https://login${i}.example.com`, clientId: `client-${i}`, authorizationParams: { login_hint: padding } };
}
for (;;) {
  version += 1;
  profiles.counter.clientId = `v${version}`;
  for (let i = 0; i < Number(count); i += 1) profiles[`p${i}`].clientId = `client-${i}-v${version}`;
  saveConfigDocument(document);
  fs.writeSync(1, `${version}\n`);
}
