/**
 * The store's tables, created and upgraded by `@effect/sql`'s migrator from
 * the plain SQL files in `migrations/`.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { HotStandby, InvalidInput } from "../Errors.js"
import { migrations } from "../internal/migrations.js"

/**
 * Each `NNNN_name.sql` file of `migrations/` as a migration that runs the
 * file's statements unprepared (so a file may hold many statements, as it does
 * when run by hand). The SQL is compiled into the library
 * (`src/internal/migrations.ts`), so a bundled application needs no files.
 *
 * @since 0.1.0
 * @category loaders
 */
export const loader: Migrator.Loader = Effect.succeed(
  migrations.map(([id, name, text]): Migrator.ResolvedMigration => [
    id,
    name,
    Effect.succeed(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text).unprepared))
  ])
)

const schemaName = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * The schema the store's tables live in unless told otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSchema = "event_store"

/**
 * The schema option of every SQL service, checked, with its default.
 *
 * @since 0.1.0
 * @category validation
 */
export const schemaOf = (options: { readonly schema?: string | undefined } | undefined): Effect.Effect<string, InvalidInput> =>
  validateSchema(options?.schema ?? defaultSchema)

/**
 * A schema name the store accepts: lower case letters, digits and `_`, so that
 * it needs no quoting anywhere (also when the migrations are run by hand).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateSchema = (schema: string): Effect.Effect<string, InvalidInput> =>
  schemaName.test(schema)
    ? Effect.succeed(schema)
    : Effect.fail(new InvalidInput({ field: "schema", reason: `"${schema}" must match ${schemaName.source}` }))

/**
 * Creates or upgrades the store's tables in `schema`. Safe when several
 * processes start at once: they queue on an advisory lock, and the later ones
 * find nothing left to do. On a hot standby it fails with a `MigrationError`
 * whose cause is `HotStandby`, instead of at the first write.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (
  schema: string
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, Migrator.MigrationError | SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = `${schema}.event_store_migrations`
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

/**
 * Runs `make` after the migrations, unless `migrate: false`: what every SQL
 * service's layer does, so that whichever layer starts first creates the tables.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrateFirst = <A, E, R>(
  options: { readonly schema?: string | undefined; readonly migrate?: boolean | undefined } | undefined,
  make: Effect.Effect<A, E, R>
): Effect.Effect<A, E | InvalidInput | Migrator.MigrationError | SqlError, R | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    if (options?.migrate !== false) yield* migrate(yield* schemaOf(options))
    return yield* make
  })
