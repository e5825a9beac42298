/**
 * The snapshot store on PostgreSQL, in the `snapshots` table of the event
 * store's schema (migrations/0002_snapshots.sql, with what each snapshot
 * summarises since 0007_stream_history.sql), through any `@effect/sql`
 * client with the `pg` dialect: `@effect/sql-pg` for a server, or the PGlite
 * client of `effect-event-store/pglite`.
 *
 * `PgliteEventStore.layer` includes it, on its own database.
 *
 * @since 0.1.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { InvalidInput } from "../Errors.js"
import { migrateFirst } from "../internal/postgres/migrator.js"
import { schemaOf } from "../internal/postgres/schema.js"
import { storeError, writeFailed } from "../internal/postgres/sqlErrors.js"
import { prepareSnapshot } from "../internal/snapshot.js"
import * as Validation from "../internal/validation/index.js"
import { type Snapshot, SnapshotStore, type SnapshotToSave } from "../SnapshotStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresSnapshotStoreOptions {
  /** The PostgreSQL schema of the event store (default `event_store`). */
  readonly schema?: string | undefined
  /** Create or upgrade the tables when the layer starts (default true). */
  readonly migrate?: boolean | undefined
}

/**
 * Builds the snapshot store on the `SqlClient` in context. Expects the tables
 * to exist (see `Migrations.migrate`, which `layer` runs by default).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: PostgresSnapshotStoreOptions
): Effect.Effect<SnapshotStore, InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* schemaOf(options)
    const snapshots = sql(`${schema}.snapshots`)

    const save = (streamId: string, snapshot: SnapshotToSave) =>
      Effect.gen(function*() {
        const prepared = yield* prepareSnapshot(streamId, snapshot)
        // The WHERE clause is the rule of `replaces` (src/internal/snapshot.ts), decided under the row lock.
        yield* sql`
          INSERT INTO ${snapshots} AS s (stream_id, stream_version, first_version, epoch, schema_version, state)
          VALUES (${prepared.streamId}, ${prepared.version}, ${prepared.firstVersion}, ${prepared.epoch},
            ${prepared.schemaVersion}, ${prepared.state}::jsonb)
          ON CONFLICT (stream_id) DO UPDATE SET
            stream_version = EXCLUDED.stream_version,
            first_version = EXCLUDED.first_version,
            epoch = EXCLUDED.epoch,
            schema_version = EXCLUDED.schema_version,
            state = EXCLUDED.state,
            saved_at = statement_timestamp()
          WHERE s.schema_version <> EXCLUDED.schema_version OR s.epoch < EXCLUDED.epoch
            OR (s.epoch = EXCLUDED.epoch AND s.stream_version <= EXCLUDED.stream_version)`.pipe(
          Effect.catchTag("SqlError", writeFailed(`Could not save the snapshot of "${streamId}"`))
        )
      }).pipe(Effect.withSpan("SnapshotStore.save", { attributes: { streamId } }))

    const load = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const [row] = yield* sql<{
          readonly stream_version: string
          readonly first_version: string
          readonly epoch: string
          readonly schema_version: number
          readonly state: unknown
          readonly saved_at: Date
        }>`SELECT stream_version::text AS stream_version, first_version::text AS first_version, epoch::text AS epoch,
             schema_version, state, saved_at
           FROM ${snapshots} WHERE stream_id = ${streamId}`.pipe(
          Effect.catchTag("SqlError", storeError(`Could not load the snapshot of "${streamId}"`))
        )
        return row === undefined ? Option.none() : Option.some<Snapshot>({
          streamId,
          version: Number(row.stream_version),
          firstVersion: Number(row.first_version),
          epoch: Number(row.epoch),
          schemaVersion: row.schema_version,
          state: row.state,
          savedAt: row.saved_at
        })
      }).pipe(Effect.withSpan("SnapshotStore.load", { attributes: { streamId } }))

    const remove = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        yield* sql`DELETE FROM ${snapshots} WHERE stream_id = ${streamId}`.pipe(
          Effect.catchTag("SqlError", writeFailed(`Could not delete the snapshot of "${streamId}"`))
        )
      }).pipe(Effect.withSpan("SnapshotStore.delete", { attributes: { streamId } }))

    return SnapshotStore.of({ save, load, delete: remove })
  })

/**
 * The snapshot store as a layer over the `SqlClient` in context, migrating
 * first unless `migrate: false` (the same migrations as the event store's, so
 * either layer may run them first).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: PostgresSnapshotStoreOptions
): Layer.Layer<SnapshotStore, InvalidInput | SqlError | Migrator.MigrationError, SqlClient.SqlClient> =>
  Layer.effect(
    SnapshotStore,
    migrateFirst(options, make(options))
  )
