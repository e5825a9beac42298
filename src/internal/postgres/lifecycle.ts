/**
 * The stream lifecycle on PostgreSQL. Deletes, tombstones and archives lock
 * the stream's row first, the row an append claims, so each one queues with
 * the appends to that stream: an append either committed before (and the
 * check sees it) or runs after. Every transaction is the store's own
 * (`./transaction.ts`), so whatever happens to the connection ends typed.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as StreamId from "../../StreamId.js"
import type { EventStoreDriver, LifecycleCheck, MetadataRow, MetadataWrite } from "../core/driver.js"
import { streamState } from "./reads.js"
import { storeError, writeFailed } from "./sqlErrors.js"
import type { Tables } from "./tables.js"
import * as Transaction from "./transaction.js"

type Lifecycle = Pick<
  EventStoreDriver,
  "getMetadata" | "setMetadata" | "deleteStream" | "tombstoneStream" | "archiveStream" | "eraseStream" | "scavenge"
>

const failure = (what: string, streamId: string) => `Could not ${what} stream "${streamId}"`

export const make = (sql: SqlClient.SqlClient, tables: Tables): Lifecycle => {
  const { archive, deletions, events, storedColumns, streams } = tables
  const state = streamState(sql, tables)

  // The stream's row, held FOR UPDATE, and the core's check on it.
  const checked = (streamId: string, check: LifecycleCheck) =>
    Effect.flatMap(state(streamId, "FOR UPDATE"), (row) =>
      Either.match(check(Option.getOrUndefined(row)), {
        onLeft: Effect.fail,
        onRight: Effect.succeed
      }))

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

  // Stream by stream, in transactions of at most `batchSize` removed events.
  // Each batch first takes the stream's row FOR SHARE: it sees the settings as
  // they are now and holds them (and appends) still until it commits.
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
  const scavengeBatch = (streamId: string, batchSize: number) => {
    const what = `Could not scavenge stream "${streamId}"`
    return rewriting(
      what,
      Effect.gen(function*() {
        yield* sql`SELECT 1 FROM ${streams} WHERE stream_id = ${streamId} FOR SHARE`
        const hot = yield* removeFrom(events, streamId, batchSize)
        return hot < batchSize ? hot + (yield* removeFrom(archive, streamId, batchSize - hot)) : hot
      })
    ).pipe(Effect.catchTag("SqlError", storeError(what)))
  }
  const scavengeCandidates = (after: string | undefined, limit: number) =>
    sql<{ readonly stream_id: string }>`
      SELECT stream_id FROM ${streams}
      WHERE (truncate_before IS NOT NULL OR max_count IS NOT NULL OR max_age_ms IS NOT NULL OR tombstoned_at IS NOT NULL)
        ${after === undefined ? sql.literal("") : sql`AND stream_id > ${after}`}
      ORDER BY stream_id LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map((row) => row.stream_id)),
      Effect.catchTag("SqlError", storeError("Could not scavenge"))
    )

  const erase = (table: typeof events, streamId: string) =>
    sql<{ readonly erased: number }>`WITH erased AS (
        UPDATE ${table} SET data = 'null'::jsonb, erased_at = statement_timestamp(),
          metadata = jsonb_strip_nulls(jsonb_build_object(
            'correlationId', metadata->'correlationId', 'causationId', metadata->'causationId'))
        WHERE stream_id = ${streamId} AND erased_at IS NULL RETURNING 1
      ) SELECT count(*)::int AS erased FROM erased`.pipe(Effect.map(([row]) => row?.erased ?? 0))

  return {
    getMetadata: (streamId) =>
      sql<{
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
        Effect.map(([row]) => {
          const count = (value: string | null) => value === null ? null : Number(value)
          return Option.map(Option.fromNullable(row), (found): MetadataRow => ({
            metadataVersion: Number(found.metadata_version),
            maxCount: count(found.max_count),
            maxAgeMillis: count(found.max_age_ms),
            truncateBefore: count(found.truncate_before),
            custom: found.custom_metadata,
            category: found.category,
            createdAt: found.created_at,
            tombstoned: found.tombstoned
          }))
        }),
        Effect.catchTag("SqlError", storeError(`Could not read the metadata of stream "${streamId}"`))
      ),

    // One statement, on the stream's row (created when missing, with version 0:
    // metadata does not create the stream), with its own optimistic check.
    setMetadata: (prepared) =>
      Effect.gen(function*() {
        const { expected, streamId } = prepared
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
        if (written !== undefined) {
          return { _tag: "Written", metadataVersion: Number(written.metadata_version) } satisfies MetadataWrite
        }
        const [row] = yield* sql<{ readonly metadata_version: string; readonly tombstoned: boolean }>`
          SELECT metadata_version::text AS metadata_version, tombstoned_at IS NOT NULL AS tombstoned
          FROM ${streams} WHERE stream_id = ${streamId}`
        if (row?.tombstoned === true) return { _tag: "Tombstoned" } satisfies MetadataWrite
        return {
          _tag: "Conflict",
          actual: row === undefined ? 0 : Number(row.metadata_version)
        } satisfies MetadataWrite
      }).pipe(Effect.catchTag("SqlError", writeFailed(`Could not set the metadata of stream "${prepared.streamId}"`))),

    deleteStream: (streamId, check) =>
      Transaction.withTransaction(sql, failure("delete", streamId))(Effect.gen(function*() {
        // Already gone (or never there): nothing to do, as for any stream that does not exist.
        if ((yield* checked(streamId, check)) === 0) return
        yield* sql`WITH deleted AS (
            UPDATE ${streams} SET deleted_at = statement_timestamp(),
              truncate_before = GREATEST(coalesce(truncate_before, 0), version + 1),
              metadata_version = metadata_version + 1
            WHERE stream_id = ${streamId} RETURNING stream_id, version
          ) INSERT INTO ${deletions} (stream_id, version) SELECT stream_id, version FROM deleted`
      })).pipe(Effect.catchTag("SqlError", storeError(failure("delete", streamId)))),

    tombstoneStream: (streamId, check) =>
      Transaction.withTransaction(sql, failure("tombstone", streamId))(Effect.gen(function*() {
        // A stream that does not exist gets a row too, so that it can never be created.
        yield* sql`INSERT INTO ${streams} (stream_id, category, version)
          VALUES (${streamId}, ${StreamId.category(streamId)}, 0) ON CONFLICT (stream_id) DO NOTHING`
        yield* checked(streamId, check)
        yield* sql`UPDATE ${streams} SET tombstoned_at = statement_timestamp() WHERE stream_id = ${streamId}`
      })).pipe(Effect.catchTag("SqlError", storeError(failure("tombstone", streamId)))),

    // The DELETE holds the events table's RowExclusiveLock until commit, like an
    // append, so the settled horizon waits for it: a reader sees the events in
    // the hot log or in the archive, never in both or neither.
    archiveStream: (streamId, check) =>
      Transaction.withTransaction(sql, failure("archive", streamId))(Effect.gen(function*() {
        if ((yield* checked(streamId, check)) === 0) return 0
        const [moved] = yield* rewriting(
          failure("archive", streamId),
          sql<{ readonly archived: number }>`
          WITH moved AS (
            DELETE FROM ${events} WHERE stream_id = ${streamId} RETURNING ${storedColumns}
          ), archived AS (
            INSERT INTO ${archive} (${storedColumns}) SELECT ${storedColumns} FROM moved RETURNING 1
          )
          SELECT count(*)::int AS archived FROM archived`
        )
        yield* sql`UPDATE ${streams} SET archived_version = version WHERE stream_id = ${streamId}`
        return moved?.archived ?? 0
      })).pipe(Effect.catchTag("SqlError", storeError(failure("archive", streamId)))),

    // Blanks in place; the lock on the stream's row makes the erasure cover
    // every event stored before it, while appends wait for it to commit.
    eraseStream: (streamId) =>
      rewriting(
        failure("erase", streamId),
        Effect.gen(function*() {
          yield* sql`SELECT 1 FROM ${streams} WHERE stream_id = ${streamId} FOR UPDATE`
          const erased = (yield* erase(events, streamId)) + (yield* erase(archive, streamId))
          // State folded from the events before is out of date: a new epoch.
          if (erased > 0) yield* sql`UPDATE ${streams} SET epoch = epoch + 1 WHERE stream_id = ${streamId}`
          return erased
        })
      ).pipe(Effect.catchTag("SqlError", storeError(failure("erase", streamId)))),

    scavenge: (batchSize) =>
      Effect.gen(function*() {
        let removed = 0
        let touched = 0
        let after: string | undefined = undefined
        const pageSize = 100
        while (true) {
          const page: ReadonlyArray<string> = yield* scavengeCandidates(after, pageSize)
          for (const streamId of page) {
            let fromStream = 0
            while (true) {
              const count = yield* scavengeBatch(streamId, batchSize)
              fromStream += count
              if (count < batchSize) break
            }
            removed += fromStream
            if (fromStream > 0) touched++
          }
          if (page.length < pageSize) break
          after = page[page.length - 1]
        }
        return { removed, streams: touched }
      })
  }
}
