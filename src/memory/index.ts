/**
 * The in-memory backend, with the semantics of the PostgreSQL backend and no
 * database: `MemoryEventStore.layerAll` provides the `EventStore`, the
 * `CheckpointStore`, the `SnapshotStore` and a process-local `RunnerLock`
 * (what projections and snapshots need), `MemoryEventStore.layer` the store
 * alone; every build is fresh and empty.
 *
 * @since 0.1.0
 */

/**
 * The event store in memory, with the semantics of the PostgreSQL backend.
 *
 * @since 0.1.0
 */
export * as MemoryEventStore from "./MemoryEventStore.js"

/**
 * Checkpoints and parked events in memory.
 *
 * @since 0.1.0
 */
export * as MemoryCheckpointStore from "./MemoryCheckpointStore.js"

/**
 * The snapshot store in memory.
 *
 * @since 0.1.0
 */
export * as MemorySnapshotStore from "./MemorySnapshotStore.js"
