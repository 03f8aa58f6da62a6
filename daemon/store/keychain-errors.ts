/** Keychain failures as KEYCHAIN_UNAVAILABLE, each with what to do about it. */
import { BrokerError } from '../../proto/index.js';

export const DOCTOR_HINT = 'Run "tokenbroker doctor" for a diagnosis.';

/** Turns a keytar/libsecret failure into KEYCHAIN_UNAVAILABLE with what to do about it. */
export function keychainUnavailable(what: string, error: unknown, redact: readonly string[] = []): BrokerError {
  let detail = error instanceof Error ? error.message : String(error);
  for (const secret of redact) if (secret.length > 0) detail = detail.split(secret).join('[redacted]');
  detail = (detail.split('\n')[0] ?? '').trim().slice(0, 300) || 'unknown error';
  return new BrokerError('KEYCHAIN_UNAVAILABLE', `Cannot ${what}: ${detail}. ${hintFor(detail)} ${DOCTOR_HINT}`, { cause: error });
}

function hintFor(detail: string): string {
  if (/autolaunch D-Bus|DBUS_SESSION_BUS_ADDRESS|Could not connect|Failed to connect to socket|session bus/i.test(detail)) {
    return 'There is no D-Bus session bus: run tokenbroker inside your desktop session (or start one with dbus-run-session and an unlocked gnome-keyring).';
  }
  if (/org\.freedesktop\.secrets|ServiceUnknown|secret service/i.test(detail)) {
    return 'No Secret Service is running: install and unlock a keyring (Debian/Ubuntu: apt-get install gnome-keyring libsecret-1-0), or enable the Secret Service integration of KeePassXC.';
  }
  if (/locked|prompt|dismissed|cancel/i.test(detail)) {
    return 'The keyring is locked: unlock it (log in to the desktop session, or use Seahorse / "Passwords and Keys").';
  }
  if (/libsecret|cannot open shared object|keytar/i.test(detail)) {
    return 'The keytar native module cannot be loaded: install libsecret (Debian/Ubuntu: apt-get install libsecret-1-0) and rebuild it (npm rebuild keytar, needs libsecret-1-dev).';
  }
  return 'Make sure the OS keychain is running and unlocked.';
}

/**
 * The keychain took the entry but gives back nothing (or something else). gnome-keyring does this
 * when its keyring was unlocked with a different password than it was created with.
 */
export function storedButNotReturned(service: string, which: string): BrokerError {
  return new BrokerError(
    'KEYCHAIN_UNAVAILABLE',
    `The keychain accepted ${which} (service "${service}") but does not return it. The keyring is probably unlocked ` +
      `with a different password than it was created with: unlock it with the right one, or recreate it (Seahorse). ${DOCTOR_HINT}`,
  );
}
