/**
 * What the workloads need from an event store. Each contender adapts its own
 * API to this, the way a user of that store would call it.
 */
import type { Config } from "../config.js"
import type { ContenderId, ContenderInfo, Workload } from "../protocol.js"

/** One event as the benchmark hands it to every contender. */
export interface BenchEvent {
  /** The event's id (a UUID), when the benchmark needs to recognise it; the contender makes one otherwise. */
  readonly id?: string | undefined
  readonly type: string
  readonly data: Readonly<Record<string, unknown>>
  readonly metadata: Readonly<Record<string, string>>
}

/** A contender connected through a pool of a given size. */
export interface Session {
  /**
   * Appends `events` to `streamId`, which is at `expectedVersion` (0: the stream
   * does not exist yet), and resolves once they are committed.
   */
  readonly append: (streamId: string, events: ReadonlyArray<BenchEvent>, expectedVersion: number) => Promise<void>
  /** Reads a whole stream; resolves with the number of events read. */
  readonly readStream: (streamId: string, pageSize: number) => Promise<number>
  /**
   * Reads the global log from its start, at most `limit` events, calling
   * `onPage` with the size of every page; resolves with the number read.
   */
  readonly readAll: (limit: number, pageSize: number, onPage: (events: number) => void) => Promise<number>
  /**
   * Follows the global log live from its head as it is when the promise
   * resolves, the way the contender's own subscriptions do, calling `onEvent`
   * with the id of every event as it is delivered.
   */
  readonly follow: (onEvent: (eventId: string) => void) => Promise<Following>
  /** Sets up one run of the projection workload: its read model table and its checkpoint at `run.tail.after`. */
  readonly readModel: (run: ReadModelRun) => Promise<ReadModel>
  readonly close: () => Promise<void>
}

export interface Following {
  readonly stop: () => Promise<void>
}

/** The last `events` events of the log: they lie after position `after`, up to `head`. */
export interface LogTail {
  readonly after: bigint
  readonly head: bigint
  readonly events: number
}

export interface ReadModelRun {
  /** Unique per run, a plain SQL identifier: names the checkpoint and the read model table. */
  readonly name: string
  readonly tail: LogTail
  /** Events per batch, and per transaction. */
  readonly batchSize: number
}

/**
 * A SQL read model with one row per stream (`stream_id`, `events`,
 * `last_position`), kept by one upsert per event, with its checkpoint in the
 * same transaction as the batch's upserts (exactly once).
 */
export interface ReadModel {
  /** Catches up from the checkpoint; resolves once the checkpoint is committed at `tail.head`. */
  readonly catchUp: () => Promise<void>
  /** The sum of the `events` column: the events the table has applied. */
  readonly appliedEvents: () => Promise<number>
  /** Drops the table and the checkpoint. */
  readonly drop: () => Promise<void>
}

export interface Contender {
  readonly info: ContenderInfo
  /** Creates the contender's own schema or database. */
  readonly prepare: () => Promise<void>
  readonly open: (poolSize: number) => Promise<Session>
  /**
   * Fills the global log with `events` events straight through SQL, for the
   * memory workload's million events; absent where the table shape is not ours.
   */
  readonly bulkLoad: ((events: number) => Promise<void>) | undefined
  /** Where the last `events` events of the log lie. */
  readonly logTail: (events: number) => Promise<LogTail>
  /** Why this contender does not run `workload`, or undefined when it does. */
  readonly cannotRun: (workload: Workload) => string | undefined
  /** A smaller version of `workload` that this contender runs instead, and why; undefined when it runs it whole. */
  readonly scaleDown: (workload: Workload) => { readonly workload: Workload; readonly reason: string } | undefined
  /** Drops the schema or database. */
  readonly dispose: () => Promise<void>
}

/** A contender in `namespace` (its schema or database), for the settings of this run. */
export type ContenderFactory = (namespace: string, config: Config) => Contender

export type { ContenderId }
