/**
 * The PostgreSQL backend: `PostgresEventStore.layer` over any `pg`-dialect
 * `SqlClient`; `PostgresEventStore.layerConfig`, which connects with
 * `@effect/sql-pg` from `Config` (by default `DATABASE_URL`); and
 * `PostgresEventStore.layerAll` / `layerAllConfig`, every service of the store
 * on one server, migrated once.
 *
 * @since 0.1.0
 */

/**
 * The store's tables, created and upgraded from the SQL files in `migrations/`.
 *
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.js"

/**
 * The event store on PostgreSQL, through any `@effect/sql` client with the `pg` dialect.
 *
 * @since 0.1.0
 */
export * as PostgresEventStore from "./PostgresEventStore.js"

/**
 * Checkpoints and parked events in PostgreSQL.
 *
 * @since 0.1.0
 */
export * as PostgresCheckpointStore from "./PostgresCheckpointStore.js"

/**
 * One active runner per projection across processes, on PostgreSQL.
 *
 * @since 0.1.0
 */
export * as PostgresRunnerLock from "./PostgresRunnerLock.js"

/**
 * Read model generations on PostgreSQL.
 *
 * @since 0.1.0
 */
export * as PostgresGenerations from "./PostgresGenerations.js"

/**
 * The snapshot store on PostgreSQL.
 *
 * @since 0.1.0
 */
export * as PostgresSnapshotStore from "./PostgresSnapshotStore.js"
