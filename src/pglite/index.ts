/**
 * The embedded backend: PGlite (PostgreSQL in WebAssembly) behind an
 * `@effect/sql` client, running the PostgreSQL backend's SQL unchanged.
 *
 * @since 0.1.0
 */

/**
 * An `@effect/sql` client for embedded PostgreSQL (PGlite).
 *
 * @since 0.1.0
 */
export * as PgliteClient from "./PgliteClient.js"

/**
 * The event store on an embedded PostgreSQL (PGlite).
 *
 * @since 0.1.0
 */
export * as PgliteEventStore from "./PgliteEventStore.js"
