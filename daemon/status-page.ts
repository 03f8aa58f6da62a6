/**
 * The `status` answer in pages. A thousand profiles do not fit one 64 KiB frame (≈185 did), so a page
 * holds at most `limit` profiles and at most STATUS_PAGE_BYTES of profile JSON, and says where the next
 * one starts (`nextOffset`). A plain `status {}` (what clients before paging send) is the first page.
 * See proto/README.md, "status".
 */
import { BrokerError, MAX_STATUS_PAGE_PROFILES, STATUS_PAGE_BYTES, type ProfileStatus, type StatusParams } from '../proto/index.js';

export interface StatusPage {
  readonly profiles: ProfileStatus[];
  readonly totalProfiles: number;
  readonly nextOffset?: number;
}

/** `profiles` in config order; `statusOf` answers one profile's status. */
export function statusPage(params: StatusParams, names: readonly string[], statusOf: (name: string) => ProfileStatus): StatusPage {
  const totalProfiles = names.length;
  if (params.profile !== undefined) {
    if (!names.includes(params.profile)) {
      throw new BrokerError('PROFILE_NOT_FOUND', `no profile named "${params.profile}" (${totalProfiles} configured)`, { field: 'params.profile' });
    }
    return { profiles: [statusOf(params.profile)], totalProfiles };
  }
  const offset = params.offset ?? 0;
  const limit = params.limit ?? MAX_STATUS_PAGE_PROFILES;
  const profiles: ProfileStatus[] = [];
  let bytes = 0;
  let index = offset;
  for (; index < totalProfiles && profiles.length < limit; index++) {
    const status = statusOf(names[index]!);
    const size = Buffer.byteLength(JSON.stringify(status)) + 1;
    // Always at least one profile per page, so that paging moves on.
    if (profiles.length > 0 && bytes + size > STATUS_PAGE_BYTES) break;
    profiles.push(status);
    bytes += size;
  }
  return { profiles, totalProfiles, ...(index < totalProfiles ? { nextOffset: index } : {}) };
}
