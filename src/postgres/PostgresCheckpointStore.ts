/**
 * Checkpoints and parked events in PostgreSQL, in the store's schema.
 *
 * @since 0.1.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { CheckpointConflict, CheckpointStore, type FailedEvent } from "../CheckpointStore.js"
import type { InvalidInput, StoreError } from "../Errors.js"
import { migrateFirst } from "../internal/postgres/migrator.js"
import { schemaOf } from "../internal/postgres/schema.js"
import * as SqlErrors from "../internal/postgres/sqlErrors.js"
import * as Transaction from "../internal/postgres/transaction.js"
import * as Validation from "../internal/validation/index.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresCheckpointStoreOptions {
  /** The schema of the event store (default `event_store`). */
  readonly schema?: string | undefined
  /** Create or upgrade the tables when the layer starts (default true). */
  readonly migrate?: boolean | undefined
}

const { storeError, writeFailed } = SqlErrors

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: PostgresCheckpointStoreOptions
): Effect.Effect<CheckpointStore, InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* schemaOf(options)
    const checkpoints = sql(`${schema}.checkpoints`)
    const parkedEvents = sql(`${schema}.parked_events`)
    const failures = sql(`${schema}.projection_failures`)

    // Every name is checked before it reaches a statement.
    const load = (name: string) =>
      sql<{ readonly position: string }>`
        SELECT position::text AS position FROM ${checkpoints} WHERE name = ${name}`.pipe(
        Effect.catchTag("SqlError", storeError(`Could not load checkpoint "${name}"`)),
        Effect.map(([row]) => row === undefined ? Option.none() : Option.some(BigInt(row.position))),
        Validation.withName("name", name),
        Effect.withSpan("CheckpointStore.load", { attributes: { name } })
      )

    const save = (name: string, position: bigint, saveOptions?: { readonly expected?: bigint | undefined }) =>
      Effect.gen(function*() {
        const expected = saveOptions?.expected
        if (expected === undefined) {
          yield* sql`INSERT INTO ${checkpoints} (name, position) VALUES (${name}, ${position.toString()})
            ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = statement_timestamp()`
          return
        }
        // Compare and set in one statement: the row lock makes a racing runner
        // wait and then see the moved checkpoint.
        const rows = expected === 0n
          ? yield* sql<{ readonly position: string }>`
              INSERT INTO ${checkpoints} (name, position) VALUES (${name}, ${position.toString()})
              ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = statement_timestamp()
                WHERE ${checkpoints}.position = 0
              RETURNING position::text AS position`
          : yield* sql<{ readonly position: string }>`
              UPDATE ${checkpoints} SET position = ${position.toString()}, updated_at = statement_timestamp()
              WHERE name = ${name} AND position = ${expected.toString()}
              RETURNING position::text AS position`
        if (rows.length === 0) {
          const [current] = yield* sql<{ readonly position: string }>`
            SELECT position::text AS position FROM ${checkpoints} WHERE name = ${name}`
          return yield* new CheckpointConflict({ name, expected, actual: BigInt(current?.position ?? "0") })
        }
      }).pipe(
        Effect.catchTag("SqlError", writeFailed(`Could not save checkpoint "${name}"`)),
        Validation.withName("name", name),
        Effect.withSpan("CheckpointStore.save", { attributes: { name, position: position.toString() } })
      )

    const lock = (name: string, expected: bigint) =>
      Effect.gen(function*() {
        const select = sql<{ readonly position: string }>`
          SELECT position::text AS position FROM ${checkpoints} WHERE name = ${name} FOR UPDATE`
        let [row] = yield* select
        if (row === undefined) {
          // First use: create the row so that there is something to lock.
          yield* sql`INSERT INTO ${checkpoints} (name, position) VALUES (${name}, 0) ON CONFLICT (name) DO NOTHING`
          ;[row] = yield* select
        }
        const actual = BigInt(row?.position ?? "0")
        if (actual !== expected) return yield* new CheckpointConflict({ name, expected, actual })
      }).pipe(
        Effect.catchTag("SqlError", storeError(`Could not lock checkpoint "${name}"`)),
        Validation.withName("name", name),
        Effect.withSpan("CheckpointStore.lock", { attributes: { name } })
      )

    const park = (
      name: string,
      event: {
        readonly position: bigint
        readonly eventId: string
        readonly streamId: string
        readonly eventType: string
      },
      error: string
    ) =>
      sql`INSERT INTO ${parkedEvents} (projection, position, event_id, stream_id, event_type, error)
          VALUES (${name}, ${event.position.toString()}, ${event.eventId}, ${event.streamId}, ${event.eventType}, ${error})
          ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error, parked_at = statement_timestamp()`
        .pipe(
          Effect.asVoid,
          Effect.catchTag("SqlError", writeFailed(`Could not park event ${event.eventId} of "${name}"`)),
          Validation.withName("name", name),
          Effect.withSpan("CheckpointStore.park", { attributes: { name } })
        )

    const parked = (name: string) =>
      sql<{
        readonly projection: string
        readonly position: string
        readonly event_id: string
        readonly stream_id: string
        readonly event_type: string
        readonly error: string
        readonly parked_at: Date
      }>`SELECT projection, position::text AS position, event_id::text AS event_id, stream_id, event_type, error, parked_at
         FROM ${parkedEvents} p WHERE p.projection = ${name} ORDER BY p.position`.pipe(
        Effect.map((rows) =>
          rows.map((row) => ({
            projection: row.projection,
            position: BigInt(row.position),
            eventId: row.event_id,
            streamId: row.stream_id,
            eventType: row.event_type,
            error: row.error,
            parkedAt: row.parked_at
          }))
        ),
        Effect.catchTag("SqlError", storeError(`Could not list the parked events of "${name}"`)),
        Validation.withName("name", name)
      )

    const unpark = (name: string, position: bigint) =>
      sql`DELETE FROM ${parkedEvents} WHERE projection = ${name} AND position = ${position.toString()}`.pipe(
        Effect.asVoid,
        Effect.catchTag("SqlError", writeFailed(`Could not unpark event at ${position} of "${name}"`)),
        Validation.withName("name", name)
      )

    const recordFailure = (failure: Omit<FailedEvent, "failedAt">) =>
      sql`INSERT INTO ${failures} (projection, checkpoint, after, position, event_id, stream_id, event_type, error)
          VALUES (${failure.projection}, ${failure.checkpoint}, ${failure.after.toString()}, ${failure.position.toString()},
            ${failure.eventId}, ${failure.streamId}, ${failure.eventType}, ${failure.error})
          ON CONFLICT (projection) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, after = EXCLUDED.after,
            position = EXCLUDED.position, event_id = EXCLUDED.event_id, stream_id = EXCLUDED.stream_id,
            event_type = EXCLUDED.event_type, error = EXCLUDED.error, failed_at = statement_timestamp()`.pipe(
        Effect.asVoid,
        Effect.catchTag("SqlError", writeFailed(`Could not record the failure of "${failure.projection}"`)),
        Validation.withName("checkpoint", failure.checkpoint),
        Validation.withName("projection", failure.projection),
        Effect.withSpan("CheckpointStore.recordFailure", { attributes: { name: failure.projection } })
      )

    interface FailureRow {
      readonly projection: string
      readonly checkpoint: string
      readonly after: string
      readonly position: string
      readonly event_id: string
      readonly stream_id: string
      readonly event_type: string
      readonly error: string
      readonly failed_at: Date
    }
    const failureColumns = sql.literal(
      "projection, checkpoint, after::text AS after, position::text AS position, event_id::text AS event_id, stream_id, event_type, error, failed_at"
    )
    const fromRow = (row: FailureRow | undefined): Option.Option<FailedEvent> =>
      row === undefined ? Option.none() : Option.some({
        projection: row.projection,
        checkpoint: row.checkpoint,
        after: BigInt(row.after),
        position: BigInt(row.position),
        eventId: row.event_id,
        streamId: row.stream_id,
        eventType: row.event_type,
        error: row.error,
        failedAt: row.failed_at
      })

    const failure = (projection: string) =>
      sql<FailureRow>`SELECT ${failureColumns} FROM ${failures} WHERE projection = ${projection}`.pipe(
        Effect.map(([row]) => fromRow(row)),
        Effect.catchTag("SqlError", storeError(`Could not read the failure of "${projection}"`)),
        Validation.withName("projection", projection)
      )

    const clearFailure = (projection: string, position?: bigint | undefined) =>
      sql<FailureRow>`DELETE FROM ${failures}
          WHERE projection = ${projection} AND (${position?.toString() ?? null}::bigint IS NULL OR position = ${
        position?.toString() ?? null
      }::bigint)
          RETURNING ${failureColumns}`.pipe(
        Effect.map(([row]) => fromRow(row)),
        Effect.catchTag("SqlError", writeFailed(`Could not clear the failure of "${projection}"`)),
        Validation.withName("projection", projection)
      )

    // Only the transaction's own BEGIN / COMMIT failures become a StoreError;
    // the caller's errors (which roll it back) pass through as they are.
    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
      Transaction.withTransaction(sql, "The checkpoint transaction failed")(effect)

    return CheckpointStore.of({
      load,
      save,
      lock,
      park,
      parked,
      unpark,
      recordFailure,
      failure,
      clearFailure,
      transaction
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: PostgresCheckpointStoreOptions
): Layer.Layer<CheckpointStore, InvalidInput | SqlError | Migrator.MigrationError, SqlClient.SqlClient> =>
  Layer.effect(
    CheckpointStore,
    migrateFirst(options, make(options))
  )
