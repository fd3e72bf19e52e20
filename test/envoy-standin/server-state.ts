import { EventEmitter } from 'node:events';

/** The init manager's progress (Envoy's Init::Manager::State). */
export type InitState = 'PRE_INITIALIZING' | 'INITIALIZING' | 'LIVE';
/** `admin.v3.ServerInfo.State`, what `/ready` and `/server_info` report. */
export type ServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';

/** The `server.state` gauge values. */
export const serverStateValues: Readonly<Record<ServerState, number>> = {
  LIVE: 0,
  DRAINING: 1,
  PRE_INITIALIZING: 2,
  INITIALIZING: 3,
};

export interface ServerStateEvents {
  change: [ServerState];
}

/**
 * Envoy's server state: the init manager's state, reported as DRAINING once initialized while
 * `/healthcheck/fail` is in force (Utility::serverState). Draining listeners does not change it.
 */
export class ServerStateTracker extends EventEmitter<ServerStateEvents> {
  #init: InitState = 'PRE_INITIALIZING';
  #healthCheckFailed = false;

  get initState(): InitState {
    return this.#init;
  }

  get healthCheckFailed(): boolean {
    return this.#healthCheckFailed;
  }

  get state(): ServerState {
    if (this.#init === 'LIVE') return this.#healthCheckFailed ? 'DRAINING' : 'LIVE';
    return this.#init;
  }

  setInitState(state: InitState): void {
    if (state === this.#init) return;
    this.#init = state;
    this.emit('change', this.state);
  }

  setHealthCheckFailed(failed: boolean): void {
    if (failed === this.#healthCheckFailed) return;
    this.#healthCheckFailed = failed;
    this.emit('change', this.state);
  }
}
