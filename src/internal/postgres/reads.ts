/**
 * Reads on PostgreSQL: a stream's row, what a stream read looks at first (one
 * call of the `view_stream` function), and keyset pages of a stream, of the
 * global log and of the streams.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Statement from "@effect/sql/Statement"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { StoreError } from "../../Errors.js"
import type { StreamInfo } from "../../RecordedEvent.js"
import type { EventStoreDriver, LogRun, LogRunQuery, StreamState } from "../core/driver.js"
import * as Validation from "../validation/index.js"
import { notReadCommitted } from "./globalOrder.js"
import { storeError } from "./sqlErrors.js"
import * as Standby from "./standby.js"
import { type EventRow, type Tables, toRecordedEvent } from "./tables.js"

/** What a live reader's look reads first: the sequence, before the rows (see docs/global-order.md). */
interface Drawn {
  readonly drawn: string
  readonly is_called: boolean
  readonly standby: boolean
  readonly isolation: string
}

/** How many of `positions` (ascending) are `from`, `from + 1`, … without a hole. */
const runLength = (from: bigint, positions: ReadonlyArray<string | null>): number => {
  let n = 0
  while (n < positions.length && positions[n] === (from + BigInt(n)).toString()) n++
  return n
}

/** A stream's row, as an expected-version check reads it (`FOR UPDATE` to hold it against appends). */
export const streamState = (sql: SqlClient.SqlClient, tables: Tables) => (streamId: string, lock?: "FOR UPDATE") =>
  sql<{ readonly version: string; readonly deleted: boolean; readonly tombstoned: boolean }>`
    SELECT version::text AS version, deleted_at IS NOT NULL AS deleted, tombstoned_at IS NOT NULL AS tombstoned
    FROM ${tables.streams} WHERE stream_id = ${streamId} ${lock === undefined ? sql.literal("") : sql.literal(lock)}`
    .pipe(
      Effect.map(([row]) =>
        Option.map(Option.fromNullable(row), (found): StreamState => ({ ...found, version: Number(found.version) }))
      )
    )

/** The driver's reads; the look of a live reader without `appending`, which the wake-ups know. */
type Reads =
  & Pick<EventStoreDriver, "streamState" | "openStream" | "readStreamPage" | "readLogPage" | "listStreamsPage">
  & { readonly readLogRun: (query: LogRunQuery) => Effect.Effect<Omit<LogRun, "appending">, StoreError> }

