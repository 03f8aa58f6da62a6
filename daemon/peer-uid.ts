/**
 * Who is on the other end of a loopback TCP connection. A port on 127.0.0.1 has no owner check (unlike
 * our 0600 Unix socket), so the loopback listener asks the kernel which uid owns the peer's socket.
 *
 * Linux: /proc/net/tcp and /proc/net/tcp6 list every TCP socket of this network namespace with its
 * owner's uid. The peer's socket is the one whose local address is our connection's remote address
 * and whose remote address is our local address. Not found, or unreadable: unknown (callers refuse).
 *
 * Other systems (macOS, Windows): Node exposes no peer credentials for TCP and there is no /proc, so
 * the peer's uid is not available ("unsupported"); see docs/security.md.
 *
 * @see https://www.kernel.org/doc/Documentation/networking/proc_net_tcp.txt
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface TcpConnection {
  /** Our side (the listener's). */
  readonly local: Endpoint;
  /** The peer's side. */
  readonly remote: Endpoint;
}

/** A uid, "unknown" (could not be determined: refuse), or "unsupported" (the OS does not tell). */
export type PeerUid = number | 'unknown' | 'unsupported';

export const PROC_NET_TCP = ['/proc/net/tcp', '/proc/net/tcp6'] as const;

/** The uid owning the peer's end of `connection`. */
export async function peerUid(
  connection: TcpConnection,
  options: { readonly platform?: NodeJS.Platform; readonly files?: readonly string[] } = {},
): Promise<PeerUid> {
  if ((options.platform ?? process.platform) !== 'linux') return 'unsupported';
  const wantLocal = endpointKey(connection.remote);
  const wantRemote = endpointKey(connection.local);
  if (wantLocal === undefined || wantRemote === undefined) return 'unknown';
  for (const file of options.files ?? PROC_NET_TCP) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue; // no IPv6 in this kernel, say; the other file may have it
    }
    const uid = findSocketUid(text, wantLocal, wantRemote);
    if (uid !== undefined) return uid;
  }
  return 'unknown';
}

export interface ProcTcpLine {
  readonly local: string;
  readonly remote: string;
  readonly uid: number;
}

/**
 * One line of /proc/net/tcp{,6}: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when
 * retrnsmt uid timeout inode …`. Addresses are normalised with `parseProcEndpoint`. The header and
 * anything malformed give undefined.
 */
export function parseProcTcpLine(line: string, littleEndian = endianness() === 'LE'): ProcTcpLine | undefined {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 8 || !/^\d+:$/.test(fields[0]!)) return undefined;
  const local = parseProcEndpoint(fields[1]!, littleEndian);
  const remote = parseProcEndpoint(fields[2]!, littleEndian);
  const uidText = fields[7]!;
  if (local === undefined || remote === undefined || !/^\d+$/.test(uidText)) return undefined;
  return { local, remote, uid: Number(uidText) };
}

/** The uid of the socket with exactly this local and remote endpoint (keys from `endpointKey`). */
export function findSocketUid(text: string, local: string, remote: string, littleEndian = endianness() === 'LE'): number | undefined {
  for (const line of text.split('\n')) {
    const parsed = parseProcTcpLine(line, littleEndian);
    if (parsed && parsed.local === local && parsed.remote === remote) return parsed.uid;
  }
  return undefined;
}

/**
 * `0100007F:1F90` (IPv4: one 32-bit word printed in host byte order, then the port in hex) or the
 * 32-hex-digit IPv6 form (four such words) → `127.0.0.1:8080`. IPv4-mapped IPv6 addresses
 * (`::ffff:127.0.0.1`, what a dual-stack socket shows) become their IPv4 form, so both files compare
 * alike.
 */
export function parseProcEndpoint(text: string, littleEndian = endianness() === 'LE'): string | undefined {
  const match = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(text);
  if (!match) return undefined;
  const hex = match[1]!;
  const port = parseInt(match[2]!, 16);
  const bytes: number[] = [];
  for (let word = 0; word < hex.length / 8; word++) {
    const value = hex.slice(word * 8, word * 8 + 8);
    const wordBytes = [0, 2, 4, 6].map((i) => parseInt(value.slice(i, i + 2), 16));
    bytes.push(...(littleEndian ? wordBytes.reverse() : wordBytes));
  }
  if (bytes.length === 4) return `${bytes.join('.')}:${port}`;
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return `${bytes.slice(12).join('.')}:${port}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `[${groups.join(':')}]:${port}`;
}

/** An endpoint as `parseProcEndpoint` writes it: `127.0.0.1:8080` or `[0:0:0:0:0:0:0:1]:8080`. */
export function endpointKey(endpoint: Endpoint): string | undefined {
  const { address, port } = endpoint;
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  const v4 = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(v4)) return `${v4}:${port}`;
  const groups = expandIpv6(address);
  return groups === undefined ? undefined : `[${groups.map((g) => g.toString(16)).join(':')}]:${port}`;
}

function expandIpv6(address: string): number[] | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(address)) return undefined;
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const part = (text: string): number[] => (text === '' ? [] : text.split(':').map((g) => parseInt(g, 16)));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}
