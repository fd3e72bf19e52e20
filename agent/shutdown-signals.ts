/**
 * SIGTERM and SIGINT, listened for from the moment the proxy command starts: a signal that arrives while
 * the agent is still starting must not kill it outright (Node's default), but begin an orderly shutdown.
 */
export interface ShutdownSignals {
  /** Resolves with the first shutdown signal received. */
  readonly received: Promise<NodeJS.Signals>;
  dispose(): void;
}

export function listenForShutdownSignals(): ShutdownSignals {
  let resolve!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((settle) => (resolve = settle));
  const onTerm = () => resolve('SIGTERM');
  const onInt = () => resolve('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  return {
    received,
    dispose() {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    },
  };
}
