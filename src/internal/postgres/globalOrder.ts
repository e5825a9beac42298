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
import * as Standby from "./standby.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface GlobalOrder {
  /**
   * A position `h` such that every event at a position `<= h` is either
   * committed and visible to statements that start now, or will never exist.
   * Waits (briefly) for the appends in flight when it was called.
   *
   * Fails with a `StoreError` caused by `HotStandby` on a server in recovery,
   * checked by every call (a connection may land on a standby at any time).
   */
  readonly settledHorizon: Effect.Effect<bigint, StoreError>
}

// Waiting on an in-flight append: poll every millisecond for the first 25 ms
// (most commit within a millisecond or two, and a live reader waits here only
// at a hole), then every 20 ms for long user transactions.
const waitSchedule = Schedule.spaced("1 millis").pipe(
  Schedule.upTo("25 millis"),
  Schedule.andThen(Schedule.spaced("20 millis"))
)

const readLog = "read the global log"

/** The refusal of a global read in a transaction whose snapshot is older than its statements. */
export const notReadCommitted = (isolation: string): StoreError =>
  new StoreError({
    message: `Reading the global log needs READ COMMITTED isolation, not ${isolation}: run it outside this transaction`
  })

/**
 * Fails on a hot standby (with a `StoreError` caused by `HotStandby`), so that
 * a store built on one never starts.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (schema: string): Effect.Effect<GlobalOrder, SqlError | StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const sequence = sql(`${schema}.events_position_seq`)
    // Relation ids are only unique within a database: match the database too,
    // or a reader could wait for writers of an unrelated table elsewhere.
    const [ids] = yield* sql<{ readonly table_oid: number; readonly database_oid: number; readonly standby: boolean }>`
      SELECT ${`${schema}.events`}::regclass::oid AS table_oid,
             (SELECT oid FROM pg_database WHERE datname = current_database()) AS database_oid,
             pg_is_in_recovery() AS standby`
    if (ids?.standby === true) return yield* Standby.refusal("open the event store")
    const eventsOid = ids?.table_oid ?? 0
    const databaseOid = ids?.database_oid ?? 0

    // One statement, in this order: first the last position handed out (`last_value`
    // is not transactional: it is the newest across all sessions), then, correlated
    // to it so that it is read afterwards, the transactions that hold the events
    // table's RowExclusiveLock. An append takes that lock before it draws a position
    // and keeps it until it commits or rolls back, so the owner of any position
    // <= last_value that is not settled yet is among them.
    // None of this holds on a hot standby: its pg_locks shows none of the
    // primary's appends and its last_value runs ahead of the positions handed
    // out (the sequence is WAL-logged in steps of 32). Every call checks, in the
    // same statement: a connection can land on a standby at any time.
    const inFlight = sql<{
      readonly last_value: string
      readonly is_called: boolean
      readonly isolation: string
      readonly standby: boolean
      readonly writers: ReadonlyArray<string> | null
    }>`SELECT s.last_value::text AS last_value, s.is_called, current_setting('transaction_isolation') AS isolation,
        pg_is_in_recovery() AS standby, w.writers
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
      if (row.standby) return yield* Standby.refusal(readLog)
      // A snapshot taken before the wait would still miss what the waited-for
      // transactions commit, and the reader would skip their events.
      if (row.isolation !== "read committed") return yield* notReadCommitted(row.isolation)
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
