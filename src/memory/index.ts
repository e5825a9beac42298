/**
 * The in-memory backend, with the semantics of the PostgreSQL backend and no
 * database: `MemoryEventStore.layerAll` provides the `EventStore`, the
 * `CheckpointStore`, the `SnapshotStore` and a process-local `RunnerLock`
 * (what projections and snapshots need), `MemoryEventStore.layer` the store
 * alone; every build is fresh and empty.
 *
 * @since 0.1.0
 */
export * as MemoryEventStore from "./MemoryEventStore.js"
export * as MemoryCheckpointStore from "./MemoryCheckpointStore.js"
export * as MemorySnapshotStore from "./MemorySnapshotStore.js"
