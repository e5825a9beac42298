/**
 * The workloads of one run, in the order they run, with the figures the table
 * shows for each.
 */
import type { Config } from "./config.js"
import type { Metrics, Placement, Workload } from "./protocol.js"

export type Figure =
  | "operationsPerSecond"
  | "eventsPerSecond"
  | "p50Ms"
  | "p99Ms"
  | "peakRssDeltaMb"
  | "peakHeapDeltaMb"
  | "liveHeapHalfwayMb"

export interface FigureSpec {
  readonly figure: Figure
  readonly label: string
  readonly higherIsBetter: boolean
  /** Whether ratios between contenders mean anything (not for megabytes above a baseline near zero). */
  readonly comparable: boolean
}

export interface PlannedWorkload {
  readonly workload: Workload
  readonly label: string
  readonly figures: ReadonlyArray<FigureSpec>
}

const appendsPerSecond: FigureSpec = {
  figure: "operationsPerSecond",
  label: "appends/s",
  higherIsBetter: true,
  comparable: true
}
/** The pace the live workloads' appends reached: the same target for every contender, so no ratio. */
const paceReached: FigureSpec = {
  figure: "operationsPerSecond",
  label: "appends/s reached",
  higherIsBetter: true,
  comparable: false
}
const eventsPerSecond: FigureSpec = {
  figure: "eventsPerSecond",
  label: "events/s",
  higherIsBetter: true,
  comparable: true
}
const p50: FigureSpec = { figure: "p50Ms", label: "p50 ms", higherIsBetter: false, comparable: true }
const p99: FigureSpec = { figure: "p99Ms", label: "p99 ms", higherIsBetter: false, comparable: true }
const megabytes = (figure: Figure, label: string): FigureSpec => ({
  figure,
  label,
  higherIsBetter: false,
  comparable: false
})

export const plan = (config: Config): ReadonlyArray<PlannedWorkload> => {
  const seconds = config.appendSeconds
  const live = (placement: Placement, where: string): PlannedWorkload => ({
    workload: {
      kind: "live",
      id: `live-${placement}`,
      placement,
      writers: config.liveWriters,
      seconds: config.liveSeconds,
      appendsPerSecond: undefined
    },
    label: `live delivery, subscriber ${where}`,
    figures: [p50, p99, paceReached]
  })
  const appendOne = (concurrency: number): PlannedWorkload => ({
    workload: {
      kind: "append",
      id: `append-1-c${concurrency}`,
      concurrency,
      eventsPerAppend: 1,
      target: "own",
      seconds
    },
    label: `append 1 event, expected version, concurrency ${concurrency}`,
    figures: [appendsPerSecond, p50, p99]
  })
  return [
    appendOne(1),
    appendOne(8),
    appendOne(32),
    {
      workload: { kind: "append", id: "append-100-c1", concurrency: 1, eventsPerAppend: 100, target: "own", seconds },
      label: "append 100 events, expected version, concurrency 1",
      figures: [eventsPerSecond, p50, p99]
    },
    {
      workload: { kind: "append", id: "append-new-c8", concurrency: 8, eventsPerAppend: 1, target: "new", seconds },
      label: "append 1 event to a new stream, concurrency 8",
      figures: [appendsPerSecond, p99]
    },
    {
      workload: { kind: "append", id: "append-long-c8", concurrency: 8, eventsPerAppend: 1, target: "long", seconds },
      label: `append 1 event to a stream of ${config.longStreamEvents.toLocaleString("en")}+, concurrency 8`,
      figures: [appendsPerSecond, p99]
    },
    {
      workload: {
        kind: "readStream",
        id: "read-stream",
        events: config.readStreamEvents,
        repeats: config.readStreamRepeats
      },
      label: `read one stream of ${config.readStreamEvents.toLocaleString("en")} events`,
      figures: [eventsPerSecond]
    },
    {
      workload: { kind: "readAll", id: "read-all", events: config.readAllEvents, sampleMemory: false },
      label: `read the global log from the start (${config.readAllEvents.toLocaleString("en")} events)`,
      figures: [eventsPerSecond]
    },
    {
      workload: { kind: "readAll", id: "read-all-memory", events: config.memoryEvents, sampleMemory: true },
      label: `readAll of ${config.memoryEvents.toLocaleString("en")} events, memory`,
      figures: [
        eventsPerSecond,
        megabytes("peakRssDeltaMb", "peak RSS +MB"),
        megabytes("peakHeapDeltaMb", "peak heap +MB"),
        megabytes("liveHeapHalfwayMb", "live heap half-way +MB")
      ]
    },
    live("other-process", `in another process (${config.pollIntervalMs} ms poll)`),
    live("same-process", "in the appending process"),
    {
      workload: {
        kind: "projection",
        id: "projection",
        events: config.projectionEvents,
        batchSize: config.projectionBatchSize
      },
      label: `projection catch-up, ${config.projectionEvents.toLocaleString("en")} events into a SQL table`,
      figures: [eventsPerSecond]
    }
  ]
}

/** A live workload with the pace of its appends set (by the runner), and said in its label. */
export const withPace = (planned: PlannedWorkload, appendsPerSecond: number): PlannedWorkload =>
  planned.workload.kind === "live"
    ? {
      ...planned,
      workload: { ...planned.workload, appendsPerSecond },
      label: `${planned.label}, ${Math.round(appendsPerSecond).toLocaleString("en")} appends/s`
    }
    : planned

export const figureOf = (metrics: Metrics, figure: Figure): number | null => {
  switch (figure) {
    case "operationsPerSecond":
    case "eventsPerSecond":
    case "p50Ms":
    case "p99Ms":
      return metrics[figure]
    case "peakRssDeltaMb":
    case "peakHeapDeltaMb":
    case "liveHeapHalfwayMb":
      return metrics.memory === null ? null : metrics.memory[figure]
  }
}
