import { EventEmitter } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  istioCertificateService,
} from '../../agent/identity/ca-service.ts';
import { TestCertificateAuthority } from './certificate-authority.ts';

/** Names istiod's serving certificate covers by default (the agent maps `localhost` to the first). */
export const defaultServingNames = [
  'istiod.istio-system.svc',
  'istiod.istio-system.svc.cluster.local',
  'istiod',
  'localhost',
];

/** Ways the CA can misbehave; set with {@link TestIstiod.setCaFaults}. */
export interface CaFaults {
  /** Answer the next N calls with UNAVAILABLE. */
  readonly failFirst?: number;
  /** Wait this long before answering each call. */
  readonly delayMilliseconds?: number;
  /** Reject every call with this code (e.g. PERMISSION_DENIED). */
  readonly reject?: { readonly code: status; readonly message?: string };
  /** Sign, but answer with a broken chain. */
  readonly chain?: 'garbage' | 'one-element' | 'wrong-san';
}

/** One `CreateCertificate` call as the CA saw it. */
export interface RecordedCertificateRequest {
  /** The `clusterid` header (keys arrive lowercased). */
  readonly clusterId: string | undefined;
  readonly authorization: string | undefined;
  /** Every header of the call, lowercased, first value. */
  readonly headers: Readonly<Record<string, string>>;
  readonly csrUris: readonly string[];
  readonly csrKeyAlgorithm: string;
  readonly csrKeyDetail: string;
  readonly csrSanCritical: boolean;
  readonly validitySeconds: number;
  readonly certSigner: string | undefined;
  /** `OK` or the gRPC status name it was answered with. */
  readonly outcome: string;
}

export interface TestIstiodOptions {
  /** 0 (the default) lets the kernel pick a free port. */
  readonly port?: number;
  /** Where the root certificate is written for the agent to trust (created with its directories). */
  readonly rootCertFile?: string;
  /** A CA made beforehand (to write its root before istiod is up); a new one otherwise. */
  readonly certificateAuthority?: TestCertificateAuthority;
  /** When set, the bearer token must equal this file's trimmed content (re-read on each call). */
  readonly tokenFile?: string;
  /** Extra DNS names for the serving certificate (e.g. an `ISTIOD_SAN`). */
  readonly servingNames?: readonly string[];
  /** Further gRPC services (e.g. ADS), registered next to the CA. */
  readonly services?: readonly TestIstiodService[];
}

export interface TestIstiodService {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
  readonly options?: AddServiceOptions;
}

export interface AddServiceOptions {
  /**
   * Check the bearer token against `tokenFile` before handing a call to the service, as istiod does for XDS;
   * a wrong or missing token is refused with UNAUTHENTICATED.
   */
  readonly authenticate?: boolean;
}

/** One call to a service registered with {@link TestIstiod.addService}, as istiod saw it. */
export interface RecordedServiceCall {
  /** `/package.Service/Method`. */
  readonly path: string;
  /** Every header of the call, lowercased, first value. */
  readonly headers: Readonly<Record<string, string>>;
  /** `OK` when handed to the service, else the status it was refused with. */
  readonly outcome: string;
}

interface TestIstiodEvents {
  'certificate-request': [request: RecordedCertificateRequest];
  'service-call': [call: RecordedServiceCall];
}

/** Any server-side call: unary and client-streaming handlers also get a callback. */
interface AnyServerCall {
  readonly metadata: Metadata;
  emit(event: 'error', error: object): boolean;
}
type AnyHandler = (call: AnyServerCall, callback?: sendUnaryData<unknown>) => void;

/**
 * A stand-in for istiod on a free port over TLS (like port 15012): serves the Istio CA
 * (`istio.v1.auth.IstioCertificateService/CreateCertificate`), records every request, injects faults, and
 * hosts further services (the XDS tests add ADS through `services` or {@link addService}).
 */
