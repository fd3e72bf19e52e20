import type { Random } from '../clock.ts';

/** Istio's jitter on `SECRET_GRACE_PERIOD_RATIO`. */
export const gracePeriodRatioJitter = 0.01;

export interface RotationInputs {
  /** When the certificate was obtained (clock ms); Istio counts the lifetime from there. */
  readonly receivedAt: number;
  readonly notAfter: number;
  /** `SECRET_GRACE_PERIOD_RATIO` (0.5 by default). */
  readonly gracePeriodRatio: number;
  readonly now: number;
  readonly random: Random;
}

/**
 * Milliseconds from `now` until the certificate should be replaced: at
 * `notAfter − (ratio ± jitter) × lifetime`, the jitter drawn uniformly within ±0.01 so that a fleet started
 * together does not rotate together. Never negative.
 */
export function rotationDelay(inputs: RotationInputs): number {
  const lifetime = Math.max(0, inputs.notAfter - inputs.receivedAt);
  const ratio = inputs.gracePeriodRatio + (inputs.random() * 2 - 1) * gracePeriodRatioJitter;
  const rotateAt = inputs.notAfter - ratio * lifetime;
  return Math.max(0, Math.round(rotateAt - inputs.now));
}
