/**
 * The event store on PostgreSQL (14 or later), through any `@effect/sql`
 * client with the `pg` dialect: `@effect/sql-pg` for a server, or the embedded
 * PGlite client of `effect-event-store/pglite`.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Migrator from "@effect/sql/Migrator"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { ConcurrencyError, DuplicateEventId, type InvalidInput, StoreError, StreamNotFound } from "../Errors.js"
import type { EventData, EventMetadata } from "../EventData.js"
import {
  type AppendOptions,
  type AppendResult,
  EventStore,
  type ListStreamsOptions,
  type ReadAllOptions,
  type ReadStreamOptions,
  type SubscribeOptions
} from "../EventStore.js"
import * as AppendRejection from "../AppendRejection.js"
import type { RecordedEvent, StreamInfo } from "../RecordedEvent.js"
import * as Validation from "../Validation.js"
import * as GlobalOrder from "./GlobalOrder.js"
import * as Migrations from "./Migrations.js"
import * as Wakeups from "./Wakeups.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresEventStoreOptions {
  /** The PostgreSQL schema that holds the store's tables (default `event_store`). */
  readonly schema?: string | undefined
  /** Create or upgrade the tables when the layer starts (default true). */
  readonly migrate?: boolean | undefined
  /** The largest `data` plus `metadata` of one event, in UTF-8 bytes (default 1 MiB). */
  readonly maxEventBytes?: number | undefined
  /** How live subscriptions notice new events. */
  readonly subscriptions?: Wakeups.WakeupOptions | undefined
}

interface EventRow {
  readonly position: string
  readonly event_id: string
  readonly stream_id: string
  readonly stream_version: string
  readonly event_type: string
  readonly schema_version: number
  readonly data: unknown
  readonly metadata: EventMetadata
  readonly recorded_at: Date
}

const toRecordedEvent = (row: EventRow): RecordedEvent => ({
  eventId: row.event_id,
  streamId: row.stream_id,
  streamVersion: Number(row.stream_version),
  position: BigInt(row.position),
  eventType: row.event_type,
  schemaVersion: row.schema_version,
  data: row.data,
  metadata: row.metadata,
  recordedAt: row.recorded_at
})

const sqlState = (error: SqlError): { readonly code?: unknown; readonly constraint?: unknown } =>
  typeof error.cause === "object" && error.cause !== null ? error.cause : {}

const storeError = (message: string) => (cause: SqlError) => new StoreError({ message, cause })

