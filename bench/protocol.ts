/**
 * The workloads, their measurements, and the messages between the runner
 * (`run.ts`) and the one worker process per contender (`worker.ts`), and
 * between a worker and the subscriber process it starts for the live
 * workloads (`follower.ts`).
 *
 * Every contender runs in a process of its own: Emmett's connection library
 * changes node-postgres' global type parsers, and memory is only meaningful
 * per process.
 */
import type { Config } from "./config.js"

/** `candidate` is this store built from another copy of `src/`, for measuring a change (run.ts --candidate). */
export type ContenderId = "store" | "store-batch" | "candidate" | "emmett" | "floor" | "floor-batched"

/** The environment variable through which run.ts hands `--candidate=<dir>` to the candidate's worker. */
export const candidateVariable = "BENCH_CANDIDATE"

/** Where the appends of one workload go. */
export type AppendTarget =
  /** Each writer appends to a stream of its own, created by its first append. */
  | "own"
  /** Every append creates a new stream. */
  | "new"
  /** Each writer appends to a stream that already holds `longStreamEvents` events. */
  | "long"

export type Workload =
  | {
    readonly kind: "append"
    readonly id: string
    readonly concurrency: number
    readonly eventsPerAppend: number
    readonly target: AppendTarget
    readonly seconds: number
  }
  | { readonly kind: "readStream"; readonly id: string; readonly events: number; readonly repeats: number }
  | { readonly kind: "readAll"; readonly id: string; readonly events: number; readonly sampleMemory: boolean }
  | {
    readonly kind: "live"
    readonly id: string
    readonly placement: Placement
    readonly writers: number
    readonly seconds: number
    /**
     * The pace of the appends, all writers together. Left undefined by the
     * plan; the runner sets it to half the store's maximal rate in this run.
     */
    readonly appendsPerSecond: number | undefined
  }
  | { readonly kind: "projection"; readonly id: string; readonly events: number; readonly batchSize: number }

/** Where the subscriber of a live workload runs: beside the appenders, or in a process of its own. */
export type Placement = "same-process" | "other-process"

/** What one run of one workload measured. Rates are per second of wall time. */
export interface Metrics {
  readonly seconds: number
  /** Appends or whole reads completed. */
  readonly operations: number
  readonly events: number
  readonly operationsPerSecond: number
  readonly eventsPerSecond: number
  /** Latency of one operation, in milliseconds (append workloads only). */
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  /**
   * CPU time per operation, in µs, of the contender's process (the client) and
   * of the PostgreSQL backends serving its connections (the server).
   */
  readonly clientCpuUsPerOp: number
  readonly serverCpuUsPerOp: number | null
  /**
   * The share of the machine's CPU (all cores) that everything else used during
   * the run (PostgreSQL's background writers too), in percent: high means noisy.
   */
  readonly otherCpuPercent: number | null
  /** Memory above the baseline taken before the read (readAll with sampling only). */
  readonly memory: MemoryMetrics | null
  /** Live workloads only; their p50/p99 are append-to-delivery latencies. */
  readonly live: LiveMetrics | null
  /**
   * Projection workload only: the events the read model counts once the
   * checkpoint is at the head. Exactly once means `events`; more means some
   * were applied twice, fewer that some were skipped.
   */
  readonly appliedEvents: number | null
}

export interface LiveMetrics {
  /** The pace asked for (appends/s); `operationsPerSecond` is the pace reached. */
  readonly targetPerSecond: number
  readonly maxMs: number
  /**
   * The client CPU per event of the subscriber's process alone (of
   * `clientCpuUsPerOp`), when it runs in a process of its own; null otherwise.
   */
  readonly subscriberCpuUsPerOp: number | null
  /** Appended events the subscriber had not delivered when the run gave up waiting (their latency is left out). */
  readonly undelivered: number
  /**
   * The subscriber's clock minus the appender's, estimated over IPC before the
   * run (0 in one process). Latencies are not corrected by it; it bounds their error.
   */
  readonly clockSkewMs: number
}

export interface MemoryMetrics {
  readonly peakRssDeltaMb: number
  readonly peakHeapDeltaMb: number
  /** Peak heap above the baseline in the first and in the second half of the read: equal when memory is flat. */
  readonly peakHeapFirstHalfMb: number
  readonly peakHeapSecondHalfMb: number
  /**
   * Heap still reachable half-way through the read (after a forced full
   * collection), above the baseline: what the read really holds, garbage
   * not counted. Flat memory keeps this at a page or two, whatever the length.
   */
  readonly liveHeapHalfwayMb: number
}

export interface ContenderInfo {
  readonly id: ContenderId
  readonly label: string
  readonly version: string
  readonly description: string
}

export type Request =
  | { readonly type: "prepare"; readonly requestId: number; readonly config: Config }
  | { readonly type: "run"; readonly requestId: number; readonly workload: Workload; readonly tag: string }
  | { readonly type: "dispose"; readonly requestId: number }

export type Reply =
  | {
    readonly type: "prepared"
    readonly requestId: number
    readonly info: ContenderInfo
    readonly seedSeconds: number
  }
  | {
    readonly type: "result"
    readonly requestId: number
    readonly metrics: Metrics
    /** Set when the contender ran a smaller version of the workload, and why. */
    readonly scaledDown: string | undefined
  }
  /** The contender cannot run this workload (the reason is printed in the table). */
  | { readonly type: "skipped"; readonly requestId: number; readonly reason: string }
  | { readonly type: "disposed"; readonly requestId: number }
  | { readonly type: "failed"; readonly requestId: number; readonly message: string }

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/** Messages cross a process boundary: check the shape before trusting it. */
export const isRequest = (value: unknown): value is Request =>
  isRecord(value) && typeof value.requestId === "number" &&
  (value.type === "prepare" || value.type === "run" || value.type === "dispose")

export const isReply = (value: unknown): value is Reply =>
  isRecord(value) && typeof value.requestId === "number" &&
  ["prepared", "result", "skipped", "disposed", "failed"].includes(String(value.type))

/** From a worker to the subscriber process of its contender (follower.ts). */
export type FollowerRequest =
  /** Open a session and follow the log from its head; reply once following. */
  | { readonly type: "follow"; readonly requestId: number; readonly config: Config }
  /** The delivery time of each event, once all are delivered or `timeoutMs` has passed (null: not delivered). */
  | {
    readonly type: "await"
    readonly requestId: number
    readonly eventIds: ReadonlyArray<string>
    readonly timeoutMs: number
  }
  /** Stop following and close the session. */
  | { readonly type: "stop"; readonly requestId: number }
  /** The follower's clock, to estimate the skew between the two processes. */
  | { readonly type: "clock"; readonly requestId: number }

export type FollowerReply =
  | { readonly type: "following"; readonly requestId: number }
  | { readonly type: "delivered"; readonly requestId: number; readonly times: ReadonlyArray<number | null> }
  | { readonly type: "stopped"; readonly requestId: number }
  | { readonly type: "clock"; readonly requestId: number; readonly now: number }
  | { readonly type: "failed"; readonly requestId: number; readonly message: string }

export const isFollowerRequest = (value: unknown): value is FollowerRequest =>
  isRecord(value) && typeof value.requestId === "number" &&
  ["follow", "await", "stop", "clock"].includes(String(value.type))

export const isFollowerReply = (value: unknown): value is FollowerReply =>
  isRecord(value) && typeof value.requestId === "number" &&
  ["following", "delivered", "stopped", "clock", "failed"].includes(String(value.type))
