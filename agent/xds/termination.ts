import { status } from '@grpc/grpc-js';
import type { TerminationType } from './metrics.ts';

/**
 * UNAVAILABLE details that mean the peer went away as peers do (a restart, a closed connection), not that
 * something is broken: Go gRPC's wording, which Istio matches, and grpc-js's equivalent.
 */
const expectedUnavailableDetails = [
  'client disconnected',
  'error reading from server: EOF',
  'transport is closing',
  'Connection dropped',
];

/** Wording of a graceful HTTP/2 close that may arrive under any code. */
const gracefulCloseDetails = [
  'stream terminated by RST_STREAM with error code: NO_ERROR',
  'received prior goaway: code: NO_ERROR',
];

/**
 * How Istio's agent types the end of a proxied stream for `istio_agent_*_connection_terminations{type}`:
 * a graceful end (OK), a cancellation, a deadline, or a dropped connection is `cancelled`; anything else
 * is an `error`.
 */
export function terminationType(code: status, details: string): TerminationType {
  if (code === status.OK || code === status.CANCELLED || code === status.DEADLINE_EXCEEDED)
    return 'cancelled';
  if (code === status.UNAVAILABLE && expectedUnavailableDetails.some((text) => details.includes(text))) {
    return 'cancelled';
  }
  if (gracefulCloseDetails.some((text) => details.includes(text))) return 'cancelled';
  return 'error';
}

/** istiod refused the caller: a wrong, expired or missing token, or an identity it does not accept. */
export function isAuthenticationFailure(code: status): boolean {
  return code === status.UNAUTHENTICATED || code === status.PERMISSION_DENIED;
}

/** `UNAVAILABLE` rather than `14`, for log lines. */
export function statusName(code: status): string {
  return status[code] ?? String(code);
}
