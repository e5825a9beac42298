/**
 * The workloads as they run inside a contender's worker process: seeding, the
 * timed append loops, the reads and the memory sampling. Every contender runs
 * exactly this code; only the `Session` differs.
 */
import * as os from "node:os"
import type { Config } from "./config.js"
import type { Contender, Session } from "./contenders/Contender.js"
import * as Database from "./database.js"
import { sampleEvents } from "./events.js"
import { machineBusyMs, processCpuMs } from "./machine.js"
import type { MemoryMetrics, Metrics, Workload } from "./protocol.js"

/** What a worker remembers between runs: the versions of the long streams it keeps appending to. */
export interface WorkerState {
  readonly longStreams: Map<string, number>
}

export const makeState = (): WorkerState => ({ longStreams: new Map() })

const seedBatch = 100
const seedWriters = 4

const readStreamId = "Read-1"
const longStreamId = (writer: number) => `Long-${writer}`

/** Runs `f` over `items` with at most `concurrency` at a time. */
const forEachConcurrently = async <A>(items: ReadonlyArray<A>, concurrency: number, f: (item: A) => Promise<void>) => {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as A
      await f(item)
    }
  }))
}

/**
 * Fills the contender's log before the first workload: the million events of
 * the memory workload in bulk (where it can take them), then through its own
 * appends, in batches of 100: the stream that is read whole, the long streams,
 * and enough filler for the global read.
 */
export const seed = async (contender: Contender, config: Config, state: WorkerState): Promise<void> => {
  let logged = 0
  if (contender.bulkLoad !== undefined) {
    await contender.bulkLoad(config.memoryEvents)
    logged += config.memoryEvents
  }
  const streams: Array<readonly [string, number]> = [[readStreamId, config.readStreamEvents]]
  for (let writer = 0; writer < config.longStreams; writer++) {
    streams.push([longStreamId(writer), config.longStreamEvents])
  }
  logged += streams.reduce((sum, [, events]) => sum + events, 0)
  for (let filler = 1; logged < config.readAllEvents; filler++, logged += seedBatch) {
    streams.push([`Log-${filler}`, seedBatch])
  }
  const session = await contender.open(seedWriters)
  try {
    await forEachConcurrently(streams, seedWriters, async ([streamId, events]) => {
      for (let version = 0; version < events; version += seedBatch) {
        await session.append(streamId, sampleEvents(Math.min(seedBatch, events - version)), version)
      }
    })
  } finally {
    await session.close()
  }
  for (let writer = 0; writer < config.longStreams; writer++) {
    state.longStreams.set(longStreamId(writer), config.longStreamEvents)
  }
}

// --- measuring -----------------------------------------------------------------

interface Measured<A> {
  readonly value: A
  readonly seconds: number
  readonly clientCpuMs: number
  readonly serverCpuMs: number | null
  readonly otherCpuPercent: number | null
}

/**
 * Times `f` and accounts for the CPU it cost: this process (the client), the
 * PostgreSQL backends of the contender's pool (opened before the clock starts),
 * and everything else on the machine.
 */
const measure = async <A>(f: () => Promise<A>): Promise<Measured<A>> => {
  const backends = await Database.contenderBackends()
  const busyBefore = machineBusyMs()
  const serverBefore = processCpuMs(backends)
  const clientBefore = process.cpuUsage()
  const started = performance.now()
  const value = await f()
  const seconds = (performance.now() - started) / 1000
  const client = process.cpuUsage(clientBefore)
  const serverAfter = processCpuMs(backends)
  const busyAfter = machineBusyMs()
  const clientCpuMs = (client.user + client.system) / 1000
  const serverCpuMs = serverBefore === null || serverAfter === null ? null : serverAfter - serverBefore
  const otherCpuMs = busyBefore === null || busyAfter === null || serverCpuMs === null
    ? null
    : Math.max(0, busyAfter - busyBefore - clientCpuMs - serverCpuMs)
  return {
    value,
    seconds,
    clientCpuMs,
    serverCpuMs,
    otherCpuPercent: otherCpuMs === null ? null : (100 * otherCpuMs) / (seconds * 1000 * os.availableParallelism())
  }
}

/** The nearest-rank percentile of sorted values. */
const percentile = (sorted: ReadonlyArray<number>, q: number): number | null =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null

const toMetrics = (
  measured: Measured<unknown>,
  operations: number,
  events: number,
  latencies: ReadonlyArray<number> | null,
  memory: MemoryMetrics | null
): Metrics => {
  const sorted = latencies === null ? [] : [...latencies].sort((a, b) => a - b)
  return {
    seconds: measured.seconds,
    operations,
    events,
    operationsPerSecond: operations / measured.seconds,
    eventsPerSecond: events / measured.seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    clientCpuUsPerOp: (measured.clientCpuMs * 1000) / Math.max(operations, 1),
    serverCpuUsPerOp: measured.serverCpuMs === null ? null : (measured.serverCpuMs * 1000) / Math.max(operations, 1),
    otherCpuPercent: measured.otherCpuPercent,
    memory
  }
}

// --- appends -------------------------------------------------------------------

/** The stream a writer appends to next, and at which expected version. */
interface Target {
  readonly next: () => { readonly streamId: string; readonly expectedVersion: number }
  readonly appended: (events: number) => void
}

