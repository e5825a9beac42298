/**
 * The highest global position below which the log can no longer change: the
 * reader's defence against skipping an event whose transaction commits late.
 * See docs/global-order.md for why this is sound.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { StoreError } from "../../Errors.js"
import { storeError } from "./sqlErrors.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface GlobalOrder {
  /**
   * A position `h` such that every event at a position `<= h` is either
   * committed and visible to statements that start now, or will never exist.
   * Waits (briefly) for the appends in flight when it was called.
   */
  readonly settledHorizon: Effect.Effect<bigint, StoreError>
}

// Waiting on an in-flight append: poll quickly at first (most commit within a
// millisecond or two), then settle at 20 ms for long user transactions.
const waitSchedule = Schedule.exponential("1 millis", 2).pipe(Schedule.union(Schedule.spaced("20 millis")))

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (schema: string): Effect.Effect<GlobalOrder, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const sequence = sql(`${schema}.events_position_seq`)
    // Relation ids are only unique within a database: match the database too,
    // or a reader could wait for writers of an unrelated table elsewhere.
    const [ids] = yield* sql<{ readonly table_oid: number; readonly database_oid: number }>`
      SELECT ${`${schema}.events`}::regclass::oid AS table_oid,
             (SELECT oid FROM pg_database WHERE datname = current_database()) AS database_oid`
    const eventsOid = ids?.table_oid ?? 0
    const databaseOid = ids?.database_oid ?? 0

    // One statement, in this order: first the last position handed out (`last_value`
    // is not transactional: it is the newest across all sessions), then, correlated
    // to it so that it is read afterwards, the transactions that hold the events
    // table's RowExclusiveLock. An append takes that lock before it draws a position
    // and keeps it until it commits or rolls back, so the owner of any position
    // <= last_value that is not settled yet is among them.
    const inFlight = sql<{
      readonly last_value: string
      readonly is_called: boolean
      readonly isolation: string
      readonly writers: ReadonlyArray<string> | null
    }>`SELECT s.last_value::text AS last_value, s.is_called, current_setting('transaction_isolation') AS isolation, w.writers
      FROM ${sequence} s
      CROSS JOIN LATERAL (
        SELECT array_agg(DISTINCT l.virtualtransaction) AS writers
        FROM pg_locks l
        WHERE l.locktype = 'relation' AND l.database = ${databaseOid} AND l.relation = ${eventsOid}
          AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid IS DISTINCT FROM pg_backend_pid() AND s.last_value IS NOT NULL
      ) w`

    const stillRunning = (writers: ReadonlyArray<string>) =>
      sql<{ readonly running: boolean }>`SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'relation' AND database = ${databaseOid} AND relation = ${eventsOid}
          AND mode = 'RowExclusiveLock' AND virtualtransaction IN ${sql.in(writers)}
      ) AS running`.pipe(Effect.map(([row]) => row?.running === true))

    const settledHorizon = Effect.gen(function*() {
      const [row] = yield* inFlight
      if (row === undefined) return 0n
      if (row.isolation !== "read committed") {
        // A snapshot taken before the wait would still miss what the waited-for
        // transactions commit, and the reader would skip their events.
        return yield* new StoreError({
          message: `Reading the global log needs READ COMMITTED isolation, not ${row.isolation}: run it outside this transaction`
        })
      }
      const horizon = row.is_called ? BigInt(row.last_value) : 0n
      if (row.writers !== null && row.writers.length > 0) {
        yield* stillRunning(row.writers).pipe(
          Effect.repeat({ schedule: waitSchedule, until: (running) => !running })
        )
      }
      return horizon
    }).pipe(
      Effect.catchTag("SqlError", storeError("Could not read the global log's horizon")),
      Effect.withSpan("EventStore.settledHorizon", { captureStackTrace: false })
    )

    return { settledHorizon }
  })
