import { status } from '@grpc/grpc-js';
import test from 'ava';
import { isAuthenticationFailure, terminationType } from '../../agent/xds/termination.ts';

test('terminations are typed as Istio types them: peers going away are cancellations, the rest errors', (t) => {
  t.is(terminationType(status.OK, ''), 'cancelled');
  t.is(terminationType(status.CANCELLED, 'Cancelled on client'), 'cancelled');
  t.is(terminationType(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), 'cancelled');
  t.is(terminationType(status.UNAVAILABLE, 'Connection dropped'), 'cancelled');
  t.is(terminationType(status.UNAVAILABLE, 'transport is closing'), 'cancelled');
  t.is(terminationType(status.UNAVAILABLE, 'error reading from server: EOF'), 'cancelled');
  t.is(
    terminationType(status.INTERNAL, 'stream terminated by RST_STREAM with error code: NO_ERROR'),
    'cancelled',
  );
  t.is(terminationType(status.UNAVAILABLE, 'received prior goaway: code: NO_ERROR'), 'cancelled');
  t.is(terminationType(status.UNAVAILABLE, 'stream dropped by the test'), 'error');
  t.is(terminationType(status.UNAUTHENTICATED, 'authenticate failure'), 'error');
  t.is(terminationType(status.INTERNAL, 'boom'), 'error');
});

test('UNAUTHENTICATED and PERMISSION_DENIED are authentication failures', (t) => {
  t.true(isAuthenticationFailure(status.UNAUTHENTICATED));
  t.true(isAuthenticationFailure(status.PERMISSION_DENIED));
  t.false(isAuthenticationFailure(status.UNAVAILABLE));
});