const makeTarget = (workload: Extract<Workload, { kind: "append" }>, tag: string, writer: number, state: WorkerState): Target => {
  switch (workload.target) {
    case "own": {
      const streamId = `Order-${tag}-${writer}`
      let version = 0
      return { next: () => ({ streamId, expectedVersion: version }), appended: (events) => void (version += events) }
    }
    case "new": {
      let count = 0
      return { next: () => ({ streamId: `New-${tag}-${writer}-${count}`, expectedVersion: 0 }), appended: () => void count++ }
    }
    case "long": {
      const streamId = longStreamId(writer)
      const version = state.longStreams.get(streamId)
      if (version === undefined) throw new Error(`No long stream for writer ${writer}: raise longStreams in the config`)
      return {
        next: () => ({ streamId, expectedVersion: state.longStreams.get(streamId) ?? version }),
        appended: (events) => void state.longStreams.set(streamId, (state.longStreams.get(streamId) ?? version) + events)
      }
    }
  }
}

/**
 * `concurrency` writers append for `seconds`, each to its own target, each
 * append with the exact expected version; every append's latency is kept.
 * Each writer first appends once unmeasured, so that the pool has opened all
 * its connections before the clock starts.
 */
const runAppends = async (
  session: Session,
  workload: Extract<Workload, { kind: "append" }>,
  tag: string,
  state: WorkerState
): Promise<Metrics> => {
  const events = sampleEvents(workload.eventsPerAppend)
  const targets = Array.from({ length: workload.concurrency }, (_, writer) => makeTarget(workload, tag, writer, state))
  const appendOnce = async (target: Target) => {
    const { expectedVersion, streamId } = target.next()
    await session.append(streamId, events, expectedVersion)
    target.appended(events.length)
  }
  await Promise.all(targets.map(appendOnce))
  const latencies: Array<number> = []
  const measured = await measure(async () => {
    const deadline = performance.now() + workload.seconds * 1000
    await Promise.all(targets.map(async (target) => {
      while (performance.now() < deadline) {
        const { expectedVersion, streamId } = target.next()
        const started = performance.now()
        await session.append(streamId, events, expectedVersion)
        latencies.push(performance.now() - started)
        target.appended(events.length)
      }
    }))
  })
  return toMetrics(measured, latencies.length, latencies.length * workload.eventsPerAppend, latencies, null)
}

// --- reads ---------------------------------------------------------------------

const runReadStream = async (
  session: Session,
  workload: Extract<Workload, { kind: "readStream" }>,
  pageSize: number
): Promise<Metrics> => {
  const measured = await measure(async () => {
    let total = 0
    for (let repeat = 0; repeat < workload.repeats; repeat++) {
      const count = await session.readStream(readStreamId, pageSize)
      if (count !== workload.events) throw new Error(`Read ${count} events of ${readStreamId}, expected ${workload.events}`)
      total += count
    }
    return total
  })
  return toMetrics(measured, measured.value, measured.value, null, null)
}

const mb = (bytes: number) => bytes / 2 ** 20

/**
 * Samples heap and RSS on every page and every 20 ms; the baseline is taken
 * after a full collection (the worker runs with --expose-gc), and so is the
 * live heap once, half-way through the read.
 */
const memorySampler = (expected: number) => {
  const collect = () => globalThis.gc?.()
  collect()
  const baseline = process.memoryUsage()
  let read = 0
  let peakRss = baseline.rss
  const peakHeap = [baseline.heapUsed, baseline.heapUsed]
  let liveHalfway: number | undefined
  const sample = () => {
    const usage = process.memoryUsage()
    peakRss = Math.max(peakRss, usage.rss)
    const half = read < expected / 2 ? 0 : 1
    peakHeap[half] = Math.max(peakHeap[half] ?? 0, usage.heapUsed)
  }
  const timer = setInterval(sample, 20)
  return {
    onPage: (events: number) => {
      read += events
      sample()
      if (liveHalfway === undefined && read >= expected / 2) {
        collect()
        liveHalfway = process.memoryUsage().heapUsed
      }
    },
    stop: (): MemoryMetrics => {
      clearInterval(timer)
      sample()
      const [first = baseline.heapUsed, second = baseline.heapUsed] = peakHeap
      return {
        peakRssDeltaMb: mb(peakRss - baseline.rss),
        peakHeapDeltaMb: mb(Math.max(first, second) - baseline.heapUsed),
        peakHeapFirstHalfMb: mb(first - baseline.heapUsed),
        peakHeapSecondHalfMb: mb(second - baseline.heapUsed),
        liveHeapHalfwayMb: mb((liveHalfway ?? baseline.heapUsed) - baseline.heapUsed)
      }
    }
  }
}

const runReadAll = async (
  session: Session,
  workload: Extract<Workload, { kind: "readAll" }>,
  pageSize: number
): Promise<Metrics> => {
  const sampler = workload.sampleMemory ? memorySampler(workload.events) : undefined
  const measured = await measure(() => session.readAll(workload.events, pageSize, sampler?.onPage ?? (() => {})))
  const memory = sampler?.stop() ?? null
  if (measured.value !== workload.events) {
    throw new Error(`Read ${measured.value} events of the global log, expected ${workload.events}`)
  }
  return toMetrics(measured, measured.value, measured.value, null, memory)
}

/** Opens the reader's connection before the clock starts. */
const primeReader = (session: Session) => session.readAll(1, 1, () => {})

/** The pool size a workload runs with: one connection per writer, one for a reader. */
export const poolSize = (workload: Workload): number => workload.kind === "append" ? workload.concurrency : 1

/** Runs one workload once, on a session whose pool has `poolSize(workload)` connections. */
export const run = (
  session: Session,
  workload: Workload,
  tag: string,
  config: Config,
  state: WorkerState
): Promise<Metrics> => {
  switch (workload.kind) {
    case "append":
      return runAppends(session, workload, tag, state)
    case "readStream":
      return primeReader(session).then(() => runReadStream(session, workload, config.pageSize))
    case "readAll":
      return primeReader(session).then(() => runReadAll(session, workload, config.pageSize))
  }
}
