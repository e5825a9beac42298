/**
 * The event store on PostgreSQL (14 or later), through any `@effect/sql`
 * client with the `pg` dialect: `@effect/sql-pg` for a server, or the embedded
 * PGlite client of `effect-event-store/pglite`.
 *
 * - `layer(options)`: the `EventStore` over the `SqlClient` in context.
 * - `layerConfig(config)`: the same, connected to a server with
 *   `@effect/sql-pg`, its options read from `Config`.
 * - `layerAll(options)` / `layerAllConfig(config)`: every service of the store
 *   on one server connection pool, migrated once — the `EventStore`, the
 *   `CheckpointStore`, the `SnapshotStore`, read model `Generations`, an
 *   advisory `RunnerLock` and the `SqlClient` — as `PgliteEventStore.layer`
 *   provides them on the embedded database.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { CheckpointStore } from "../CheckpointStore.js"
import type { InvalidInput, StoreError } from "../Errors.js"
import type { EventStore } from "../EventStore.js"
import type { Generations } from "../Generations.js"
import { defaultSchema } from "../internal/postgres/schema.js"
import * as internal from "../internal/postgres/store.js"
import type { WakeupOptions } from "../internal/postgres/wakeups.js"
import type { RunnerLock } from "../RunnerLock.js"
import type { SnapshotStore } from "../SnapshotStore.js"
import * as PostgresRunnerLock from "./PostgresRunnerLock.js"

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
 * The store on a server: how to connect (`@effect/sql-pg`'s options: `url`,
 * `maxConnections`, `ssl`, `applicationName`, …) and the store's own options,
 * in one record.
 *
 * @since 0.1.0
 * @category models
 */
export interface PostgresServerOptions extends PgClient.PgClientConfig, PostgresEventStoreOptions {}

/**
 * Builds the store on the `SqlClient` in context. Expects the tables to exist
 * (see `Migrations.migrate`, which `layer` runs by default).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: PostgresEventStoreOptions
) => Effect.Effect<EventStore, InvalidInput | StoreError | SqlError, SqlClient.SqlClient | Scope.Scope> = internal.make

/**
 * The store as a layer over the `SqlClient` in context, migrating first unless
 * `migrate: false`. It fails on a hot standby, with the `HotStandby` as the
 * cause (of the `MigrationError`, or with `migrate: false` of a `StoreError`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: (
  options?: PostgresEventStoreOptions
) => Layer.Layer<EventStore, InvalidInput | StoreError | SqlError | Migrator.MigrationError, SqlClient.SqlClient> =
  internal.layer

const splitOptions = (options: PostgresServerOptions) => {
  const { maxEventBytes, migrate, schema, subscriptions, ...client } = options
  return { client, store: { maxEventBytes, migrate, schema, subscriptions } }
}

/**
 * The configuration `layerConfig` and `layerAllConfig` read when given none:
 * the server at `DATABASE_URL` (redacted), the schema `EVENT_STORE_SCHEMA`
 * (default `event_store`) and at most `DATABASE_MAX_CONNECTIONS` connections
 * (default 10).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<PostgresServerOptions> = Config.all({
  url: Config.redacted("DATABASE_URL"),
  schema: Config.string("EVENT_STORE_SCHEMA").pipe(Config.withDefault(defaultSchema)),
  maxConnections: Config.integer("DATABASE_MAX_CONNECTIONS").pipe(Config.withDefault(10))
})

/**
 * The store on a server, connected with `@effect/sql-pg` and migrated on
 * start, its options (and the connection's) read from `Config`: the
 * `EventStore`, and the `SqlClient` (and `PgClient`) beside it for your own
 * SQL, which joins the store's transactions. Without an argument it reads
 * `config` (`DATABASE_URL`, …).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<PostgresServerOptions> = config
): Layer.Layer<
  EventStore | SqlClient.SqlClient | PgClient.PgClient,
  ConfigError.ConfigError | InvalidInput | StoreError | SqlError | Migrator.MigrationError
> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), (resolved) => {
    const { client, store } = splitOptions(resolved)
    return internal.layer(store).pipe(Layer.provideMerge(PgClient.layer(client)))
  }))

/**
 * Every service `layerAll` provides: the store, checkpoints, snapshots, read
 * model generations, the runner lock, and the client they share.
 *
 * @since 0.1.0
 * @category models
 */
export type AllServices =
  | EventStore
  | CheckpointStore
  | SnapshotStore
  | Generations
  | RunnerLock
  | SqlClient.SqlClient
  | PgClient.PgClient

/**
 * Every service of the store on one server: the `EventStore`, the
 * `CheckpointStore`, the `SnapshotStore`, read model `Generations` and a
 * `RunnerLock` across processes (`PostgresRunnerLock.layerAdvisory`), all in
 * one schema, over one `@effect/sql-pg` connection pool whose `SqlClient` (and
 * `PgClient`) is provided too, so that your own SQL (read models,
 * `withTransaction`) joins the store's transactions. The migrations run once,
 * before any service starts (not at all with `migrate: false`). The server's
 * counterpart of `PgliteEventStore.layer`; behind a transaction-mode pooler,
 * compose the services with `PostgresRunnerLock.layerLease` instead.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAll = (
  options: PostgresServerOptions
): Layer.Layer<
  AllServices,
  InvalidInput | StoreError | SqlError | Migrator.MigrationError
> => {
  const { client, store } = splitOptions(options)
  return internal.layerServices(store, PostgresRunnerLock.layerAdvisory({ schema: store.schema })).pipe(
    Layer.provideMerge(PgClient.layer(client))
  )
}

/**
 * `layerAll`, with its options read from `Config` (by default `config`:
 * `DATABASE_URL`, …).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAllConfig = (
  options: Config.Config.Wrap<PostgresServerOptions> = config
): Layer.Layer<
  AllServices,
  ConfigError.ConfigError | InvalidInput | StoreError | SqlError | Migrator.MigrationError
> => Layer.unwrapEffect(Effect.map(Config.unwrap(options), layerAll))
