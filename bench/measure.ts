/**
 * Timing a piece of work and accounting for the CPU it cost, and turning what
 * was measured into `Metrics`.
 */
import * as os from "node:os"
import * as Database from "./database.js"
import { machineBusyMs, processCpuMs } from "./machine.js"
import type { LiveMetrics, MemoryMetrics, Metrics } from "./protocol.js"

export interface Measured<A> {
  readonly value: A
  readonly seconds: number
  /** This process and the helpers. */
  readonly clientCpuMs: number
  /** The helpers alone. */
  readonly helperCpuMs: number
  readonly serverCpuMs: number | null
  readonly otherCpuPercent: number | null
}

/**
 * Times `f` and accounts for the CPU it cost: this process and the `helpers`
 * (other processes of the contender, such as a subscriber: the client), the
 * PostgreSQL backends of the contender's pools (opened before the clock
 * starts: the server), and everything else on the machine.
 */
export const measure = async <A>(f: () => Promise<A>, helpers: ReadonlyArray<number> = []): Promise<Measured<A>> => {
  const backends = await Database.contenderBackends()
  const busyBefore = machineBusyMs()
  const serverBefore = processCpuMs(backends)
  const helpersBefore = processCpuMs(helpers) ?? 0
  const clientBefore = process.cpuUsage()
  const started = performance.now()
  const value = await f()
  const seconds = (performance.now() - started) / 1000
  const client = process.cpuUsage(clientBefore)
  const helpersMs = (processCpuMs(helpers) ?? 0) - helpersBefore
  const serverAfter = processCpuMs(backends)
  const busyAfter = machineBusyMs()
  const clientCpuMs = (client.user + client.system) / 1000 + helpersMs
  const serverCpuMs = serverBefore === null || serverAfter === null ? null : serverAfter - serverBefore
  const otherCpuMs = busyBefore === null || busyAfter === null || serverCpuMs === null
    ? null
    : Math.max(0, busyAfter - busyBefore - clientCpuMs - serverCpuMs)
  return {
    value,
    seconds,
    clientCpuMs,
    helperCpuMs: helpersMs,
    serverCpuMs,
    otherCpuPercent: otherCpuMs === null ? null : (100 * otherCpuMs) / (seconds * 1000 * os.availableParallelism())
  }
}

/** The nearest-rank percentile of sorted values. */
const percentile = (sorted: ReadonlyArray<number>, q: number): number | null =>
  sorted.length === 0
    ? null
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null

export interface Counts {
  /** Appends, whole reads, or events delivered or applied. */
  readonly operations: number
  readonly events: number
  /** Per operation, in ms, where the workload times each. */
  readonly latencies?: ReadonlyArray<number> | undefined
  /** The wall time the rates divide by, when it is not the measured time (default: `measured.seconds`). */
  readonly seconds?: number | undefined
  readonly memory?: MemoryMetrics | undefined
  readonly live?: Omit<LiveMetrics, "maxMs"> | undefined
  readonly appliedEvents?: number | undefined
}

export const toMetrics = (measured: Measured<unknown>, counts: Counts): Metrics => {
  const sorted = [...counts.latencies ?? []].sort((a, b) => a - b)
  const seconds = counts.seconds ?? measured.seconds
  const perOperation = (ms: number) => (ms * 1000) / Math.max(counts.operations, 1)
  return {
    seconds,
    operations: counts.operations,
    events: counts.events,
    operationsPerSecond: counts.operations / seconds,
    eventsPerSecond: counts.events / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    clientCpuUsPerOp: perOperation(measured.clientCpuMs),
    serverCpuUsPerOp: measured.serverCpuMs === null ? null : perOperation(measured.serverCpuMs),
    otherCpuPercent: measured.otherCpuPercent,
    memory: counts.memory ?? null,
    live: counts.live === undefined ? null : { ...counts.live, maxMs: sorted[sorted.length - 1] ?? 0 },
    appliedEvents: counts.appliedEvents ?? null
  }
}
