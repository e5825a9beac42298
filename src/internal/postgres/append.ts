/**
 * The append on PostgreSQL, made alone: one call of the append function
 * (migrations/0007_stream_history.sql), which claims the versions on the
 * stream's row and inserts every event in one round trip, with plans the
 * server keeps per connection. A racing append waits for the row and
 * re-checks instead of failing, so a conflict never aborts the caller's
 * transaction. When it stores nothing it returns one row without a position
 * that says why, with the version its check saw. The path of every append
 * inside a caller's transaction, of an append that finds no other in flight,
 * and of every append without group commit (`./groupCommit.ts` sends
 * concurrent ones together).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { ConcurrencyError, DuplicateEventId, type StoreError } from "../../Errors.js"
import type { AppendAttempt, EventStoreDriver, StoredEvent } from "../core/driver.js"
import { liveVersion } from "../core/streamState.js"
import type * as Validation from "../validation/index.js"
import * as SqlErrors from "./sqlErrors.js"
import { SqlState } from "./sqlErrors.js"
import * as Standby from "./standby.js"
import type { Tables } from "./tables.js"

/** Why the append function stored nothing. */
export type Rejection = "conflict" | "tombstoned" | "stored_ids"

const reasons = { conflict: "conflict", tombstoned: "tombstoned", stored_ids: "storedIds" } as const

// The events as the function's jsonb argument, written by hand: the data and
// metadata are JSON text already, checked and serialised once by the core.
const batchOf = (append: Validation.PreparedAppend): string =>
  "[" + append.events.map((event) =>
    `{"id":"${event.eventId}","type":${JSON.stringify(event.eventType)},"schemaVersion":${event.schemaVersion},` +
    `"data":${event.data},"metadata":${event.metadata}}`
  ).join(",") + "]"

/** The append made alone, and what a rejection was. */
export interface Appends {
  /** One append in one round trip (and, outside a transaction, one commit). */
  readonly alone: EventStoreDriver["append"]
  /**
   * One append in one round trip, unless another transaction holds its
   * stream's row: then `"busy"` at once, having waited for nothing.
   */
  readonly unlessBusy: (
    append: Validation.PreparedAppend
  ) => Effect.Effect<AppendAttempt | "busy", ConcurrencyError | DuplicateEventId | StoreError>
  /** The attempt a rejection stands for, looking up the stored ids when that is why. */
  readonly rejected: (
    append: Validation.PreparedAppend,
    rejection: Rejection,
    actual: number
  ) => Effect.Effect<AppendAttempt, SqlError>
}

/** One append as an element of the batch function's jsonb argument (0008). */
export const batchEntryOf = (append: Validation.PreparedAppend): string => {
  const [expected, version] = typeof append.expected === "number" ? ["exact", append.expected] : [append.expected, 0]
  return `{"s":${JSON.stringify(append.streamId)},"c":${
    JSON.stringify(append.category)
  },"x":"${expected}","v":${version},` +
    `"e":${batchOf(append)}}`
}