/**
 * Builds the store on the `SqlClient` in context. Expects the tables to exist
 * (see `Migrations.migrate`, which `layer` runs by default).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: PostgresEventStoreOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* Migrations.validateSchema(options?.schema ?? "event_store")
    const limits: Validation.Limits = {
      maxEventBytes: yield* Validation.positiveInt("maxEventBytes", options?.maxEventBytes, Validation.defaultLimits.maxEventBytes)
    }
    const events = sql(`${schema}.events`)
    const streams = sql(`${schema}.streams`)
    const globalOrder = yield* GlobalOrder.make(schema)
    const wakeups = yield* Wakeups.make(schema, options?.subscriptions)
    // Qualified by the alias `e` that every read gives the events table: ORDER BY
    // would otherwise pick the text output columns and sort "10" before "9".
    const eventColumns = sql.literal(
      "e.position::text AS position, e.event_id::text AS event_id, e.stream_id, e.stream_version::text AS stream_version, " +
        "e.event_type, e.schema_version, e.data, e.metadata, e.recorded_at"
    )

    // --- append -----------------------------------------------------------------

    // Claims the versions in the streams row and inserts every event, in one
    // statement and one round trip. The streams row serialises appends to one
    // stream: a racing append waits for the row, re-checks the version and
    // returns no row instead of failing, so a conflict never aborts the
    // caller's transaction. No row back means: conflict, or ids already stored.
    const appendStatement = (append: Validation.PreparedAppend, batch: string) => {
      const count = append.events.length
      const notDuplicate = sql`NOT EXISTS (
        SELECT 1 FROM ${events} WHERE event_id IN (SELECT (e->>'id')::uuid FROM jsonb_array_elements(${batch}::jsonb) e)
      )`
      const claim = append.expected === "any"
        ? sql`INSERT INTO ${streams} AS s (stream_id, category, version)
            SELECT ${append.streamId}, ${append.category}, ${count} WHERE ${notDuplicate}
            ON CONFLICT (stream_id) DO UPDATE SET version = s.version + EXCLUDED.version, updated_at = statement_timestamp()
            RETURNING s.version`
        : append.expected === "no_stream"
        ? sql`INSERT INTO ${streams} (stream_id, category, version)
            SELECT ${append.streamId}, ${append.category}, ${count} WHERE ${notDuplicate}
            ON CONFLICT (stream_id) DO NOTHING
            RETURNING version`
        : sql`UPDATE ${streams} SET version = version + ${count}, updated_at = statement_timestamp()
            WHERE stream_id = ${append.streamId} AND ${notDuplicate} AND ${
          append.expected === "stream_exists" ? sql`version > 0` : sql`version = ${append.expected}`
        }
            RETURNING version`
      return sql<{ readonly position: string; readonly stream_version: string }>`
        WITH claimed AS (${claim}),
        inserted AS (
          INSERT INTO ${events} (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata)
          SELECT (e.value->>'id')::uuid, ${append.streamId}, claimed.version - ${count} + e.ordinality,
                 ${append.category}, e.value->>'type', (e.value->>'schemaVersion')::int, e.value->'data', e.value->'metadata'
          FROM claimed, jsonb_array_elements(${batch}::jsonb) WITH ORDINALITY AS e
          ORDER BY e.ordinality
          RETURNING position, stream_version
        )
        SELECT i.position::text AS position, i.stream_version::text AS stream_version FROM inserted i ORDER BY i.position`
    }

    // The slow path, after the append statement wrote nothing: is it a retry of
    // an append that is already stored (success), a clash of event ids, or a
    // version conflict?
    const explainRejected = (append: Validation.PreparedAppend) =>
      Effect.gen(function*() {
        const ids = append.events.map((event) => event.eventId)
        const [stream] = yield* sql<{ readonly version: string }>`
          SELECT version::text AS version FROM ${streams} WHERE stream_id = ${append.streamId}`
        const actual = stream === undefined ? 0 : Number(stream.version)
        const stored = yield* sql<{
          readonly event_id: string
          readonly stream_id: string
          readonly stream_version: string
          readonly position: string
        }>`SELECT event_id::text AS event_id, stream_id, stream_version::text AS stream_version, position::text AS position
           FROM ${events} WHERE event_id IN ${sql.in(ids)}`
        return AppendRejection.classify(append, actual, stored.map((row) => ({
          eventId: row.event_id,
          streamId: row.stream_id,
          streamVersion: Number(row.stream_version),
          position: BigInt(row.position)
        })))
      })

    const append = (streamId: string, eventData: ReadonlyArray<EventData>, appendOptions?: AppendOptions) =>
      Effect.gen(function*() {
        const prepared = yield* Validation.prepareAppend(streamId, eventData, appendOptions?.expectedVersion, limits)
        const batch = "[" + prepared.events.map((event) =>
          `{"id":"${event.eventId}","type":${JSON.stringify(event.eventType)},"schemaVersion":${event.schemaVersion},` +
          `"data":${event.data},"metadata":${event.metadata}}`
        ).join(",") + "]"
        const inTransaction = Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))
        const rows = yield* appendStatement(prepared, batch).pipe(
          Effect.catchTag("SqlError", (error): Effect.Effect<null, ConcurrencyError | DuplicateEventId | StoreError> => {
            const { code, constraint } = sqlState(error)
            // A racing append of the same ids got in between our duplicate check and
            // our insert. Outside a transaction we can look again and classify.
            if (code === "23505" && constraint === "events_event_id_key") {
              return inTransaction
                ? Effect.fail(new DuplicateEventId({ streamId, eventId: prepared.events[0].eventId }))
                : Effect.succeed(null)
            }
            if (code === "23505" && constraint === "events_stream_version_key") {
              return Effect.fail(new ConcurrencyError({ streamId, expected: prepared.expected }))
            }
            // REPEATABLE READ / SERIALIZABLE: the stream row changed since the snapshot.
            if (code === "40001") {
              return Effect.fail(new ConcurrencyError({ streamId, expected: prepared.expected }))
            }
            return Effect.fail(new StoreError({ message: `Could not append to "${streamId}"`, cause: error }))
          })
        )
        if (rows !== null && rows.length === prepared.events.length) {
          // Committed already unless the caller's transaction is still open; then
          // the poller notices once it commits.
          if (!inTransaction) yield* wakeups.nudge
          const last = rows[rows.length - 1]
          return {
            streamVersion: last === undefined ? 0 : Number(last.stream_version),
            positions: rows.map((row) => BigInt(row.position))
          } satisfies AppendResult
        }
        return yield* explainRejected(prepared).pipe(
          Effect.flatten,
          Effect.catchTag("SqlError", storeError(`Could not append to "${streamId}"`))
        )
      }).pipe(Effect.withSpan("EventStore.append", { attributes: { streamId, events: Array.isArray(eventData) ? eventData.length : 0 } }))

    // --- reads -------------------------------------------------------------------

    const readStream = (streamId: string, readOptions?: ReadStreamOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const { batchSize, direction, from, limit } = yield* Validation.readStreamOptions(readOptions)
        const [stream] = yield* sql<{ readonly version: string }>`
          SELECT version::text AS version FROM ${streams} WHERE stream_id = ${streamId}`.pipe(
          Effect.catchTag("SqlError", storeError(`Could not read stream "${streamId}"`))
        )
        if (stream === undefined) return yield* new StreamNotFound({ streamId })
        // Read up to the version the stream had when the read started, so a long
        // read is one consistent prefix of the stream.
        const head = Number(stream.version)
        const forward = direction === "forward"
        const first = forward ? Math.max(from ?? 1, 1) : Math.min(from ?? head, head)
        const page = (cursor: number, size: number) =>
          forward
            ? sql<EventRow>`SELECT ${eventColumns} FROM ${events} e
                WHERE e.stream_id = ${streamId} AND e.stream_version >= ${cursor} AND e.stream_version <= ${head}
                ORDER BY e.stream_version LIMIT ${size}`
            : sql<EventRow>`SELECT ${eventColumns} FROM ${events} e
                WHERE e.stream_id = ${streamId} AND e.stream_version <= ${cursor}
                ORDER BY e.stream_version DESC LIMIT ${size}`
        return paginate(
          { cursor: first, remaining: limit },
          ({ cursor, remaining }) => page(cursor, Math.min(batchSize, remaining)),
          (last, state) => ({ cursor: forward ? last.streamVersion + 1 : last.streamVersion - 1, remaining: state.remaining }),
          batchSize
        ).pipe(Stream.mapError(storeError(`Could not read stream "${streamId}"`)))
      })).pipe(Stream.withSpan("EventStore.readStream", { attributes: { streamId } }))

    // Events in [cursor, horizon] that pass the filter, at most `size`.
    const readRange = (cursor: bigint, horizon: bigint, filter: Validation.ResolvedFilter, size: number) =>
      sql<EventRow>`SELECT ${eventColumns} FROM ${events} e
        WHERE ${
        sql.and([
          sql`e.position >= ${cursor.toString()}`,
          sql`e.position <= ${horizon.toString()}`,
          ...(filter.eventTypes ? [sql`e.event_type IN ${sql.in(filter.eventTypes)}`] : []),
          ...(filter.categories ? [sql`e.category IN ${sql.in(filter.categories)}`] : []),
          ...(filter.streamIds ? [sql`e.stream_id IN ${sql.in(filter.streamIds)}`] : [])
        ])
      }
        ORDER BY e.position LIMIT ${size}`.pipe(Effect.map((rows) => rows.map(toRecordedEvent)))

    const readAll = (readOptions?: ReadAllOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        const { batchSize, filter, from, limit } = yield* Validation.readAllOptions(readOptions)
        const horizon = yield* globalOrder.settledHorizon
        return paginate(
          { cursor: from, remaining: limit },
          ({ cursor, remaining }) => readRange(cursor, horizon, filter, Math.min(batchSize, remaining)),
          (last, state) => ({ cursor: last.position + 1n, remaining: state.remaining }),
          batchSize,
          identity
        ).pipe(Stream.mapError(storeError("Could not read the global log")))
      })).pipe(Stream.withSpan("EventStore.readAll"))

    // Catching up and following are one loop: read up to the settled horizon in
    // pages; when there is nothing above it, wait for a wake-up and move the
    // horizon. No switch-over, so nothing is dropped or repeated at the seam.
    const subscribe = (subscribeOptions?: SubscribeOptions) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const { batchSize, filter, from } = yield* Validation.subscribeOptions(subscribeOptions)
        const nextWakeup = yield* wakeups.register
        let horizon = yield* globalOrder.settledHorizon
        let cursor = from === "end" ? horizon + 1n : from
        const step = Effect.gen(function*() {
          if (cursor > horizon) {
            horizon = yield* globalOrder.settledHorizon
            if (cursor > horizon) {
              yield* nextWakeup
              return Chunk.empty<RecordedEvent>()
            }
          }
          const page = yield* readRange(cursor, horizon, filter, batchSize).pipe(
            Effect.catchTag("SqlError", storeError("Could not read the global log"))
          )
          const last = page[page.length - 1]
          // A short page means nothing else that matches is at or below the horizon.
          cursor = page.length < batchSize || last === undefined ? horizon + 1n : last.position + 1n
          return Chunk.unsafeFromArray(page)
        })
        return Stream.repeatEffectChunk(step)
      })).pipe(Stream.withSpan("EventStore.subscribe"))

    const streamVersion = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const [row] = yield* sql<{ readonly version: string }>`
          SELECT version::text AS version FROM ${streams} WHERE stream_id = ${streamId}`.pipe(
          Effect.catchTag("SqlError", storeError(`Could not read stream "${streamId}"`))
        )
        return row === undefined ? Option.none() : Option.some(Number(row.version))
      }).pipe(Effect.withSpan("EventStore.streamVersion", { attributes: { streamId } }))

    const listStreams = (listOptions?: ListStreamsOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        const { after, batchSize, category, limit } = yield* Validation.listStreamsOptions(listOptions)
        type Cursor = { readonly after: string | undefined; readonly remaining: number }
        return paginate<Cursor, { readonly stream_id: string; readonly category: string; readonly version: string; readonly created_at: Date; readonly updated_at: Date }, StreamInfo>(
          { after, remaining: limit },
          ({ after, remaining }) =>
            sql`SELECT s.stream_id, s.category, s.version::text AS version, s.created_at, s.updated_at FROM ${streams} s
              WHERE ${sql.and([
              ...(after === undefined ? [] : [sql`s.stream_id > ${after}`]),
              ...(category === undefined ? [] : [sql`s.category = ${category}`])
            ])}
              ORDER BY s.stream_id LIMIT ${Math.min(batchSize, remaining)}`,
          (last, state) => ({ after: last.streamId, remaining: state.remaining }),
          batchSize,
          (row) => ({
            streamId: row.stream_id,
            category: row.category,
            version: Number(row.version),
            createdAt: row.created_at,
            updatedAt: row.updated_at
          })
        ).pipe(Stream.mapError(storeError("Could not list streams")))
      })).pipe(Stream.withSpan("EventStore.listStreams"))

    return EventStore.of({
      append,
      readStream,
      readAll,
      subscribe,
      headPosition: globalOrder.settledHorizon,
      streamVersion,
      listStreams
    })
  })

/**
 * Keyset pagination: fetch a page, emit it, move the cursor past its last
 * element, stop on a short page or when `remaining` runs out.
 */
