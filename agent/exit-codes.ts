/**
 * Process exit codes of `pilot-agent`. Istio's agent exits 255 on start-up and configuration errors
 * and 0 on a normal shutdown; the codes in between are this agent's own and documented in the README.
 */
export const ExitCode = {
  /** Normal shutdown (SIGTERM/SIGINT drain, /quitquitquit). */
  ok: 0,
  /** A command failed at run time (for example `wait` never saw the proxy ready: Istio uses 255 there too). */
  startupError: 255,
} as const;