export const make = (sql: SqlClient.SqlClient, tables: Tables): Appends => {
  const statement = (fn: typeof tables.appendToStream, append: Validation.PreparedAppend) => {
    const [expected, version] = typeof append.expected === "number" ? ["exact", append.expected] : [append.expected, 0]
    const ids = `{${append.events.map((event) => event.eventId).join(",")}}`
    return sql<
      {
        readonly position: string | null
        readonly stream_version: string
        readonly rejection: Rejection | "busy" | null
      }
    >`
      SELECT a.event_position::text AS position, a.event_version::text AS stream_version, a.rejection
      FROM ${fn}(${append.streamId}, ${append.category}, ${expected}, ${version}, ${ids}::uuid[],
        ${batchOf(append)}::jsonb) a
      ORDER BY a.event_position`
  }

  // The events already stored under the append's ids, and whether each one's
  // stream had been soft-deleted right before it (its append found no stream).
  const storedUnder = (append: Validation.PreparedAppend) =>
    sql<{
      readonly event_id: string
      readonly stream_id: string
      readonly stream_version: string
      readonly position: string
      readonly recreated: boolean
    }>`SELECT e.event_id::text AS event_id, e.stream_id, e.stream_version::text AS stream_version, e.position::text AS position,
         EXISTS (SELECT 1 FROM ${tables.deletions} d WHERE d.stream_id = e.stream_id AND d.version = e.stream_version - 1) AS recreated
       FROM ${tables.hotAndArchived} e WHERE e.event_id IN ${sql.in(append.events.map((event) => event.eventId))}`.pipe(
      Effect.map((rows) =>
        rows.map((row): StoredEvent => ({
          eventId: row.event_id,
          streamId: row.stream_id,
          streamVersion: Number(row.stream_version),
          position: BigInt(row.position),
          recreated: row.recreated
        }))
      )
    )

  const rejected = (append: Validation.PreparedAppend, rejection: Rejection, actual: number) =>
    rejection === "stored_ids"
      ? Effect.map(
        storedUnder(append),
        (stored): AppendAttempt => ({ _tag: "Rejected", reason: "storedIds", actual, stored })
      )
      : Effect.succeed<AppendAttempt>({ _tag: "Rejected", reason: reasons[rejection], actual, stored: [] })

  // After a racing append stored one of the ids between the function's check
  // and its insert: look at the stream and the ids again.
  const lookAgain = (append: Validation.PreparedAppend) =>
    Effect.flatMap(
      sql<{ readonly version: string; readonly deleted: boolean; readonly tombstoned: boolean }>`
        SELECT version::text AS version, deleted_at IS NOT NULL AS deleted, tombstoned_at IS NOT NULL AS tombstoned
        FROM ${tables.streams} WHERE stream_id = ${append.streamId}`,
      ([row]) =>
        row?.tombstoned === true
          ? rejected(append, "tombstoned", 0)
          : rejected(
            append,
            "stored_ids",
            liveVersion(row === undefined ? undefined : { ...row, version: Number(row.version) })
          )
    )

  const attempt = (
    fn: typeof tables.appendToStream,
    append: Validation.PreparedAppend
  ): Effect.Effect<AppendAttempt | "busy", ConcurrencyError | DuplicateEventId | StoreError> =>
    Effect.gen(function*() {
      const inTransaction = Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))
      const what = `Could not append to "${append.streamId}"`
      const rows = yield* statement(fn, append).pipe(
        Effect.catchTag("SqlError", (error): Effect.Effect<null, ConcurrencyError | DuplicateEventId | StoreError> => {
          const code = SqlErrors.sqlStateOf(error)
          const constraint = SqlErrors.constraintOf(error)
          // A racing append of the same ids got in between the function's check
          // and its insert. Outside a transaction we can look again and classify.
          if (code === SqlState.uniqueViolation && constraint === "events_event_id_key") {
            return inTransaction
              ? Effect.fail(new DuplicateEventId({ streamId: append.streamId, eventId: append.events[0].eventId }))
              : Effect.succeed(null)
          }
          if (code === SqlState.uniqueViolation && constraint === "events_stream_version_key") {
            return Effect.fail(new ConcurrencyError({ streamId: append.streamId, expected: append.expected }))
          }
          // REPEATABLE READ / SERIALIZABLE: the stream row changed since the snapshot.
          if (code === SqlState.serializationFailure) {
            return Effect.fail(new ConcurrencyError({ streamId: append.streamId, expected: append.expected }))
          }
          if (Standby.isReadOnlyViolation(error)) {
            return Standby.readOnlyFailure(sql, `append to "${append.streamId}"`, error)
          }
          return SqlErrors.writeFailed(what)(error)
        })
      )
      const outcome = rows?.[0]
      if (rows !== null && outcome !== undefined && outcome.rejection === null) {
        return {
          _tag: "Appended",
          streamVersion: Number(rows[rows.length - 1]?.stream_version ?? outcome.stream_version),
          positions: rows.flatMap((row) => row.position === null ? [] : [BigInt(row.position)])
        } satisfies AppendAttempt
      }
      if (outcome?.rejection === "busy") return "busy" as const
      return yield* (outcome?.rejection == null
        ? lookAgain(append)
        : rejected(append, outcome.rejection, Number(outcome.stream_version))).pipe(
          Effect.catchTag("SqlError", SqlErrors.storeError(what))
        )
    })

  const alone: EventStoreDriver["append"] = (append) =>
    Effect.flatMap(
      attempt(tables.appendToStream, append),
      (result) => result === "busy" ? Effect.dieMessage("append_to_stream answered busy") : Effect.succeed(result)
    )

  return { alone, unlessBusy: (append) => attempt(tables.appendUnlessBusy, append), rejected }
}
