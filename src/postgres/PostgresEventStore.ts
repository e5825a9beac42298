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
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import {
  ConcurrencyError,
  DuplicateEventId,
  type InvalidInput,
  MetadataConcurrencyError,
  StoreError,
  StreamDeleted
} from "../Errors.js"
import type { EventData, EventMetadata } from "../EventData.js"
import {
  type AppendOptions,
  type AppendResult,
  type ArchiveResult,
  emptyStreamView,
  type EraseResult,
  EventStore,
  makeStreamMetadata,
  makeStreamReads,
  type ListStreamsOptions,
  type ReadAllOptions,
  type ReadStreamOptions,
  type ScavengeOptions,
  type ScavengeResult,
  type SetStreamMetadataOptions,
  type StreamLifecycleOptions,
  type StreamMetadataInput,
  type StreamView,
  type SubscribeOptions
} from "../EventStore.js"
import * as AppendRejection from "../AppendRejection.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import * as StreamId from "../StreamId.js"
import type { RecordedEvent, StreamInfo } from "../RecordedEvent.js"
import * as Validation from "../Validation.js"
import * as GlobalOrder from "./GlobalOrder.js"
import * as Migrations from "./Migrations.js"
import * as Standby from "./Standby.js"
import * as SqlErrors from "./SqlErrors.js"
import { SqlState } from "./SqlErrors.js"
import * as Transaction from "./Transaction.js"
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
  readonly erased_at: Date | null
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
  recordedAt: row.recorded_at,
  ...(row.erased_at === null ? {} : { erasedAt: row.erased_at })
})

/** A stream's row, as the lifecycle needs it. */
interface StreamState {
  readonly version: string
  readonly deleted: boolean
  readonly tombstoned: boolean
}

/** Why the append function stored nothing. */
type Rejection = "conflict" | "tombstoned" | "stored_ids"

/** The version an expected-version check sees: 0 for a stream with no events, deleted or tombstoned. */
const liveVersion = (stream: StreamState | undefined): number =>
  stream === undefined || stream.deleted || stream.tombstoned ? 0 : Number(stream.version)

