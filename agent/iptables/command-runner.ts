import { execa } from 'execa';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs an external program (iptables-restore, ip, …) to completion; never throws for a non-zero exit. */
export type RunCommand = (
  file: string,
  argumentList: readonly string[],
  input?: string,
) => Promise<CommandResult>;

/** A program the capture needs is not installed. */
export class MissingProgramError extends Error {
  readonly program: string;

  constructor(program: string) {
    const packageName = program === 'ip' ? 'iproute2' : 'iptables';
    super(`${program} is not installed or not on PATH (Debian package ${packageName})`);
    this.name = 'MissingProgramError';
    this.program = program;
  }
}

export const runCommand: RunCommand = async (file, argumentList, input) => {
  const result = await execa(file, argumentList, {
    reject: false,
    stripFinalNewline: false,
    timeout: 60_000,
    ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
  });
  if ((result as { code?: string }).code === 'ENOENT') throw new MissingProgramError(file);
  return {
    exitCode: result.exitCode ?? 1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
  };
};