export class TestIstiod extends EventEmitter<TestIstiodEvents> {
  readonly port: number;
  readonly ca: TestCertificateAuthority;
  /** The root certificate file the agent is configured to trust (undefined when none was asked for). */
  readonly rootCertFile: string | undefined;
  readonly certificateRequests: RecordedCertificateRequest[] = [];
  /** Calls to the services added with {@link addService}, in arrival order. */
  readonly serviceCalls: RecordedServiceCall[] = [];
  readonly #server: Server;
  readonly #tokenFile: string | undefined;
  #faults: CaFaults = {};
  #failuresLeft = 0;

  private constructor(
    server: Server,
    port: number,
    ca: TestCertificateAuthority,
    options: TestIstiodOptions,
  ) {
    super();
    this.#server = server;
    this.port = port;
    this.ca = ca;
    this.rootCertFile = options.rootCertFile;
    this.#tokenFile = options.tokenFile;
  }

  /** `localhost:<port>`, what `CA_ADDR` / `discoveryAddress` should say. */
  get address(): string {
    return `localhost:${this.port}`;
  }

  static async start(options: TestIstiodOptions = {}): Promise<TestIstiod> {
    const ca = options.certificateAuthority ?? (await TestCertificateAuthority.create());
    const serving = await ca.issueServingCertificate(
      [...defaultServingNames, ...(options.servingNames ?? [])],
      ['127.0.0.1', '::1'],
    );
    if (options.rootCertFile !== undefined) {
      await mkdir(path.dirname(options.rootCertFile), { recursive: true });
      await writeFile(options.rootCertFile, ca.rootCertPem);
    }
    const server = new Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `localhost:${options.port ?? 0}`,
        ServerCredentials.createSsl(
          null,
          [
            {
              cert_chain: Buffer.from(serving.certificateChainPem),
              private_key: Buffer.from(serving.privateKeyPem),
            },
          ],
          false,
        ),
        (error, boundPort) => (error ? reject(error) : resolve(boundPort)),
      ),
    );
    const istiod = new TestIstiod(server, port, ca, options);
    server.addService(istioCertificateService().service, {
      CreateCertificate: (
        call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
        callback: sendUnaryData<IstioCertificateResponse>,
      ) => void istiod.#createCertificate(call, callback),
    });
    for (const service of options.services ?? [])
      istiod.addService(service.definition, service.implementation, service.options);
    return istiod;
  }

  /**
   * Registers another service (works before or after clients connect). Its calls are recorded in
   * {@link serviceCalls}; with `authenticate`, only callers with the right bearer token reach it.
   */
  addService(
    definition: ServiceDefinition,
    implementation: UntypedServiceImplementation,
    options: AddServiceOptions = {},
  ): void {
    const wrapped: UntypedServiceImplementation = {};
    for (const [name, handler] of Object.entries(implementation)) {
      const path = definition[name]?.path ?? name;
      wrapped[name] = ((call: AnyServerCall, callback?: sendUnaryData<unknown>) =>
        this.#admit(path, call, callback, handler as AnyHandler, options)) as AnyHandler;
    }
    this.#server.addService(definition, wrapped);
  }

  /** Replaces the CA's faults; `failFirst` counts from now. */
  setCaFaults(faults: CaFaults): void {
    this.#faults = faults;
    this.#failuresLeft = faults.failFirst ?? 0;
  }

  /** Resolves once `count` CSRs were recorded in total (a readiness poll on events, no sleeping). */
  async waitForCertificateRequests(count: number): Promise<RecordedCertificateRequest[]> {
    while (this.certificateRequests.length < count) {
      await EventEmitter.once(this, 'certificate-request');
    }
    return this.certificateRequests.slice(0, count);
  }

  async stop(): Promise<void> {
    this.#server.forceShutdown();
  }

  #admit(
    path: string,
    call: AnyServerCall,
    callback: sendUnaryData<unknown> | undefined,
    handler: AnyHandler,
    options: AddServiceOptions,
  ): void {
    const headers = headerMap(call.metadata);
    const record = (outcome: string) => {
      const recorded: RecordedServiceCall = {
        path,
        headers,
        outcome,
      };
      this.serviceCalls.push(recorded);
      this.emit('service-call', recorded);
    };
    if (!options.authenticate) {
      record('OK');
      handler(call, callback);
      return;
    }
    // Messages sent meanwhile wait in the call until the handler starts reading.
    void this.#authenticate(headers.authorization).then((failure) => {
      if (failure === undefined) {
        record('OK');
        handler(call, callback);
        return;
      }
      record(status[status.UNAUTHENTICATED] ?? 'UNAUTHENTICATED');
      const error = { code: status.UNAUTHENTICATED, details: failure, metadata: new Metadata() };
      if (callback) callback(error);
      else call.emit('error', error);
    });
  }

  async #createCertificate(
    call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
    callback: sendUnaryData<IstioCertificateResponse>,
  ): Promise<void> {
    const headers = headerMap(call.metadata);
    const request = call.request;
    let csr: Awaited<ReturnType<TestCertificateAuthority['inspectCsr']>> | undefined;
    const record = (outcome: string) => {
      const recorded: RecordedCertificateRequest = {
        clusterId: headers.clusterid,
        authorization: headers.authorization,
        headers,
        csrUris: csr?.uris ?? [],
        csrKeyAlgorithm: csr?.keyAlgorithm ?? '',
        csrKeyDetail: csr?.keyDetail ?? '',
        csrSanCritical: csr?.sanCritical ?? false,
        validitySeconds: Number(request.validity_duration),
        certSigner: request.metadata?.fields.CertSigner?.stringValue,
        outcome,
      };
      this.certificateRequests.push(recorded);
      this.emit('certificate-request', recorded);
    };
    const fail = (code: status, details: string) => {
      record(status[code] ?? String(code));
      callback({ code, details, metadata: new Metadata() });
    };
    const faults = this.#faults;
    if (faults.delayMilliseconds !== undefined) await delay(faults.delayMilliseconds);
    try {
      csr = await this.ca.inspectCsr(request.csr);
    } catch (error) {
      fail(status.INVALID_ARGUMENT, `bad CSR: ${(error as Error).message}`);
      return;
    }
    if (this.#failuresLeft > 0) {
      this.#failuresLeft -= 1;
      fail(status.UNAVAILABLE, 'injected fault: CA unavailable');
      return;
    }
    if (faults.reject) {
      fail(faults.reject.code, faults.reject.message ?? 'injected fault: request rejected');
      return;
    }
    const authenticationError = await this.#authenticate(headers.authorization);
    if (authenticationError !== undefined) {
      fail(status.UNAUTHENTICATED, authenticationError);
      return;
    }
    const validitySeconds =
      Number(request.validity_duration) > 0 ? Number(request.validity_duration) : 24 * 3600;
    let chain: string[];
    if (faults.chain === 'garbage') {
      chain = ['this is not a certificate', this.ca.rootCertPem];
    } else {
      const leaf = await this.ca.signCsr(
        request.csr,
        validitySeconds,
        faults.chain === 'wrong-san' ? 'spiffe://cluster.local/ns/other/sa/impostor' : undefined,
      );
      chain = faults.chain === 'one-element' ? [leaf] : [leaf, this.ca.rootCertPem];
    }
    record('OK');
    callback(null, { cert_chain: chain });
  }

  async #authenticate(authorization: string | undefined): Promise<string | undefined> {
    if (this.#tokenFile === undefined) return undefined;
    const expected = (await readFile(this.#tokenFile, 'utf8')).trim();
    if (authorization === undefined) return 'authenticate failure: no bearer token';
    if (authorization !== `Bearer ${expected}`) return 'authenticate failure: the token is not valid';
    return undefined;
  }
}

function headerMap(metadata: Metadata): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, values] of Object.entries(metadata.getMap())) {
    headers[key] = Buffer.isBuffer(values) ? values.toString('base64') : String(values);
  }
  return headers;
}
