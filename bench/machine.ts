/**
 * The machine a run happened on, and CPU accounting from /proc: the server
 * shares the two cores with the client, so CPU per operation on each side
 * tells where the time goes, and what other processes used tells how noisy a
 * run was.
 */
import * as fs from "node:fs"
import * as os from "node:os"

export interface MachineInfo {
  readonly cpuModel: string
  readonly cores: number
  readonly memoryGiB: number
  readonly os: string
  readonly node: string
}

export const machineInfo = (): MachineInfo => ({
  cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
  cores: os.availableParallelism(),
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  os: `${os.type()} ${os.release()}`,
  node: process.version
})

const clockTicksPerSecond = 100

/**
 * The CPU time (user + system, in ms) the processes `pids` have used so far,
 * from /proc; null where /proc is not there. Processes that are gone count 0.
 */
export const processCpuMs = (pids: ReadonlyArray<number>): number | null => {
  if (!fs.existsSync("/proc/self/stat")) return null
  let ticks = 0
  for (const pid of pids) {
    let stat: string
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    } catch {
      continue
    }
    // "pid (comm) state …": comm may hold spaces, so split after its closing parenthesis;
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm)".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return (ticks * 1000) / clockTicksPerSecond
}

/**
 * The CPU time (ms) the whole machine has spent busy since boot, from the
 * first line of /proc/stat; null where it is not there. What the client and
 * PostgreSQL do not account for during a run was spent by other processes:
 * the measure of how noisy the machine was.
 */
export const machineBusyMs = (): number | null => {
  let line: string | undefined
  try {
    line = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0]
  } catch {
    return null
  }
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice
  const [, user, nice, system, , , irq, softirq, steal] = (line ?? "").trim().split(/\s+/).map(Number)
  const busy = [user, nice, system, irq, softirq, steal].reduce<number>((sum, value) => sum + (value ?? 0), 0)
  return (busy * 1000) / clockTicksPerSecond
}
