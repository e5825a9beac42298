/**
 * The embedded backend: PGlite (PostgreSQL in WebAssembly) behind an
 * `@effect/sql` client, running the PostgreSQL backend's SQL unchanged.
 *
 * @since 0.1.0
 */
export * as PgliteClient from "./PgliteClient.js"
export * as PgliteEventStore from "./PgliteEventStore.js"
