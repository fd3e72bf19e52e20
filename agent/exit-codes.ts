/**
 * Process exit codes of `pilot-agent`. Istio's agent exits 255 on start-up and configuration errors
 * and 0 on a normal shutdown; the codes in between are this agent's own and documented in the README.
 */
export const ExitCode = {
  /** Normal shutdown (SIGTERM/SIGINT drain, /quitquitquit). */
  ok: 0,
  /**
   * Envoy kept failing: the restart budget (10 attempts, 200 ms doubling) is spent. The kubelet restarts
   * the container.
   */
  envoyRestartBudgetExhausted: 2,
  /** Configuration or start-up error, and commands that failed (`wait` timed out): Istio uses 255. */
  startupError: 255,
} as const;
