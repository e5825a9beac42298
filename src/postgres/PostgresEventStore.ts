/**
 * The event store on PostgreSQL (14 or later), through any `@effect/sql`
 * client with the `pg` dialect: `@effect/sql-pg` for a server, or the embedded
 * PGlite client of `effect-event-store/pglite`.
 *
 * @since 0.1.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidInput, StoreError } from "../Errors.js"
import { EventStore } from "../EventStore.js"
import * as Core from "../internal/core/eventStore.js"
import * as PostgresDriver from "../internal/postgres/driver.js"
import type { WakeupOptions } from "../internal/postgres/wakeups.js"
import * as Validation from "../internal/validation/index.js"
import * as Migrations from "./Migrations.js"

export type {
  /**
   * How live subscriptions notice new events.
   *
   * @since 0.1.0
   * @category models
   */
  WakeupOptions
}

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
  readonly subscriptions?: WakeupOptions | undefined
  /**
   * Group commit (default true): appends made outside a transaction while
   * another batch of them is in flight are sent together, in one call and one
   * commit, each with its own check and outcome; a lone append goes at once.
   * `false` sends every append alone. See docs/group-commit.md.
   */
  readonly groupCommit?: boolean | undefined
}

/**
 * Builds the store on the `SqlClient` in context. Expects the tables to exist
 * (see `Migrations.migrate`, which `layer` runs by default).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: PostgresEventStoreOptions
): Effect.Effect<EventStore, InvalidInput | StoreError | SqlError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const schema = yield* Migrations.schemaOf(options)
    const maxEventBytes = yield* Validation.positiveInt(
      "maxEventBytes",
      options?.maxEventBytes,
      Validation.defaultLimits.maxEventBytes
    )
    const driver = yield* PostgresDriver.make(schema, options?.subscriptions, {
      groupCommit: options?.groupCommit !== false
    })
    return Core.make(driver, { limits: { maxEventBytes } })
  })

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
  Layer.scoped(EventStore, Migrations.migrateFirst(options, make(options)))
