/**
 * What one benchmark run measures and how long it takes: the full comparison
 * (`npm run bench`) and the quick check (`npm run bench:quick`) differ only in
 * these numbers.
 */

/** The server every contender runs on: the local PostgreSQL, as for the tests. */
export const databaseUrl = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/test"

export type Mode = "full" | "quick"

export interface Config {
  readonly mode: Mode
  /** Measured runs per figure; the table shows the median. */
  readonly runs: number
  /** Each append workload runs for this long per run (plus one unrecorded warm-up run). */
  readonly appendSeconds: number
  readonly warmupSeconds: number
  /** Events in the stream that "read one stream" reads whole. */
  readonly readStreamEvents: number
  /** Times that stream is read in one run. */
  readonly readStreamRepeats: number
  /** Streams (one per writer) and their length for "append to long streams". */
  readonly longStreams: number
  readonly longStreamEvents: number
  /** Events read from the start of the global log in "read the global log". */
  readonly readAllEvents: number
  /** Events read through readAll while memory is sampled. */
  readonly memoryEvents: number
  readonly memoryRuns: number
  /** Rows per round trip for every contender that pages (our store's default). */
  readonly pageSize: number
  /** Each run of a live-subscription workload appends for this long, paced, while a subscriber follows. */
  readonly liveSeconds: number
  /** Writers (one stream each) that share the paced appends of the live-subscription workloads. */
  readonly liveWriters: number
  /**
   * How often the contenders that poll look for new events (ms): the store's
   * default sequence poll; Emmett's consumer and the floor's loop are set to it.
   */
  readonly pollIntervalMs: number
  /** Events a projection catches up over, from a standing start, into a SQL read model. */
  readonly projectionEvents: number
  /** Events per batch (and per transaction) of the projections: the store's default. */
  readonly projectionBatchSize: number
  readonly projectionRuns: number
}

export const configs: Record<Mode, Config> = {
  full: {
    mode: "full",
    runs: 5,
    appendSeconds: 2.5,
    warmupSeconds: 1,
    readStreamEvents: 10_000,
    readStreamRepeats: 5,
    longStreams: 8,
    longStreamEvents: 10_000,
    readAllEvents: 100_000,
    memoryEvents: 1_000_000,
    memoryRuns: 3,
    pageSize: 500,
    liveSeconds: 3,
    liveWriters: 8,
    pollIntervalMs: 10,
    projectionEvents: 100_000,
    projectionBatchSize: 100,
    projectionRuns: 3
  },
  quick: {
    mode: "quick",
    runs: 3,
    appendSeconds: 0.6,
    warmupSeconds: 0.3,
    readStreamEvents: 10_000,
    readStreamRepeats: 2,
    longStreams: 8,
    longStreamEvents: 1_000,
    readAllEvents: 20_000,
    memoryEvents: 100_000,
    memoryRuns: 1,
    pageSize: 500,
    liveSeconds: 0.6,
    liveWriters: 8,
    pollIntervalMs: 10,
    projectionEvents: 10_000,
    projectionBatchSize: 100,
    projectionRuns: 1
  }
}