const { storeError } = SqlErrors

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
    const schema = yield* Migrations.schemaOf(options)
    const limits: Validation.Limits = {
      maxEventBytes: yield* Validation.positiveInt("maxEventBytes", options?.maxEventBytes, Validation.defaultLimits.maxEventBytes)
    }
    const events = sql(`${schema}.events`)
    const archive = sql(`${schema}.events_archive`)
    const streams = sql(`${schema}.streams`)
    const appendToStream = sql(`${schema}.append_to_stream`)
    const viewStreamFunction = sql(`${schema}.view_stream`)
    const deletions = sql(`${schema}.stream_deletions`)
    const globalOrder = yield* GlobalOrder.make(schema)
    const wakeups = yield* Wakeups.make(schema, options?.subscriptions)
    // Qualified by the alias `e` that every read gives the events table: ORDER BY
    // would otherwise pick the text output columns and sort "10" before "9".
    const eventColumns = sql.literal(
      "e.position::text AS position, e.event_id::text AS event_id, e.stream_id, e.stream_version::text AS stream_version, " +
        "e.event_type, e.schema_version, e.data, e.metadata, e.recorded_at, e.erased_at"
    )
    // The hot log and the archive as one relation. PostgreSQL flattens the
    // UNION ALL and pushes the conditions into both sides, so a keyset page is a
    // merge of two index scans.
    const storedColumns = sql.literal(
      "position, event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata, recorded_at, erased_at"
    )
    const hotAndArchived = sql`(SELECT ${storedColumns} FROM ${events} UNION ALL SELECT ${storedColumns} FROM ${archive})`
    const source = (includeArchived: boolean) => includeArchived ? hotAndArchived : events

    // --- append -----------------------------------------------------------------

    // One call of the append function (migrations/0007_stream_history.sql): it
    // claims the versions on the stream's row and inserts every event, in one
    // round trip, with plans the server keeps per connection. A racing append
    // waits for the row and re-checks instead of failing, so a conflict never
    // aborts the caller's transaction. When it stores nothing it returns one
    // row without a position that says why, with the version its check saw.
    const appendStatement = (append: Validation.PreparedAppend, batch: string) => {
      const [expected, version] = typeof append.expected === "number"
        ? ["exact", append.expected]
        : [append.expected, 0]
      const ids = `{${append.events.map((event) => event.eventId).join(",")}}`
      return sql<{ readonly position: string | null; readonly stream_version: string; readonly rejection: Rejection | null }>`
        SELECT a.event_position::text AS position, a.event_version::text AS stream_version, a.rejection
        FROM ${appendToStream}(${append.streamId}, ${append.category}, ${expected}, ${version}, ${ids}::uuid[], ${batch}::jsonb) a
        ORDER BY a.event_position`
    }

    const streamState = (streamId: string, lock?: "FOR UPDATE") =>
      sql<StreamState>`SELECT version::text AS version, deleted_at IS NOT NULL AS deleted, tombstoned_at IS NOT NULL AS tombstoned
        FROM ${streams} WHERE stream_id = ${streamId} ${lock === undefined ? sql.literal("") : sql.literal(lock)}`.pipe(
        Effect.map((rows) => rows[0])
      )

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
           EXISTS (SELECT 1 FROM ${deletions} d WHERE d.stream_id = e.stream_id AND d.version = e.stream_version - 1) AS recreated
         FROM ${hotAndArchived} e WHERE e.event_id IN ${sql.in(append.events.map((event) => event.eventId))}`.pipe(
        Effect.map((rows) =>
          rows.map((row): AppendRejection.StoredEvent => ({
            eventId: row.event_id,
            streamId: row.stream_id,
            streamVersion: Number(row.stream_version),
            position: BigInt(row.position),
            recreated: row.recreated
          }))
        )
      )

    // Why the append function stored nothing. A tombstone wins over
    // idempotency, as in EventStoreDB: the answer does not depend on whether a
    // scavenge has removed the stream's events yet. With ids already stored:
    // a retry of an append that is stored (success), a clash of ids, or a
    // version conflict.
    const explainRejection = (append: Validation.PreparedAppend, rejection: Rejection, actual: number) =>
      rejection === "tombstoned"
        ? Effect.fail(new StreamDeleted({ streamId: append.streamId }))
        : rejection === "conflict"
        ? AppendRejection.classify(append, actual, [])
        : Effect.flatMap(storedUnder(append), (stored) => AppendRejection.classify(append, actual, stored))

    // After a racing append stored one of the ids between the function's check
    // and its insert: look at the stream and the ids again.
    const explainRejected = (append: Validation.PreparedAppend) =>
      Effect.gen(function*() {
        const stream = yield* streamState(append.streamId)
        if (stream?.tombstoned === true) return yield* new StreamDeleted({ streamId: append.streamId })
        return yield* explainRejection(append, "stored_ids", liveVersion(stream))
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
            const code = SqlErrors.sqlStateOf(error)
            const constraint = SqlErrors.constraintOf(error)
            // A racing append of the same ids got in between our duplicate check and
            // our insert. Outside a transaction we can look again and classify.
            if (code === SqlState.uniqueViolation && constraint === "events_event_id_key") {
              return inTransaction
                ? Effect.fail(new DuplicateEventId({ streamId, eventId: prepared.events[0].eventId }))
                : Effect.succeed(null)
            }
            if (code === SqlState.uniqueViolation && constraint === "events_stream_version_key") {
              return Effect.fail(new ConcurrencyError({ streamId, expected: prepared.expected }))
            }
            // REPEATABLE READ / SERIALIZABLE: the stream row changed since the snapshot.
            if (code === SqlState.serializationFailure) {
              return Effect.fail(new ConcurrencyError({ streamId, expected: prepared.expected }))
            }
            if (Standby.isReadOnlyViolation(error)) return Standby.readOnlyFailure(sql, `append to "${streamId}"`, error)
            return SqlErrors.writeFailed(`Could not append to "${streamId}"`)(error)
          })
        )
        const outcome = rows?.[0]
        if (rows !== null && outcome !== undefined && outcome.rejection === null) {
          // Committed already unless the caller's transaction is still open; then
          // the poller notices once it commits.
          if (!inTransaction) yield* wakeups.nudge
          return {
            streamVersion: Number(rows[rows.length - 1]?.stream_version ?? outcome.stream_version),
            positions: rows.flatMap((row) => row.position === null ? [] : [BigInt(row.position)])
          } satisfies AppendResult
        }
        return yield* (outcome?.rejection == null
          ? explainRejected(prepared)
          : explainRejection(prepared, outcome.rejection, Number(outcome.stream_version))).pipe(
          Effect.catchTag("SqlError", storeError(`Could not append to "${streamId}"`))
        )
      }).pipe(Effect.withSpan("EventStore.append", {
        attributes: { streamId, events: Array.isArray(eventData) ? eventData.length : 0 },
        // Capturing a stack for every append costs more than the rest of the span.
        captureStackTrace: false
      }))

    // --- reads -------------------------------------------------------------------

    // One look at the stream (migrations/0007_stream_history.sql): its version,
    // the lowest version its metadata lets a reader see, maxAge's cutoff
    // (measured once, by the database's clock: that instant minus maxAge, in
    // microseconds since the epoch), and the first event a reader sees.
    const openStream = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const [stream] = yield* sql<StreamState & {
          readonly epoch: string
          readonly archived_version: string
          readonly low: string
          readonly cutoff: string | null
          readonly first_visible: string | null
        }>`SELECT v.head::text AS version, v.is_deleted AS deleted, v.is_tombstoned AS tombstoned,
            v.history_epoch::text AS epoch, v.archived_up_to::text AS archived_version, v.read_from::text AS low,
            v.cutoff_us::text AS cutoff, v.first_visible::text AS first_visible
          FROM ${viewStreamFunction}(${streamId}) v`.pipe(
          Effect.catchTag("SqlError", storeError(`Could not read stream "${streamId}"`))
        )
        if (stream?.tombstoned === true) return yield* new StreamDeleted({ streamId })
        if (stream === undefined) return emptyStreamView(1, 0)
        if (liveVersion(stream) === 0) return emptyStreamView(Number(stream.version) + 1, Number(stream.epoch))
        // Reads go up to the version the stream had now, so a long read is one
        // consistent prefix of the stream.
        const head = Number(stream.version)
        const low = Number(stream.low)
        const table = source(Number(stream.archived_version) > 0)
        const young = stream.cutoff === null
          ? sql.literal("TRUE")
          : sql`e.recorded_at >= timestamptz 'epoch' + ${stream.cutoff}::bigint * interval '1 microsecond'`
        const read = (readOptions?: ReadStreamOptions) =>
          Stream.unwrap(Effect.map(Validation.readStreamOptions(readOptions), ({ batchSize, direction, from, limit }) => {
            const forward = direction === "forward"
            const first = forward ? Math.max(from ?? 1, low) : Math.min(from ?? head, head)
            const page = (cursor: number, size: number) =>
              forward
                ? sql<EventRow>`SELECT ${eventColumns} FROM ${table} e
                    WHERE e.stream_id = ${streamId} AND e.stream_version >= ${cursor} AND e.stream_version <= ${head} AND ${young}
                    ORDER BY e.stream_version LIMIT ${size}`
                : sql<EventRow>`SELECT ${eventColumns} FROM ${table} e
                    WHERE e.stream_id = ${streamId} AND e.stream_version <= ${cursor} AND e.stream_version >= ${low} AND ${young}
                    ORDER BY e.stream_version DESC LIMIT ${size}`
            return paginate(
              { cursor: first, remaining: limit },
              ({ cursor, remaining }) => page(cursor, Math.min(batchSize, remaining)),
              (last, state) =>
                (forward ? last.streamVersion >= head : last.streamVersion <= low)
                  ? undefined
                  : { cursor: forward ? last.streamVersion + 1 : last.streamVersion - 1, remaining: state.remaining },
              batchSize,
              toRecordedEvent
            ).pipe(Stream.mapError(storeError(`Could not read stream "${streamId}"`)))
          }))
        return {
          version: head,
          firstVersion: stream.first_visible === null ? head + 1 : Number(stream.first_visible),
          epoch: Number(stream.epoch),
          events: read
        } satisfies StreamView
      })

    const { readStream, viewStream } = makeStreamReads(openStream)

    // Events in [cursor, horizon] that pass the filter, at most `size`.
    const readRange = (
      cursor: bigint,
      horizon: bigint,
      filter: Validation.ResolvedFilter,
      size: number,
      includeArchived: boolean
    ) =>
      sql<EventRow>`SELECT ${eventColumns} FROM ${source(includeArchived)} e
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
        const { batchSize, filter, from, includeArchived, limit } = yield* Validation.readAllOptions(readOptions)
        const horizon = yield* globalOrder.settledHorizon
        return paginate(
          { cursor: from, remaining: limit },
          ({ cursor, remaining }) => readRange(cursor, horizon, filter, Math.min(batchSize, remaining), includeArchived),
          (last: RecordedEvent, state) =>
            last.position >= horizon ? undefined : { cursor: last.position + 1n, remaining: state.remaining },
          batchSize,
          identity
        ).pipe(Stream.mapError(storeError("Could not read the global log")))
      })).pipe(Stream.withSpan("EventStore.readAll"))

    // Catching up and following are one loop: read up to the settled horizon in
    // pages; when there is nothing above it, wait for a wake-up and move the
    // horizon. No switch-over, so nothing is dropped or repeated at the seam.
    // `cursor` and `horizon` move only once a read succeeded, so a failed step
    // is retried as it is, from where the subscription stands.
    const subscribe = (subscribeOptions?: SubscribeOptions) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const { batchSize, filter, from, includeArchived, retry } = yield* Validation.subscribeOptions(subscribeOptions)
        const nextWakeup = yield* wakeups.register
        // The end is where the log stands when the subscription starts; if the
        // database cannot tell then, wherever it stands at the first read that works.
        const first = yield* Effect.option(globalOrder.settledHorizon)
        let horizon = Option.getOrElse(first, () => -1n)
        let cursor: bigint | undefined = from !== "end" ? from : Option.isSome(first) ? first.value + 1n : undefined
        const step = Effect.gen(function*() {
          if (cursor === undefined) {
            horizon = yield* globalOrder.settledHorizon
            cursor = horizon + 1n
          }
          if (cursor > horizon) {
            horizon = yield* globalOrder.settledHorizon
            if (cursor > horizon) {
              yield* nextWakeup
              return Chunk.empty<RecordedEvent>()
            }
          }
          const page = yield* readRange(cursor, horizon, filter, batchSize, includeArchived).pipe(
            Effect.catchTag("SqlError", storeError("Could not read the global log"))
          )
          const last = page[page.length - 1]
          // A short page means nothing else that matches is at or below the horizon.
          cursor = page.length < batchSize || last === undefined ? horizon + 1n : last.position + 1n
          return Chunk.unsafeFromArray(page)
        })
        const retrying = retry.pipe(
          Schedule.intersect(Schedule.identity<StoreError>()),
          Schedule.onDecision(([, error], decision) =>
            decision._tag === "Continue"
              ? Effect.logWarning(`Subscription read failed at position ${cursor ?? "end"}; retrying: ${error.message}`)
              : Effect.void
          )
        )
        return Stream.repeatEffectChunk(Effect.retry(step, { schedule: retrying, while: SqlErrors.isDatabaseFailure }))
      })).pipe(Stream.withSpan("EventStore.subscribe"))

    const streamVersion = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const version = liveVersion(
          yield* streamState(streamId).pipe(Effect.catchTag("SqlError", storeError(`Could not read stream "${streamId}"`)))
        )
        return version === 0 ? Option.none() : Option.some(version)
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
              sql`s.version > 0 AND s.deleted_at IS NULL AND s.tombstoned_at IS NULL`,
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

    // --- lifecycle ---------------------------------------------------------------

    const getStreamMetadata = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const [row] = yield* sql<{
          readonly category: string
          readonly metadata_version: string
          readonly max_count: string | null
          readonly max_age_ms: string | null
          readonly truncate_before: string | null
          readonly custom_metadata: { readonly [key: string]: unknown }
          readonly created_at: Date | null
          readonly tombstoned: boolean
        }>`SELECT category, metadata_version::text AS metadata_version, max_count::text AS max_count,
            max_age_ms::text AS max_age_ms, truncate_before::text AS truncate_before, custom_metadata,
            CASE WHEN version > 0 AND deleted_at IS NULL THEN created_at END AS created_at,
            tombstoned_at IS NOT NULL AS tombstoned
          FROM ${streams} WHERE stream_id = ${streamId}`.pipe(
          Effect.catchTag("SqlError", storeError(`Could not read the metadata of stream "${streamId}"`))
        )
        if (row?.tombstoned === true) return yield* new StreamDeleted({ streamId })
        if (row === undefined) return { metadataVersion: 0, custom: {}, category: StreamId.category(streamId) }
        const count = (value: string | null) => value === null ? null : Number(value)
        return makeStreamMetadata({
          metadataVersion: Number(row.metadata_version),
          maxCount: count(row.max_count),
          maxAgeMillis: count(row.max_age_ms),
          truncateBefore: count(row.truncate_before),
          custom: row.custom_metadata,
          category: row.category,
          createdAt: row.created_at
        })
      }).pipe(Effect.withSpan("EventStore.getStreamMetadata", { attributes: { streamId } }))

    // One statement, on the stream's row (created when missing, with version 0:
    // metadata does not create the stream), with its own optimistic check.
    const setStreamMetadata = (
      streamId: string,
      metadata: StreamMetadataInput,
      metadataOptions?: SetStreamMetadataOptions
    ) =>
      Effect.gen(function*() {
        const prepared = yield* Validation.prepareMetadata(streamId, metadata, metadataOptions, limits)
        const { expected } = prepared
        const settings = sql`max_count = ${prepared.maxCount}::bigint, max_age_ms = ${prepared.maxAgeMillis}::bigint,
          truncate_before = ${prepared.truncateBefore}::bigint, custom_metadata = ${prepared.custom}::jsonb`
        const [written] = yield* (expected === "any" || expected === 0
          ? sql<{ readonly metadata_version: string }>`
            INSERT INTO ${streams} AS s (stream_id, category, version, metadata_version, max_count, max_age_ms, truncate_before, custom_metadata)
            VALUES (${streamId}, ${prepared.category}, 0, 1, ${prepared.maxCount}::bigint, ${prepared.maxAgeMillis}::bigint,
              ${prepared.truncateBefore}::bigint, ${prepared.custom}::jsonb)
            ON CONFLICT (stream_id) DO UPDATE SET metadata_version = s.metadata_version + 1, ${settings}
            WHERE s.tombstoned_at IS NULL ${expected === 0 ? sql`AND s.metadata_version = 0` : sql.literal("")}
            RETURNING s.metadata_version::text AS metadata_version`
          : sql<{ readonly metadata_version: string }>`
            UPDATE ${streams} s SET metadata_version = s.metadata_version + 1, ${settings}
            WHERE s.stream_id = ${streamId} AND s.tombstoned_at IS NULL AND s.metadata_version = ${expected}
            RETURNING s.metadata_version::text AS metadata_version`)
        if (written !== undefined) return { metadataVersion: Number(written.metadata_version) }
        const [row] = yield* sql<{ readonly metadata_version: string; readonly tombstoned: boolean }>`
          SELECT metadata_version::text AS metadata_version, tombstoned_at IS NOT NULL AS tombstoned
          FROM ${streams} WHERE stream_id = ${streamId}`
        if (row?.tombstoned === true) return yield* new StreamDeleted({ streamId })
        return yield* new MetadataConcurrencyError({
          streamId,
          expected,
          actual: row === undefined ? 0 : Number(row.metadata_version)
        })
      }).pipe(
        Effect.catchTag("SqlError", SqlErrors.writeFailed(`Could not set the metadata of stream "${streamId}"`)),
        Effect.withSpan("EventStore.setStreamMetadata", { attributes: { streamId } })
      )

    // Deletes, tombstones and archives lock the stream's row first, the row an
    // append claims, so each one queues with the appends to that stream: an
    // append either committed before (and the check sees it) or runs after.
    const checkExpected = (streamId: string, expected: ExpectedVersion.ExpectedVersion, stream: StreamState | undefined) =>
      Effect.suspend((): Effect.Effect<number, ConcurrencyError | StreamDeleted> => {
        if (stream?.tombstoned === true) return Effect.fail(new StreamDeleted({ streamId }))
        const actual = liveVersion(stream)
        return ExpectedVersion.isSatisfiedBy(expected, actual)
          ? Effect.succeed(actual)
          : Effect.fail(new ConcurrencyError({ streamId, expected, actual }))
      })

    // Rewriting stored events (archive, erasure, scavenge) needs
    // event_store.allow_rewrite for this transaction only. The previous value is
    // put back, so that inside a caller's transaction the permission does not
    // outlive the operation.
    const rewriting = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
      Transaction.withTransaction(sql, what)(Effect.gen(function*() {
        const [setting] = yield* sql<{ readonly previous: string | null }>`
          SELECT current_setting('event_store.allow_rewrite', true) AS previous,
                 set_config('event_store.allow_rewrite', 'on', true) AS now`
        const result = yield* effect
        yield* sql`SELECT set_config('event_store.allow_rewrite', ${setting?.previous ?? ""}, true)`
        return result
      }))

    const lifecycleFailure = (what: string, streamId: string) => `Could not ${what} stream "${streamId}"`

    const deleteStream = (streamId: string, deleteOptions?: StreamLifecycleOptions) =>
      Effect.gen(function*() {
        const { expected } = yield* Validation.streamLifecycle(streamId, deleteOptions)
        yield* Transaction.withTransaction(sql, lifecycleFailure("delete", streamId))(Effect.gen(function*() {
          const actual = yield* checkExpected(streamId, expected, yield* streamState(streamId, "FOR UPDATE"))
          // Already gone (or never there): nothing to do, as for any stream that does not exist.
          if (actual === 0) return
          yield* sql`WITH deleted AS (
              UPDATE ${streams} SET deleted_at = statement_timestamp(),
                truncate_before = GREATEST(coalesce(truncate_before, 0), version + 1),
                metadata_version = metadata_version + 1
              WHERE stream_id = ${streamId} RETURNING stream_id, version
            ) INSERT INTO ${deletions} (stream_id, version) SELECT stream_id, version FROM deleted`
        }))
      }).pipe(
        Effect.catchTag("SqlError", storeError(lifecycleFailure("delete", streamId))),
        Effect.withSpan("EventStore.deleteStream", { attributes: { streamId } })
      )

    const tombstoneStream = (streamId: string, tombstoneOptions?: StreamLifecycleOptions) =>
      Effect.gen(function*() {
        const { expected } = yield* Validation.streamLifecycle(streamId, tombstoneOptions)
        yield* Transaction.withTransaction(sql, lifecycleFailure("tombstone", streamId))(Effect.gen(function*() {
          // A stream that does not exist gets a row too, so that it can never be created.
          yield* sql`INSERT INTO ${streams} (stream_id, category, version)
            VALUES (${streamId}, ${StreamId.category(streamId)}, 0) ON CONFLICT (stream_id) DO NOTHING`
          yield* checkExpected(streamId, expected, yield* streamState(streamId, "FOR UPDATE"))
          yield* sql`UPDATE ${streams} SET tombstoned_at = statement_timestamp() WHERE stream_id = ${streamId}`
        }))
      }).pipe(
        Effect.catchTag("SqlError", storeError(lifecycleFailure("tombstone", streamId))),
        Effect.withSpan("EventStore.tombstoneStream", { attributes: { streamId } })
      )

    // The DELETE holds the events table's RowExclusiveLock until commit, like an
    // append, so the settled horizon waits for it: a reader sees the events in
    // the hot log or in the archive, never in both or neither.
    const archiveStream = (streamId: string, archiveOptions?: StreamLifecycleOptions) =>
      Effect.gen(function*() {
        const { expected } = yield* Validation.streamLifecycle(streamId, archiveOptions)
        return yield* Transaction.withTransaction(sql, lifecycleFailure("archive", streamId))(Effect.gen(function*() {
          const actual = yield* checkExpected(streamId, expected, yield* streamState(streamId, "FOR UPDATE"))
          if (actual === 0) return { archived: 0 } satisfies ArchiveResult
          const [moved] = yield* rewriting(lifecycleFailure("archive", streamId), sql<{ readonly archived: number }>`
            WITH moved AS (
              DELETE FROM ${events} WHERE stream_id = ${streamId} RETURNING ${storedColumns}
            ), archived AS (
              INSERT INTO ${archive} (${storedColumns}) SELECT ${storedColumns} FROM moved RETURNING 1
            )
            SELECT count(*)::int AS archived FROM archived`)
          yield* sql`UPDATE ${streams} SET archived_version = version WHERE stream_id = ${streamId}`
          return { archived: moved?.archived ?? 0 } satisfies ArchiveResult
        }))
      }).pipe(
        Effect.catchTag("SqlError", storeError(lifecycleFailure("archive", streamId))),
        Effect.withSpan("EventStore.archiveStream", { attributes: { streamId } })
      )

    // Blanks in place; the lock on the stream's row makes the erasure cover
    // every event stored before it, while appends wait for it to commit.
    const eraseStream = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const erase = (table: typeof events) =>
          sql<{ readonly erased: number }>`WITH erased AS (
              UPDATE ${table} SET data = 'null'::jsonb, erased_at = statement_timestamp(),
                metadata = jsonb_strip_nulls(jsonb_build_object(
                  'correlationId', metadata->'correlationId', 'causationId', metadata->'causationId'))
              WHERE stream_id = ${streamId} AND erased_at IS NULL RETURNING 1
            ) SELECT count(*)::int AS erased FROM erased`.pipe(Effect.map(([row]) => row?.erased ?? 0))
        return yield* rewriting(lifecycleFailure("erase", streamId), Effect.gen(function*() {
          yield* sql`SELECT 1 FROM ${streams} WHERE stream_id = ${streamId} FOR UPDATE`
          const erased = (yield* erase(events)) + (yield* erase(archive))
          // State folded from the events before is out of date: a new epoch.
          if (erased > 0) yield* sql`UPDATE ${streams} SET epoch = epoch + 1 WHERE stream_id = ${streamId}`
          return { erased } satisfies EraseResult
        }))
      }).pipe(
        Effect.catchTag("SqlError", storeError(lifecycleFailure("erase", streamId))),
        Effect.withSpan("EventStore.eraseStream", { attributes: { streamId } })
      )

    // Stream by stream, in transactions of at most `batchSize` removed events.
    // Each batch first takes the stream's row FOR SHARE: it sees the settings as
    // they are now and holds them (and appends) still until it commits.
    const scavenge = (scavengeOptions?: ScavengeOptions) =>
      Effect.gen(function*() {
        const { batchSize } = yield* Validation.scavengeOptions(scavengeOptions)
        const hidden = sql`(s.tombstoned_at IS NOT NULL OR e.stream_version < s.truncate_before
          OR e.stream_version <= s.version - s.max_count
          OR e.recorded_at < statement_timestamp() - s.max_age_ms * interval '1 millisecond')`
        const removeFrom = (table: typeof events, streamId: string, size: number) =>
          sql<{ readonly removed: number }>`WITH removed AS (
              DELETE FROM ${table} WHERE position IN (
                SELECT e.position FROM ${table} e JOIN ${streams} s ON s.stream_id = e.stream_id
                WHERE e.stream_id = ${streamId} AND ${hidden}
                ORDER BY e.stream_version LIMIT ${size}
              ) RETURNING 1
            ) SELECT count(*)::int AS removed FROM removed`.pipe(Effect.map(([row]) => row?.removed ?? 0))
        const batch = (streamId: string) => {
          const what = `Could not scavenge stream "${streamId}"`
          return rewriting(what, Effect.gen(function*() {
            yield* sql`SELECT 1 FROM ${streams} WHERE stream_id = ${streamId} FOR SHARE`
            const hot = yield* removeFrom(events, streamId, batchSize)
            return hot < batchSize ? hot + (yield* removeFrom(archive, streamId, batchSize - hot)) : hot
          })).pipe(Effect.catchTag("SqlError", storeError(what)))
        }
        let removed = 0
        let touched = 0
        let after: string | undefined = undefined
        const pageSize = 100
        while (true) {
          const page: ReadonlyArray<{ readonly stream_id: string }> = yield* sql<{ readonly stream_id: string }>`
            SELECT stream_id FROM ${streams}
            WHERE (truncate_before IS NOT NULL OR max_count IS NOT NULL OR max_age_ms IS NOT NULL OR tombstoned_at IS NOT NULL)
              ${after === undefined ? sql.literal("") : sql`AND stream_id > ${after}`}
            ORDER BY stream_id LIMIT ${pageSize}`
          for (const { stream_id } of page) {
            let fromStream = 0
            while (true) {
              const count = yield* batch(stream_id)
              fromStream += count
              if (count < batchSize) break
            }
            removed += fromStream
            if (fromStream > 0) touched++
          }
          if (page.length < pageSize) break
          after = page[page.length - 1]?.stream_id
        }
        return { removed, streams: touched } satisfies ScavengeResult
      }).pipe(
        Effect.catchTag("SqlError", storeError("Could not scavenge")),
        Effect.withSpan("EventStore.scavenge")
      )

    return EventStore.of({
      append,
      readStream,
      viewStream,
      readAll,
      subscribe,
      headPosition: globalOrder.settledHorizon,
      streamVersion,
      listStreams,
      getStreamMetadata,
      setStreamMetadata,
      deleteStream,
      tombstoneStream,
      archiveStream,
      eraseStream,
      scavenge
    })
  })

