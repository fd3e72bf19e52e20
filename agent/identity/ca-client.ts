import { type ServiceError, status } from '@grpc/grpc-js';
import { type Clock, type Random, sleep } from '../clock.ts';
import type { IstiodChannelFactory } from '../istiod/channel-factory.ts';
import type { Logger } from '../log.ts';
import { callRetryBackoff, ExponentialBackoff } from './backoff.ts';
import {
  type IstioCertificateClient,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  istioCertificateService,
} from './ca-service.ts';
import { csrRequestType, type IdentityMetrics } from './metrics.ts';

/** Codes Istio's CA client retries within one request. */
const retriedCodes: ReadonlySet<status> = new Set([
  status.CANCELLED,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
  status.INTERNAL,
  status.UNAVAILABLE,
]);

export interface CaClientOptions {
  /** Opens the authenticated channel (called lazily, again after it failed, e.g. a missing root file). */
  readonly openChannel: () => Promise<IstiodChannelFactory>;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly metrics: IdentityMetrics;
  /** `ISTIO_META_CERT_SIGNER`, sent as `metadata.CertSigner`. */
  readonly certSigner?: string;
  /** Istio's `WithMax(5)`: the first call and up to four retries. */
  readonly maxAttempts?: number;
  /** Deadline of each attempt (gRPC deadlines run on the real clock). */
  readonly attemptTimeoutMilliseconds?: number;
  /** Named in the error when istiod rejects the caller, so the operator knows which token was sent. */
  readonly tokenFile?: string;
}

/** A CSR that istiod did not sign; `code` is the gRPC status of the last attempt when there was one. */
export class CertificateRequestError extends Error {
  readonly code: status | undefined;

  constructor(message: string, code: status | undefined, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CertificateRequestError';
    this.code = code;
  }
}

/** Istio's CA client: one `CreateCertificate` per CSR, retrying transient failures with backoff. */
export class CaClient {
  readonly #options: CaClientOptions;
  #connection: { factory: IstiodChannelFactory; client: IstioCertificateClient } | undefined;

  constructor(options: CaClientOptions) {
    this.#options = options;
  }

  /** Sends the CSR; resolves with the PEM chain (leaf first), unchecked (see certificate-verification.ts). */
  async createCertificate(csrPem: string, validitySeconds: number, signal?: AbortSignal): Promise<string[]> {
    const { metrics, clock } = this.#options;
    const labels = { request_type: csrRequestType };
    metrics.outgoingRequests.inc(labels);
    const started = clock.now();
    try {
      return await this.#createWithRetries(csrPem, validitySeconds, signal);
    } catch (error) {
      metrics.failedOutgoingRequests.inc(labels);
      // A fresh channel next time: gRPC's own reconnect backoff (up to 2 minutes) would otherwise delay the
      // first call after istiod comes back, and a replaced root certificate file is read again.
      if (!(error instanceof CertificateRequestError) || error.code !== status.UNAUTHENTICATED) this.close();
      throw error;
    } finally {
      metrics.outgoingLatency.inc(labels, Math.max(0, clock.now() - started));
    }
  }

  close(): void {
    this.#connection?.client.close();
    this.#connection = undefined;
  }

  async #createWithRetries(csrPem: string, validitySeconds: number, signal?: AbortSignal): Promise<string[]> {
    const { clock, random, logger, metrics } = this.#options;
    const maxAttempts = this.#options.maxAttempts ?? 5;
    const backoff = new ExponentialBackoff(callRetryBackoff, random);
    const request: IstioCertificateRequest = {
      csr: csrPem,
      validity_duration: String(validitySeconds),
      metadata:
        this.#options.certSigner !== undefined
          ? { fields: { CertSigner: { stringValue: this.#options.certSigner, kind: 'stringValue' } } }
          : null,
    };
    const { factory, client } = await this.#connect();
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.#call(client, request, signal);
        return [...response.cert_chain];
      } catch (error) {
        const serviceError = error as ServiceError;
        const retry = retriedCodes.has(serviceError.code) && attempt < maxAttempts && !signal?.aborted;
        const where = `CreateCertificate to ${factory.target} (TLS server name ${factory.serverName})`;
        if (!retry) {
          throw new CertificateRequestError(
            `${where} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${describe(serviceError)}${this.#hint(serviceError.code)}`,
            serviceError.code,
            { cause: error },
          );
        }
        const delay = backoff.next();
        metrics.outgoingRetries.inc({ request_type: csrRequestType });
        logger.warn(`${where} failed (${describe(serviceError)}), retrying in ${delay} ms`);
        await sleep(clock, delay, signal);
      }
    }
  }

  async #connect(): Promise<{ factory: IstiodChannelFactory; client: IstioCertificateClient }> {
    if (!this.#connection) {
      let factory: IstiodChannelFactory;
      try {
        factory = await this.#options.openChannel();
      } catch (error) {
        throw new CertificateRequestError((error as Error).message, undefined, { cause: error });
      }
      const client = factory.createClient(istioCertificateService()) as unknown as IstioCertificateClient;
      this.#connection = { factory, client };
    }
    return this.#connection;
  }

  #call(
    client: IstioCertificateClient,
    request: IstioCertificateRequest,
    signal?: AbortSignal,
  ): Promise<IstioCertificateResponse> {
    const timeout = this.#options.attemptTimeoutMilliseconds ?? 10_000;
    return new Promise((resolve, reject) => {
      const call = client.CreateCertificate(
        request,
        { deadline: Date.now() + timeout },
        (error, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(response ?? { cert_chain: [] });
        },
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #hint(code: status | undefined): string {
    if (code === status.UNAUTHENTICATED || code === status.PERMISSION_DENIED) {
      return this.#options.tokenFile !== undefined
        ? ` (istiod rejected the caller; the bearer token comes from ${this.#options.tokenFile})`
        : ' (istiod rejected the caller)';
    }
    if (code === status.UNAVAILABLE)
      return ' (is istiod running and reachable, and does it present a certificate for that name?)';
    return '';
  }
}

function describe(error: ServiceError): string {
  const name = status[error.code] ?? `code ${error.code}`;
  return `${name}: ${error.details || error.message}`;
}
