/**
 * The SQL read model that the projection workers build, shared by the worker
 * script and the tests that kill it: its tables, its projection, the runner
 * locks the workers take, and how the tests read it back.
 *
 * Every table lives in the store's schema, so dropping the schema cleans up.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type { InvalidInput } from "../../src/Errors.js"
import { PostgresRunnerLock } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import type { RunnerLock } from "../../src/RunnerLock.js"

/** The projection's name: every worker runs the same one, so at most one of them is active. */
export const projectionName = "account-totals"

/** Events per batch, and so per transaction: small, so that a kill lands in the middle of one. */
export const batchSize = 10

export type LockKind = "advisory" | "lease"

/** The lease of the lease lock: short, so that a standby takes over from a killed holder quickly. */
export const leaseTtl = Duration.seconds(1)

/** How often a standby tries to take the lock over. */
export const retryInterval = Duration.millis(100)

/** The runner lock of a worker. */
export const lockLayer = (
  schema: string,
  kind: LockKind
): Layer.Layer<RunnerLock, InvalidInput, SqlClient.SqlClient> =>
  kind === "lease"
    ? PostgresRunnerLock.layerLease({ schema, ttl: leaseTtl, retryInterval })
    : PostgresRunnerLock.layerAdvisory({ schema, retryInterval, checkInterval: Duration.millis(200) })

const tables = (sql: SqlClient.SqlClient, schema: string) => ({
  applied: sql(`${schema}.applied`),
  totals: sql(`${schema}.totals`),
  deliveries: sql(`${schema}.deliveries`)
})

/**
 * `applied` has one row per applied event: a second application of an event
 * violates its primary key. `deliveries` has no key at all, so a delivery that
 * was committed twice would show up there as a duplicate.
 */
export const createTables = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { applied, deliveries, totals } = tables(sql, schema)
    yield* sql`CREATE TABLE ${applied} (position bigint PRIMARY KEY, event_id uuid NOT NULL)`
    yield* sql`CREATE TABLE ${totals} (id boolean PRIMARY KEY DEFAULT true CHECK (id), total bigint NOT NULL)`
    yield* sql`INSERT INTO ${totals} (total) VALUES (0)`
    yield* sql`CREATE TABLE ${deliveries} (worker text NOT NULL, position bigint NOT NULL)`
  })

/** The amount an event carries: events are appended with `{ amount }`. */
export const amountOf = (data: unknown): number => (data as { readonly amount: number }).amount

/**
 * The projection, exactly once: its writes and its checkpoint commit in one
 * transaction. It prints `HANDLE <position>` as it starts on each event, so
 * that a test can tell where a killed worker was, and sleeps `millisPerEvent`
 * per event, so that batches take long enough to be killed halfway.
 */
export const projection = (options: {
  readonly schema: string
  readonly worker: string
  readonly millisPerEvent: number
}) =>
  Projection.make({
    name: projectionName,
    delivery: "exactly-once",
    batchSize,
    handle: (event) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { applied, deliveries, totals } = tables(sql, options.schema)
        const position = event.position.toString()
        yield* Console.log(`HANDLE ${position}`)
        yield* sql`INSERT INTO ${deliveries} (worker, position) VALUES (${options.worker}, ${position})`
        yield* sql`INSERT INTO ${applied} (position, event_id) VALUES (${position}, ${event.eventId})`
        yield* sql`UPDATE ${totals} SET total = total + ${amountOf(event.data)}`
        if (options.millisPerEvent > 0) yield* Effect.sleep(Duration.millis(options.millisPerEvent))
      })
  })

/** What the read model holds. */
export interface ReadModel {
  /** `(position, event id)` of every applied event, in position order. */
  readonly applied: ReadonlyArray<readonly [bigint, string]>
  readonly total: number
  /** Every committed delivery's position, in position order (duplicates included). */
  readonly deliveries: ReadonlyArray<bigint>
}

export const readBack = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { applied, deliveries, totals } = tables(sql, schema)
    const appliedRows = yield* sql<{ readonly position: string; readonly event_id: string }>`
      SELECT a.position::text AS position, a.event_id::text AS event_id FROM ${applied} a ORDER BY a.position`
    const [totalRow] = yield* sql<{ readonly total: string }>`SELECT total::text AS total FROM ${totals}`
    const deliveryRows = yield* sql<{ readonly position: string }>`
      SELECT d.position::text AS position FROM ${deliveries} d ORDER BY d.position`
    return {
      applied: appliedRows.map((row) => [BigInt(row.position), row.event_id] as const),
      total: Number(totalRow?.total ?? 0),
      deliveries: deliveryRows.map((row) => BigInt(row.position))
    } satisfies ReadModel
  })

/** How many events the read model holds (cheaper than `readBack`, for polling). */
export const appliedCount = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly count: string }>`SELECT count(*)::text AS count FROM ${
      tables(sql, schema).applied
    }`
    return Number(row?.count ?? 0)
  })
