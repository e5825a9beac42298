/**
 * The workloads as they run inside a contender's worker process: seeding, the
 * timed append loops, the reads and the memory sampling, and the dispatch to
 * the live (live.ts) and projection (projection.ts) workloads. Every contender
 * runs exactly this code; only the `Session` differs.
 */
import type { Config } from "./config.js"
import type { Contender, Session } from "./contenders/Contender.js"
import { sampleEvents } from "./events.js"
import * as Live from "./live.js"
import { measure, toMetrics } from "./measure.js"
import * as Projection from "./projection.js"
import type { MemoryMetrics, Metrics, Workload } from "./protocol.js"

/**
 * What a worker keeps between runs: the versions of the long streams it keeps
 * appending to, and the process its live subscriptions run in when they run
 * in another one.
 */
export interface WorkerState {
  readonly longStreams: Map<string, number>
  readonly followers: Live.FollowerProcess
}

export const makeState = (followers: Live.FollowerProcess): WorkerState => ({ longStreams: new Map(), followers })

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

// --- appends -------------------------------------------------------------------

/** The stream a writer appends to next, and at which expected version. */
interface Target {
  readonly next: () => { readonly streamId: string; readonly expectedVersion: number }
  readonly appended: (events: number) => void
}

const makeTarget = (
  workload: Extract<Workload, { kind: "append" }>,
  tag: string,
  writer: number,
  state: WorkerState
): Target => {
  switch (workload.target) {
    case "own": {
      const streamId = `Order-${tag}-${writer}`
      let version = 0
      return { next: () => ({ streamId, expectedVersion: version }), appended: (events) => void (version += events) }
    }
    case "new": {
      let count = 0
      return {
        next: () => ({ streamId: `New-${tag}-${writer}-${count}`, expectedVersion: 0 }),
        appended: () => void count++
      }
    }
    case "long": {
      const streamId = longStreamId(writer)
      const version = state.longStreams.get(streamId)
      if (version === undefined) throw new Error(`No long stream for writer ${writer}: raise longStreams in the config`)
      return {
        next: () => ({ streamId, expectedVersion: state.longStreams.get(streamId) ?? version }),
        appended: (events) =>
          void state.longStreams.set(streamId, (state.longStreams.get(streamId) ?? version) + events)
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
  return toMetrics(measured, {
    operations: latencies.length,
    events: latencies.length * workload.eventsPerAppend,
    latencies
  })
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
      if (count !== workload.events) {
        throw new Error(`Read ${count} events of ${readStreamId}, expected ${workload.events}`)
      }
      total += count
    }
    return total
  })
  return toMetrics(measured, { operations: measured.value, events: measured.value })
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
  return toMetrics(measured, { operations: measured.value, events: measured.value, memory: memory ?? undefined })
}

/** Opens the reader's connection before the clock starts. */
const primeReader = (session: Session) => session.readAll(1, 1, () => {})

/**
 * The pool size a workload runs with: one connection per writer, one for a
 * reader; two more for a subscriber beside the writers (the store polls its
 * sequence beside its reads); three for a projection (its reads, its batch
 * transactions, and the store's sequence poller).
 */
export const poolSize = (workload: Workload): number => {
  switch (workload.kind) {
    case "append":
      return workload.concurrency
    case "readStream":
    case "readAll":
      return 1
    case "live":
      return workload.writers + (workload.placement === "same-process" ? 2 : 0)
    case "projection":
      return 3
  }
}

/** Runs one workload once, on a session whose pool has `poolSize(workload)` connections. */
export const run = (
  contender: Contender,
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
    case "live":
      return Live.run(session, workload, tag, config, state.followers)
    case "projection":
      return Projection.run(contender, session, workload, tag)
  }
}