function paginate<S extends { readonly remaining: number }, Row, A = RecordedEvent>(
  initial: S,
  fetch: (state: S) => Effect.Effect<ReadonlyArray<Row>, SqlError>,
  next: (last: A, state: S) => S,
  batchSize: number,
  decode: (row: Row) => A = toRecordedEvent as unknown as (row: Row) => A
): Stream.Stream<A, SqlError> {
  return Stream.paginateChunkEffect(initial, (state) =>
    fetch(state).pipe(Effect.map((rows) => {
      const page = rows.map(decode)
      const last = page[page.length - 1]
      const remaining = state.remaining - page.length
      const done = last === undefined || page.length < Math.min(batchSize, state.remaining) || remaining <= 0
      return [
        Chunk.unsafeFromArray(page),
        done || last === undefined ? Option.none<S>() : Option.some(next(last, { ...state, remaining }))
      ] as const
    })))
}

/**
 * The store as a layer over the `SqlClient` in context, migrating first unless
 * `migrate: false`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: PostgresEventStoreOptions
): Layer.Layer<EventStore, InvalidInput | SqlError | Migrator.MigrationError, SqlClient.SqlClient> =>
  Layer.scoped(
    EventStore,
    Effect.gen(function*() {
      if (options?.migrate !== false) {
        yield* Migrations.migrate(yield* Migrations.validateSchema(options?.schema ?? "event_store"))
      }
      return yield* make(options)
    })
  )