export const make = (sql: SqlClient.SqlClient, tables: Tables) => {
  const source = (includeArchived: boolean) => includeArchived ? tables.hotAndArchived : tables.events
  const state = streamState(sql, tables)

  const startsWithAny = (column: Statement.Fragment, prefixes: ReadonlyArray<string>) =>
    sql`(${sql.or(prefixes.map((prefix) => sql`starts_with(${column}, ${prefix})`))})`

  const readLogPage: EventStoreDriver["readLogPage"] = ({ direction, filter, from, includeArchived, limit, to }) =>
    sql<EventRow>`SELECT ${tables.eventColumns} FROM ${source(includeArchived)} e
      WHERE ${
      sql.and([
        sql`e.position >= ${from.toString()}`,
        sql`e.position <= ${to.toString()}`,
        ...(filter.eventTypes ? [sql`e.event_type IN ${sql.in(filter.eventTypes)}`] : []),
        ...(filter.categories ? [sql`e.category IN ${sql.in(filter.categories)}`] : []),
        ...(filter.streamIds ? [sql`e.stream_id IN ${sql.in(filter.streamIds)}`] : []),
        // starts_with compares characters exactly, whatever the collation, and knows no wildcards.
        ...(filter.eventTypePrefixes ? [startsWithAny(sql`e.event_type`, filter.eventTypePrefixes)] : []),
        ...(filter.streamIdPrefixes ? [startsWithAny(sql`e.stream_id`, filter.streamIdPrefixes)] : [])
      ])
    }
      ORDER BY e.position ${sql.literal(direction === "backward" ? "DESC" : "ASC")} LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map(toRecordedEvent)),
      Effect.catchTag("SqlError", storeError("Could not read the global log"))
    )

  const driver: Reads = {
    streamState: (streamId) =>
      state(streamId).pipe(Effect.catchTag("SqlError", storeError(`Could not read stream "${streamId}"`))),

    // One look at the stream: its version, the lowest version its metadata lets
    // a reader see, maxAge's cutoff (by the database's clock: that instant
    // minus maxAge, in microseconds since the epoch), and the first event a
    // reader sees. A function, planned once per connection: the query inline
    // cost more to plan than to run.
    openStream: (streamId) =>
      sql<{
        readonly version: string
        readonly deleted: boolean
        readonly tombstoned: boolean
        readonly epoch: string
        readonly archived_version: string
        readonly low: string
        readonly cutoff: string | null
        readonly first_visible: string | null
      }>`SELECT v.head::text AS version, v.is_deleted AS deleted, v.is_tombstoned AS tombstoned,
          v.history_epoch::text AS epoch, v.archived_up_to::text AS archived_version, v.read_from::text AS low,
          v.cutoff_us::text AS cutoff, v.first_visible::text AS first_visible
        FROM ${tables.viewStream}(${streamId}) v`.pipe(
        Effect.map(([row]) =>
          Option.map(Option.fromNullable(row), (stream) => ({
            version: Number(stream.version),
            deleted: stream.deleted,
            tombstoned: stream.tombstoned,
            epoch: Number(stream.epoch),
            readFrom: Number(stream.low),
            firstVisible: stream.first_visible === null ? null : Number(stream.first_visible),
            cutoffMicros: stream.cutoff === null ? null : BigInt(stream.cutoff),
            archived: Number(stream.archived_version) > 0
          }))
        ),
        Effect.catchTag("SqlError", storeError(`Could not read stream "${streamId}"`))
      ),

    readStreamPage: (query) => {
      const young = query.cutoffMicros === null
        ? sql.literal("TRUE")
        : sql`e.recorded_at >= timestamptz 'epoch' + ${query.cutoffMicros.toString()}::bigint * interval '1 microsecond'`
      const table = source(query.archived)
      return (query.direction === "forward"
        ? sql<EventRow>`SELECT ${tables.eventColumns} FROM ${table} e
            WHERE e.stream_id = ${query.streamId} AND e.stream_version >= ${query.from} AND e.stream_version <= ${query.to}
              AND ${young}
            ORDER BY e.stream_version LIMIT ${query.limit}`
        : sql<EventRow>`SELECT ${tables.eventColumns} FROM ${table} e
            WHERE e.stream_id = ${query.streamId} AND e.stream_version <= ${query.from} AND e.stream_version >= ${query.to}
              AND ${young}
            ORDER BY e.stream_version DESC LIMIT ${query.limit}`).pipe(
          Effect.map((rows) => rows.map(toRecordedEvent)),
          Effect.catchTag("SqlError", storeError(`Could not read stream "${query.streamId}"`))
        )
    },

    readLogPage,

    // One statement: the sequence first, then the rows right above the cursor,
    // unfiltered, so that a hole shows whatever the filter. Without a filter the
    // rows are the events; with one, only the positions are read here and the
    // run's events in a second statement (after the look, so they are settled).
    readLogRun: (query) => {
      const table = source(query.includeArchived)
      const from = query.from.toString()
      const unfiltered = Validation.isUnfiltered(query.filter)
      // What the look saw: the last position drawn, and how many rows from `from` on have no hole.
      const seen = (rows: ReadonlyArray<Drawn & { readonly position: string | null }>) => {
        const [first] = rows
        if (first?.standby === true) return Effect.fail(Standby.refusal("follow the global log"))
        // As for the horizon: the reader's rules hold for READ COMMITTED only.
        if (first !== undefined && first.isolation !== "read committed") {
          return Effect.fail(notReadCommitted(first.isolation))
        }
        const n = runLength(query.from, rows.map((row) => row.position))
        return Effect.succeed({
          n,
          settled: query.from + BigInt(n) - 1n,
          drawn: first !== undefined && first.is_called ? BigInt(first.drawn) : 0n
        })
      }
      const run: Effect.Effect<Omit<LogRun, "appending">, StoreError> = unfiltered
        ? sql<Drawn & EventRow>`SELECT s.last_value::text AS drawn, s.is_called, pg_is_in_recovery() AS standby,
              current_setting('transaction_isolation') AS isolation, r.*
            FROM ${tables.positions} s LEFT JOIN LATERAL (
              SELECT ${tables.eventColumns} FROM ${table} e WHERE e.position >= ${from}
              ORDER BY e.position LIMIT ${query.limit}
            ) r ON TRUE ORDER BY r.position::bigint`.pipe(
          Effect.catchTag("SqlError", storeError("Could not read the global log")),
          Effect.flatMap((rows) =>
            Effect.map(
              seen(rows),
              ({ drawn, n, settled }) => ({ settled, drawn, events: rows.slice(0, n).map(toRecordedEvent) })
            )
          )
        )
        : sql<Drawn & { readonly position: string | null }>`SELECT s.last_value::text AS drawn, s.is_called,
              pg_is_in_recovery() AS standby, current_setting('transaction_isolation') AS isolation, r.position
            FROM ${tables.positions} s LEFT JOIN LATERAL (
              SELECT e.position::text AS position FROM ${table} e WHERE e.position >= ${from}
              ORDER BY e.position LIMIT ${query.limit}
            ) r ON TRUE ORDER BY r.position::bigint`.pipe(
          Effect.catchTag("SqlError", storeError("Could not read the global log")),
          Effect.flatMap(seen),
          Effect.flatMap(({ drawn, n, settled }) =>
            n === 0
              ? Effect.succeed({ settled, drawn, events: [] })
              : Effect.map(readLogPage({ ...query, to: settled }), (events) => ({ settled, drawn, events }))
          )
        )
      return run
    },

    listStreamsPage: ({ after, category, limit }) =>
      sql<{
        readonly stream_id: string
        readonly category: string
        readonly version: string
        readonly created_at: Date
        readonly updated_at: Date
      }>`SELECT s.stream_id, s.category, s.version::text AS version, s.created_at, s.updated_at FROM ${tables.streams} s
        WHERE ${
        sql.and([
          sql`s.version > 0 AND s.deleted_at IS NULL AND s.tombstoned_at IS NULL`,
          ...(after === undefined ? [] : [sql`s.stream_id > ${after}`]),
          ...(category === undefined ? [] : [sql`s.category = ${category}`])
        ])
      }
        ORDER BY s.stream_id LIMIT ${limit}`.pipe(
        Effect.map((rows) =>
          rows.map((row): StreamInfo => ({
            streamId: row.stream_id,
            category: row.category,
            version: Number(row.version),
            createdAt: row.created_at,
            updatedAt: row.updated_at
          }))
        ),
        Effect.catchTag("SqlError", storeError("Could not list streams"))
      )
  }
  return driver
}
