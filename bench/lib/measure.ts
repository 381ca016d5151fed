/**
 * Runs one command and measures wall time (monotonic clock, around spawn and exit) and peak RSS as the
 * OS reports it: `/usr/bin/time -f %M` (getrusage ru_maxrss of the largest process in the tree: for a
 * pipeline `sh -c 'a | b'` that is the larger of a and b, not their sum) when installed, else polling
 * VmHWM in /proc/<pid>/status of the direct child every 20 ms.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const TIME = '/usr/bin/time';
export const RSS_SOURCE = existsSync(TIME) ? '/usr/bin/time -f %M (ru_maxrss, largest process of the command)' : '/proc/<pid>/status VmHWM, polled every 20 ms';

export interface Measurement {
  readonly seconds: number;
  readonly peakRssKiB: number;
  readonly code: number;
  /** The last 2000 characters of stderr (for failures). */
  readonly stderrTail: string;
}

export interface MeasureOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

let sequence = 0;

/** Runs argv with stdout to /dev/null; never throws on a non-zero exit (check `code`). */
export async function measure(argv: readonly string[], options: MeasureOptions = {}): Promise<Measurement> {
  const useTime = existsSync(TIME);
  const timeFile = path.join(tmpdir(), `mv-bench-time-${process.pid}-${sequence++}`);
  const full = useTime ? [TIME, '-f', '%M', '-o', timeFile, ...argv] : [...argv];
  const devNull = openSync('/dev/null', 'w');
  let stderr = '';
  let peakPolled = 0;
  const started = process.hrtime.bigint();
  try {
    const child = spawn(full[0]!, full.slice(1), { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', devNull, 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-2000);
    });
    const poll = useTime
      ? null
      : setInterval(() => {
          readFile(`/proc/${child.pid}/status`, 'utf8').then(
            (s) => {
              const m = /VmHWM:\s+(\d+) kB/.exec(s);
              if (m) peakPolled = Math.max(peakPolled, Number(m[1]));
            },
            () => undefined,
          );
        }, 20);
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c) => resolve(c ?? -1));
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (poll) clearInterval(poll);
    let peakRssKiB = peakPolled;
    if (useTime) {
      const text = await readFile(timeFile, 'utf8').catch(() => '');
      // With a non-zero exit, time writes "Command exited with non-zero status N" before the value.
      const lines = text.trim().split('\n');
      peakRssKiB = Number(lines[lines.length - 1]) || 0;
      await rm(timeFile, { force: true });
    }
    return { seconds, peakRssKiB, code, stderrTail: stderr };
  } finally {
    closeSync(devNull);
  }
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
