/**
 * `keychain`: the OS keychain takes, returns and deletes a probe entry (KeychainStore.probe()), under the
 * same service name the daemon uses ($TOKENBROKER_KEYCHAIN_SERVICE, else "tokenbroker").
 */
import { BrokerError } from '../../proto/index.js';
import { KEYCHAIN_SERVICE, KeychainStore } from '../store/keychain.js';
import { packageRoot } from '../version.js';
import { isKeytarLoadFailure, keytarFix } from './keytar-build.js';
import { result, type CheckResult, type DoctorContext } from './types.js';

const TITLE = 'keychain';
const GENERIC_FIX = 'make sure the OS keychain is running and unlocked';

export async function checkKeychain(context: DoctorContext): Promise<CheckResult> {
  const service = context.env['TOKENBROKER_KEYCHAIN_SERVICE'] || KEYCHAIN_SERVICE;
  try {
    await new KeychainStore({ service, timeoutMs: context.keychainTimeoutMs }).probe();
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    if (isKeytarLoadFailure(error.message)) {
      const cause = error.cause instanceof Error ? (error.cause.message.split('\n')[0] ?? '') : '';
      const detail = `the keytar native module cannot be loaded (${cause.slice(0, 300) || error.message}); no prebuilt binary matched, or its build failed, or a library it needs is missing [${error.code}]`;
      return result('keychain', TITLE, 'fail', detail, keytarFix(process.platform, packageRoot()));
    }
    const { problem, hint } = splitHint(error.message);
    return result('keychain', TITLE, 'fail', `${problem} [${error.code}]`, hint);
  }
  return result('keychain', TITLE, 'ok', `wrote, read back and deleted a probe entry (service "${service}")`);
}

/**
 * KEYCHAIN_UNAVAILABLE messages read "<problem>. <what to do>. Run "tokenbroker doctor" …": the last
 * sentence before the doctor pointer is the hint, which becomes the fix.
 */
export function splitHint(message: string): { problem: string; hint: string } {
  const text = message.replace(/\s*Run "tokenbroker doctor" for a diagnosis\.\s*$/, '').trim();
  const cut = text.lastIndexOf('. ', text.length - 2);
  if (cut < 0) return { problem: text, hint: GENERIC_FIX };
  const hint = text.slice(cut + 2).trim();
  return { problem: text.slice(0, cut + 1), hint: hint.charAt(0).toLowerCase() + hint.slice(1) };
}
