/** Reading processes and the machine from Linux's /proc: memory, CPU time and load. */

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux for x86 and arm). */
const TICKS_PER_SECOND = 100;

/** A process's memory in MiB: now (VmRSS) and its peak (VmHWM). */
export interface Memory {
  rssMb: number;
  peakMb: number;
}

/** VmRSS and VmHWM of `pid`, or undefined once the process is gone. */
export async function memoryOf(pid: number): Promise<Memory | undefined> {
  const text = await readProc(`/proc/${pid}/status`);
  return text === undefined ? undefined : parseStatusMemory(text);
}

/** VmRSS and VmHWM from the text of /proc/<pid>/status. Pure. */
export function parseStatusMemory(status: string): Memory {
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMb: kib("VmRSS") / 1024, peakMb: kib("VmHWM") / 1024 };
}

/** CPU seconds (user + system) `pid` used so far, or undefined once it is gone. */
export async function cpuSecondsOf(pid: number): Promise<number | undefined> {
  const text = await readProc(`/proc/${pid}/stat`);
  return text === undefined ? undefined : parseStatCpuSeconds(text);
}

/** utime + stime from the text of /proc/<pid>/stat, in seconds. Pure. */
export function parseStatCpuSeconds(stat: string): number {
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU time of the whole machine, from /proc/stat's first line, in seconds. */
export interface MachineCpu {
  busy: number;
  total: number;
}

/** The machine's busy and total CPU seconds so far (all cores). */
export async function machineCpu(): Promise<MachineCpu> {
  return parseMachineCpu((await readProc("/proc/stat")) ?? "");
}

/** Busy and total seconds from the text of /proc/stat. Pure. */
export function parseMachineCpu(stat: string): MachineCpu {
  const cells = (stat.split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const total = cells.reduce((sum, value) => sum + value, 0);
  // idle and iowait are the 4th and 5th numbers.
  const idle = (cells[3] ?? 0) + (cells[4] ?? 0);
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

/** The 1-minute load average. */
export async function loadAverage(): Promise<number> {
  return Number(((await readProc("/proc/loadavg")) ?? "NaN").split(" ")[0]);
}

/** The pids of processes whose command line contains `needle`, the caller excluded. */
export async function pidsWithArgument(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    const cmdline = await readProc(`/proc/${entry.name}/cmdline`);
    if (cmdline?.split("\0").includes(needle)) pids.push(Number(entry.name));
  }
  return pids;
}

async function readProc(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined; // the process ended meanwhile
  }
}
