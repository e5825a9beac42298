/**
 * What the workloads need from an event store. Each contender adapts its own
 * API to this, the way a user of that store would call it.
 */
import type { ContenderId, ContenderInfo, Workload } from "../protocol.js"

/** One event as the benchmark hands it to every contender. */
export interface BenchEvent {
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
  readonly close: () => Promise<void>
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
  /** Why this contender does not run `workload`, or undefined when it does. */
  readonly cannotRun: (workload: Workload) => string | undefined
  /** Drops the schema or database. */
  readonly dispose: () => Promise<void>
}

export type ContenderFactory = (namespace: string) => Contender

export type { ContenderId }
