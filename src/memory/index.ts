/**
 * The in-memory backend: `MemoryEventStore.layer`, a fresh empty store per
 * build, with the semantics of the PostgreSQL backend and no database.
 *
 * @since 0.1.0
 */
export * as MemoryEventStore from "./MemoryEventStore.js"
export * as MemoryCheckpointStore from "./MemoryCheckpointStore.js"
export * as MemorySnapshotStore from "./MemorySnapshotStore.js"
