/**
 * Running the store's migrations: the loader over the embedded SQL, the run
 * under an advisory lock, what is applied and pending, and the "migrate, then
 * build" step of every SQL service's layer.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { HotStandby, type InvalidInput } from "../../Errors.js"
import { migrations } from "../migrations.js"
import { schemaOf } from "./schema.js"

/** The migrator's table in `schema`. */
const tableOf = (schema: string): string => `${schema}.event_store_migrations`

/**
 * Each `NNNN_name.sql` file of `migrations/` as a migration that runs the
 * file's statements unprepared (so a file may hold many statements, as it does
 * when run by hand). The SQL is compiled into the library
 * (`src/internal/migrations.ts`), so a bundled application needs no files.
 */
export const loader: Migrator.Loader = Effect.succeed(
  migrations.map(([id, name, text]): Migrator.ResolvedMigration => [
    id,
    name,
    Effect.succeed(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text).unprepared))
  ])
)

/** Creates or upgrades the store's tables in `schema` (see `Migrations.migrate`). */
export const migrate = (
  schema: string
): Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = tableOf(schema)
    return yield* sql.withTransaction(Effect.gen(function*() {
      const [lock] = yield* sql<{ readonly standby: boolean }>`
        SELECT pg_is_in_recovery() AS standby, pg_advisory_xact_lock(hashtext(${`effect-event-store/migrate/${schema}`}))`
      if (lock?.standby === true) {
        const cause = new HotStandby({ operation: "create or upgrade the store's tables" })
        return yield* new Migrator.MigrationError({ reason: "bad-state", message: cause.message, cause })
      }
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
      // The migrator probes for its table with a failing query, which would abort
      // this transaction; create it first so the probe succeeds.
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
        migration_id integer PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        name text NOT NULL
      )`
      yield* sql`SET LOCAL search_path TO ${sql(schema)}`
      return yield* Migrator.make({})({ loader, table })
    }))
  }).pipe(Effect.withSpan("EventStore.migrate", { attributes: { schema } }))

/** An applied migration, as the migrator recorded it. */
export interface AppliedMigration {
  readonly id: number
  readonly name: string
  readonly appliedAt: Date
}

/** A migration of this version of the library that `schema` has not run yet. */
export interface PendingMigration {
  readonly id: number
  readonly name: string
}

/** What `Migrations.status` reports. */
export interface MigrationStatus {
  readonly applied: ReadonlyArray<AppliedMigration>
  readonly pending: ReadonlyArray<PendingMigration>
}

/**
 * The applied and pending migrations of `schema`, read without writing or
 * locking anything: on a schema that does not exist every migration is pending.
 */
export const status = (schema: string): Effect.Effect<MigrationStatus, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = tableOf(schema)
    const [found] = yield* sql<{ readonly exists: boolean }>`SELECT to_regclass(${table}) IS NOT NULL AS exists`
    const rows = found?.exists === true
      ? yield* sql<{ readonly id: number; readonly name: string; readonly applied_at: Date | string }>`
          SELECT migration_id AS id, name, created_at AS applied_at FROM ${sql(table)} ORDER BY migration_id`
      : []
    const applied = rows.map((row): AppliedMigration => ({
      id: Number(row.id),
      name: row.name,
      appliedAt: row.applied_at instanceof Date ? row.applied_at : new Date(row.applied_at)
    }))
    const done = new Set(applied.map((migration) => migration.id))
    const pending = migrations
      .filter(([id]) => !done.has(id))
      .map(([id, name]): PendingMigration => ({ id, name }))
    return { applied, pending }
  }).pipe(Effect.withSpan("EventStore.migrationStatus", { attributes: { schema } }))

/**
 * Runs `make` after the migrations, unless `migrate: false`: what every SQL
 * service's layer does, so that whichever layer starts first creates the tables.
 */
export const migrateFirst = <A, E, R>(
  options: { readonly schema?: string | undefined; readonly migrate?: boolean | undefined } | undefined,
  make: Effect.Effect<A, E, R>
): Effect.Effect<A, E | InvalidInput | Migrator.MigrationError | SqlError, R | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    if (options?.migrate !== false) yield* migrate(yield* schemaOf(options))
    return yield* make
  })
