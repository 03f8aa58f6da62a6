#!/usr/bin/env node
/**
 * `docker-credential-tokenbroker`: a docker credential helper (the docker-credential-helpers protocol).
 * docker runs it as `docker-credential-tokenbroker <action>` with the input on stdin:
 *
 *   get      stdin: the registry's server URL → stdout: {"ServerURL","Username","Secret"} (Secret = access token)
 *   list     → stdout: {"<ServerURL>": "<Username>", …} for the registries in the config
 *   store    stdin: {"ServerURL","Username","Secret"} → nothing (the daemon keeps the tokens)
 *   erase    stdin: the server URL → nothing (`docker logout` does not sign you out of tokenbroker)
 *   version  → stdout: the version
 *
 * Errors are one line on stdout and exit 1, as the protocol wants; a registry not in the config answers
 * "credentials not found in native keychain" (docker then goes on without credentials).
 * @see https://github.com/docker/docker-credential-helpers (credentials/credentials.go, credentials/error.go)
 */
import { connect } from '../../client/index.js';
import { BrokerError } from '../../proto/errors.js';
import { configPath, loadCredentialsConfig, type DockerCredentialEntry } from './credentials-config.js';

/** The protocol's exact error strings (docker compares them). */
export const NOT_FOUND = 'credentials not found in native keychain';
export const MISSING_SERVER_URL = 'no credentials server URL';
export const MISSING_USERNAME = 'no credentials username';

const HELP = `Usage: docker-credential-tokenbroker <store|get|erase|list|version>

A docker credential helper backed by tokenbroker. Map registries to profiles in the tokenbroker
config file ($TOKENBROKER_CONFIG, else the usual path):

  "credentials": { "docker": [{ "registry": "registry.example.com", "profile": "work", "username": "oauth2" }] }

and name the helper in ~/.docker/config.json:

  { "credHelpers": { "registry.example.com": "tokenbroker" } }

get prints {"ServerURL","Username","Secret"} with a valid access token as the Secret; store and erase
do nothing (the daemon keeps the tokens); list prints the configured registries. Errors are printed
on stdout with exit code 1, as docker expects; an unknown registry gives "${NOT_FOUND}".`;

class ProtocolError extends Error {}

/** `https://registry.example.com/v2/` → `registry.example.com`; `localhost:5000` stays as it is. */
export function registryHost(serverUrl: string): string {
  const trimmed = serverUrl.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
  try {
    return new URL(withScheme).host.toLowerCase();
  } catch {
    return trimmed.toLowerCase();
  }
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => (data += chunk));
    process.stdin.once('end', () => resolve(data));
    process.stdin.once('error', reject);
  });
}

function entries(): readonly DockerCredentialEntry[] {
  return loadCredentialsConfig(configPath(undefined)).docker;
}

async function main(action: string | undefined): Promise<string | undefined> {
  switch (action) {
    case 'version': {
      const { packageVersion } = await import('../version.js');
      return `docker-credential-tokenbroker (tokenbroker) ${packageVersion()}`;
    }
    case 'list':
      return JSON.stringify(Object.fromEntries(entries().map((e) => [e.registry, e.username])));
    case 'store': {
      const input = await readStdin();
      let creds: { ServerURL?: unknown; Username?: unknown };
      try {
        creds = JSON.parse(input) as typeof creds;
      } catch (error) {
        throw new ProtocolError((error as Error).message);
      }
      if (typeof creds?.ServerURL !== 'string' || creds.ServerURL === '') throw new ProtocolError(MISSING_SERVER_URL);
      if (typeof creds.Username !== 'string' || creds.Username === '') throw new ProtocolError(MISSING_USERNAME);
      return undefined;
    }
    case 'erase': {
      if ((await readStdin()).trim() === '') throw new ProtocolError(MISSING_SERVER_URL);
      return undefined;
    }
    case 'get': {
      const serverUrl = (await readStdin()).trim();
      if (serverUrl === '') throw new ProtocolError(MISSING_SERVER_URL);
      const host = registryHost(serverUrl);
      const entry = entries().find((e) => e.registry === host);
      if (entry === undefined) throw new ProtocolError(NOT_FOUND);
      const client = await connect({ clientName: 'tokenbroker-docker', reconnect: false });
      try {
        const token = await client.getToken(entry.profile === undefined ? {} : { profile: entry.profile });
        return JSON.stringify({ ServerURL: serverUrl, Username: entry.username, Secret: token.accessToken });
      } finally {
        await client.close();
      }
    }
    case '-h':
    case '--help':
      return HELP;
    default:
      throw new ProtocolError(
        action === undefined ? 'Usage: docker-credential-tokenbroker <store|get|erase|list|version>' : `Unknown credential action \`${action}\``,
      );
  }
}

const args = process.argv.slice(2);
(args.length > 1 ? Promise.reject(new ProtocolError('Usage: docker-credential-tokenbroker <store|get|erase|list|version>')) : main(args[0])).then(
  (output) => {
    if (output !== undefined) process.stdout.write(`${output}\n`);
  },
  (error: unknown) => {
    // The protocol: the error message on stdout, exit 1 (docker shows it, or treats NOT_FOUND as "no credentials").
    const message =
      error instanceof ProtocolError
        ? error.message
        : error instanceof BrokerError
          ? `tokenbroker: ${error.message} [${error.code}]`
          : `tokenbroker: unexpected error: ${error instanceof Error ? error.message : String(error)}`;
    process.stdout.write(`${message}\n`);
    process.exitCode = 1;
  },
);