/**
 * Keyset pagination: fetch a page, emit it, move the cursor past its last
 * element; stop on a short page, when `remaining` runs out, or when `next`
 * says the last element was the known end (which saves an empty round trip).
 */
function paginate<S extends { readonly remaining: number }, Row, A>(
  initial: S,
  fetch: (state: S) => Effect.Effect<ReadonlyArray<Row>, SqlError>,
  next: (last: A, state: S) => S | undefined,
  batchSize: number,
  decode: (row: Row) => A
): Stream.Stream<A, SqlError> {
  return Stream.paginateChunkEffect(initial, (state) =>
    fetch(state).pipe(Effect.map((rows) => {
      const page = rows.map(decode)
      const last = page[page.length - 1]
      const remaining = state.remaining - page.length
      const done = last === undefined || page.length < Math.min(batchSize, state.remaining) || remaining <= 0
      return [
        Chunk.unsafeFromArray(page),
        done || last === undefined ? Option.none<S>() : Option.fromNullable(next(last, { ...state, remaining }))
      ] as const
    })))
}

/**
 * The store as a layer over the `SqlClient` in context, migrating first unless
 * `migrate: false`. It fails on a hot standby, with the `HotStandby` as the
 * cause (of the `MigrationError`, or with `migrate: false` of a `StoreError`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: PostgresEventStoreOptions
): Layer.Layer<EventStore, InvalidInput | StoreError | SqlError | Migrator.MigrationError, SqlClient.SqlClient> =>
  Layer.scoped(
    EventStore,
    Migrations.migrateFirst(options, make(options))
  )
