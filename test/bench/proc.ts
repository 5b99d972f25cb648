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

/**
 * CPU time the process has used so far including its waited-for children (wrk runs as one), in
 * microseconds. Read for the bench's own process.
 */
function cpuMicrosWithChildren(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((total, i) => total + Number(fields[i]), 0);
  return (ticks * 1_000_000) / clockTicksPerSecond();
}

/** Busy CPU time of the whole machine, all cores, from the first line of /proc/stat, in µs. */
function machineBusyMicros(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const ticks = [user, nice, system, irq, softirq, steal].reduce<number>(
    (total, value) => total + (value ?? 0),
    0,
  );
  return (ticks * 1_000_000) / clockTicksPerSecond();
}

/**
 * Measures how much CPU processes outside the bench took while it ran: on a shared two-core
 * machine a compiler or test run next door moves every figure, and the reader should see it.
 */
export class ForeignCpu {
  private readonly machineBefore = machineBusyMicros();
  private readonly benchBefore: number;
  private readonly started = performance.now();

  constructor(private readonly benchPids: number[]) {
    this.benchBefore = this.benchMicros();
  }

  /** Foreign CPU since construction, in cores (0.5 = half of one core busy on average). */
  stop(): number {
    const elapsedMicros = (performance.now() - this.started) * 1000;
    const machine = machineBusyMicros() - this.machineBefore;
    const bench = this.benchMicros() - this.benchBefore;
    return Math.max(0, machine - bench) / elapsedMicros;
  }

  private benchMicros(): number {
    let total = cpuMicrosWithChildren('self');
    for (const pid of this.benchPids) {
      try {
        total += cpuMicros(pid);
      } catch {
        // A process that is gone used nothing more.
      }
    }
    return total;
  }
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
