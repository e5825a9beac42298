/**
 * The PostgreSQL backend: `layer` over any `pg`-dialect `SqlClient`, and
 * `layerConfig` that connects with `@effect/sql-pg` from `DATABASE_URL`.
 *
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.js"
export * as PostgresEventStore from "./PostgresEventStore.js"
export * as PostgresCheckpointStore from "./PostgresCheckpointStore.js"
export * as PostgresRunnerLock from "./PostgresRunnerLock.js"
export * as PostgresGenerations from "./PostgresGenerations.js"
export * as PostgresSnapshotStore from "./PostgresSnapshotStore.js"
