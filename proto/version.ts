/**
 * Protocol version and limits. A client and the daemon agree on the major version in `hello`;
 * a change that an old peer would misread bumps it.
 */
export const PROTOCOL_VERSION = 1;

/** The only versions this daemon speaks. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];

/** Frame delimiter of node-ipc's event envelope: `JSON.stringify({type, data}) + "\f"`. */
export const FRAME_DELIMITER = '\f';

/** Largest frame (JSON envelope, without the delimiter) either side accepts, in bytes. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * A `status` page holds at most this many bytes of profile JSON (and at most 1000 profiles), so that it
 * fits MAX_MESSAGE_BYTES with the daemon's own fields; the rest follows with `offset: nextOffset`.
 */
export const STATUS_PAGE_BYTES = 48 * 1024;
/** The largest (and default) `limit` of a `status` page. */
export const MAX_STATUS_PAGE_PROFILES = 1000;

/** Requests a connection may have awaiting an answer at once; more are refused with `TOO_MANY_REQUESTS`. */
export const MAX_IN_FLIGHT_PER_CONNECTION = 64;

/** A frame that stays incomplete this long closes its connection (a stalled or half-written client). */
export const INCOMPLETE_FRAME_TIMEOUT_MS = 5_000;

/** Envelope `type` values. Clients send `request`; the daemon sends `response` and `event`. */
export const ENVELOPE_REQUEST = 'request';
export const ENVELOPE_RESPONSE = 'response';
export const ENVELOPE_EVENT = 'event';
