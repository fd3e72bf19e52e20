import test from 'ava';
import { callRetryBackoff, certificateBackoff, ExponentialBackoff } from '../../agent/identity/backoff.ts';
import { rotationDelay } from '../../agent/identity/rotation.ts';

const hour = 3600_000;

test('rotation falls at expiry − ratio × lifetime, the ratio jittered by ±0.01', (t) => {
  const base = { receivedAt: 0, notAfter: 24 * hour, gracePeriodRatio: 0.5, now: 0 };
  t.is(rotationDelay({ ...base, random: () => 0.5 }), 12 * hour);
  t.is(rotationDelay({ ...base, random: () => 0 }), Math.round(24 * hour - 0.49 * 24 * hour));
  t.is(rotationDelay({ ...base, random: () => 1 }), Math.round(24 * hour - 0.51 * 24 * hour));
  t.is(rotationDelay({ ...base, gracePeriodRatio: 0.2, random: () => 0.5 }), Math.round(0.8 * 24 * hour));
  // Counted from now, never negative.
  t.is(rotationDelay({ ...base, now: 2 * hour, random: () => 0.5 }), 10 * hour);
  t.is(rotationDelay({ ...base, now: 20 * hour, random: () => 0.5 }), 0);
});

test('backoff doubles from its start to its cap, with jitter within the ratio', (t) => {
  const flat = new ExponentialBackoff(certificateBackoff, () => 0.5);
  const delays = Array.from({ length: 10 }, () => flat.next());
  t.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  flat.reset();
  t.is(flat.next(), 500);
  t.is(new ExponentialBackoff(callRetryBackoff, () => 0).next(), 90);
  t.is(new ExponentialBackoff(callRetryBackoff, () => 0.9999999).next(), 110);
});
