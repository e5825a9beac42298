/**
 * The store's tables, created and upgraded by `@effect/sql`'s migrator from
 * the plain SQL files in `migrations/` (compiled into the library, so a
 * bundled application needs no files). Every SQL layer runs them on start
 * unless `migrate: false`; run them yourself with `migrate`, and see where a
 * schema stands with `status`.
 *
 * @since 0.1.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Effect from "effect/Effect"
import * as internal from "../internal/postgres/migrator.js"

/**
 * A migration `schema` has run, with the time it ran.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppliedMigration extends internal.AppliedMigration {}

/**
 * A migration of this version of the library that `schema` has not run yet.
 *
 * @since 0.1.0
 * @category models
 */
export interface PendingMigration extends internal.PendingMigration {}

/**
 * Where a schema stands: the migrations it has run, in order, and those this
 * version of the library would run next.
 *
 * @since 0.1.0
 * @category models
 */
export interface MigrationStatus {
  readonly applied: ReadonlyArray<AppliedMigration>
  readonly pending: ReadonlyArray<PendingMigration>
}

/**
 * Creates or upgrades the store's tables in `schema` and returns the
 * migrations it ran. Safe when several processes start at once: they queue on
 * an advisory lock, and the later ones find nothing left to do. On a hot
 * standby it fails with a `MigrationError` whose cause is `HotStandby`,
 * instead of at the first write.
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate: (
  schema: string
) => Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = internal.migrate

/**
 * The applied and pending migrations of `schema`, read without writing or
 * locking anything (so also on a hot standby). On a schema that does not
 * exist yet, every migration is pending.
 *
 * @since 0.1.0
 * @category migrations
 */
export const status: (schema: string) => Effect.Effect<MigrationStatus, SqlError, SqlClient.SqlClient> = internal.status
