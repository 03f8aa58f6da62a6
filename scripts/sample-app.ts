/**
 * A tiny app using the broker: asks for a token every few seconds and prints when it expires, while the
 * broker refreshes it in the background. Run against any daemon:
 *
 *   npx tsx scripts/sample-app.ts [--profile NAME] [--every SECONDS] [--for SECONDS]
 */
import { parseArgs } from 'node:util';
import { BrokerError, connect } from '../client/index.js';

const { values } = parseArgs({
  options: { profile: { type: 'string' }, every: { type: 'string', default: '2' }, for: { type: 'string', default: '0' } },
});
const everyMs = Number(values.every) * 1000;
const forMs = Number(values.for) * 1000;

const time = (ms: number) => new Date(ms).toLocaleTimeString();
const say = (who: string, text: string) => process.stdout.write(`${time(Date.now())}  [${who}] ${text}\n`);

const broker = await connect({ clientName: 'sample-app/1.0' });
await broker.subscribe((event) => {
  if (event.event === 'tokenRefreshed') say('event', `tokenRefreshed: ${event.data.profile} now valid until ${time(event.data.expiresAt)}`);
  else if (event.event !== 'stateChanged') say('event', `${event.event} ${JSON.stringify(event.data)}`);
});

const deadline = forMs > 0 ? Date.now() + forMs : Infinity;
while (Date.now() < deadline) {
  try {
    const token = await broker.getToken(values.profile === undefined ? {} : { profile: values.profile });
    const left = Math.round((token.expiresAt - Date.now()) / 1000);
    say('app', `token …${token.accessToken.slice(-8)} expires at ${time(token.expiresAt)} (in ${left}s)`);
  } catch (error) {
    say('app', error instanceof BrokerError ? `${error.code}: ${error.message}` : String(error));
  }
  await new Promise((resolve) => setTimeout(resolve, everyMs));
}
await broker.close();
