import type { Logging } from '../log.ts';

/** What every command receives from the entry point instead of reaching for globals. */
export interface CommandContext {
  readonly environment: NodeJS.ProcessEnv;
  readonly workingDirectory: string;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Standard input, for commands that read `-`. */
  readonly stdin?: NodeJS.ReadableStream;
  /** Flags on the command line that no command declares; Istio accepts them, this agent warns. */
  readonly unknownFlags: readonly string[];
  /** Creates the loggers once the log flags are known. */
  readonly createLogging: (options: {
    levels: Readonly<Record<string, import('../config/log-levels.ts').AgentLogLevel>>;
    asJson: boolean;
  }) => Logging;
}
