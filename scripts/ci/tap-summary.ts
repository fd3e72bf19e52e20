// Prints "N passed, N failed" from a TAP stream's closing "# pass" / "# fail" lines; fails when they are
// missing, so that a run that crashed before its summary can never look green.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) throw new Error('usage: tap-summary.ts <file.tap>');
const tap = readFileSync(file, 'utf8');
const count = (label: string) => {
  const matches = [...tap.matchAll(new RegExp(`^# ${label} (\\d+)$`, 'gm'))];
  return matches.length > 0 ? Number(matches.at(-1)?.[1]) : undefined;
};
const passed = count('pass');
const failed = count('fail') ?? 0;
if (passed === undefined) {
  console.log(`0 passed, ${Math.max(failed, 1)} failed`);
  process.exitCode = 1;
} else {
  console.log(`${passed} passed, ${failed} failed`);
  if (passed === 0) process.exitCode = 1;
}
