/**
 * A real daemon with one profile "main" on the test IdP, signed in without a browser (the IdP's
 * development login form posted over HTTP), for the integration tests of kubectl, git, docker and other
 * clients. `env` points the `tokenbroker` CLI at this daemon.
 */
import type { BrokerClient } from '../../client/index.js';
import type { BrokerHarness } from './broker.js';
import { signInWithDevForm } from './dev-form-login.js';
import { startTestIdp, type TestIdp, type TestIdpOptions } from './idp.js';
import { client, startRefreshBroker } from './refresh-e2e.js';

export interface SignedIn {
  readonly idp: TestIdp;
  readonly harness: BrokerHarness;
  readonly app: BrokerClient;
  /** TOKENBROKER_SOCKET (and the keychain service) for CLI runs against this daemon. */
  readonly env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** Signs the profile in through the daemon: login → authorize URL → dev form → custom-scheme redirect → callback. */
export async function signInHeadless(harness: BrokerHarness, app: BrokerClient, profile?: string): Promise<void> {
  const login = app.login({ timeoutMs: 60_000, ...(profile === undefined ? {} : { profile }) });
  const url = await harness.nextBrowserUrl();
  await app.callback(await signInWithDevForm(url));
  await login;
}

export async function startSignedIn(
  options: { idp?: TestIdpOptions; profile?: Record<string, unknown>; signIn?: boolean; config?: Record<string, unknown> } = {},
): Promise<SignedIn> {
  const idp = await startTestIdp(options.idp ?? { accessTokenTtl: 600 });
  let harness: BrokerHarness | undefined;
  let app: BrokerClient | undefined;
  try {
    harness = await startRefreshBroker(idp, options.profile ?? {});
    app = await client(harness, { timeoutMs: 60_000 });
    if (options.signIn !== false) await signInHeadless(harness, app);
  } catch (error) {
    await app?.close();
    await harness?.stop();
    await idp.close();
    throw error;
  }
  const h = harness;
  const a = app;
  return {
    idp,
    harness: h,
    app: a,
    env: { TOKENBROKER_SOCKET: h.daemon.socketPath, TOKENBROKER_KEYCHAIN_SERVICE: h.keychainService },
    close: async () => {
      await a.close();
      await h.stop();
      await idp.close();
    },
  };
}
