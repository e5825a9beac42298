/**
 * The PostgreSQL backend: `PostgresEventStore.layer` over any `pg`-dialect
 * `SqlClient`; `PostgresEventStore.layerConfig`, which connects with
 * `@effect/sql-pg` from `Config` (by default `DATABASE_URL`); and
 * `PostgresEventStore.layerAll` / `layerAllConfig`, every service of the store
 * on one server, migrated once.
 *
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.js"
export * as PostgresEventStore from "./PostgresEventStore.js"
export * as PostgresCheckpointStore from "./PostgresCheckpointStore.js"
export * as PostgresRunnerLock from "./PostgresRunnerLock.js"
export * as PostgresGenerations from "./PostgresGenerations.js"
export * as PostgresSnapshotStore from "./PostgresSnapshotStore.js"
