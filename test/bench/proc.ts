import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Per-process CPU and memory from Linux /proc, so that each of upstream, floor, gateway and
 * Redis is charged only for its own work.
 */

let ticksPerSecond: number | undefined;

/** USER_HZ, the unit of utime and stime in /proc/<pid>/stat; 100 on almost every Linux. */
function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      ticksPerSecond = 100;
    }
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** User plus system CPU time the process has used so far, in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1_000_000) / clockTicksPerSecond();
}

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM), converted to MB. */
function statusMegabytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (match?.[1] === undefined) throw new Error(`no ${field} for pid ${pid}`);
  return Number(match[1]) / 1024;
}

export function rssMegabytes(pid: number): number {
  return statusMegabytes(pid, 'VmRSS');
}

/**
 * Watches one process's peak resident memory over a stretch of time. The kernel keeps the peak
 * (VmHWM) for the whole life of the process, so it is reset first by writing 5 to clear_refs;
 * where that is not allowed, VmRSS is sampled every 100 ms instead and may miss a short spike.
 */
export class PeakRss {
  private sampledPeak = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly kernelPeak: boolean;

  constructor(private readonly pid: number) {
    this.kernelPeak = resetKernelPeak(pid);
    this.sample();
    this.timer = setInterval(() => this.sample(), 100);
  }

  /** Stops watching and returns the peak in MB. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    if (!this.kernelPeak) return this.sampledPeak;
    return Math.max(this.sampledPeak, statusMegabytes(this.pid, 'VmHWM'));
  }

  private sample(): void {
    try {
      this.sampledPeak = Math.max(this.sampledPeak, rssMegabytes(this.pid));
    } catch {
      // The process is gone; the round that follows reports the failure.
    }
  }
}

function resetKernelPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
