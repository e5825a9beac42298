/**
 * effect-event-store: an event store for event-sourced systems on Effect.
 *
 * The core: the `EventStore` service, its models and its typed errors, every
 * module under its own name, as Effect's packages export theirs
 * (`EventStore.EventStore` is the service's tag, as `SqlClient.SqlClient` is).
 * The store's shared errors are in `Errors` (`Errors.ConcurrencyError`, …); an
 * error that belongs to one service is in that service's module
 * (`CheckpointStore.CheckpointConflict`, `RunnerLock.LockLost`,
 * `Projection.ProjectionFailed`, …). Backends live in their own entry points:
 * `effect-event-store/postgres`, `effect-event-store/pglite` and
 * `effect-event-store/memory`.
 *
 * @since 0.1.0
 */
export * as CheckpointStore from "./CheckpointStore.js"
export * as Errors from "./Errors.js"
export * as EventData from "./EventData.js"
export * as EventStore from "./EventStore.js"
export * as ExpectedVersion from "./ExpectedVersion.js"
export * as Generations from "./Generations.js"
export * as Projection from "./Projection.js"
export * as ProjectionSupervisor from "./ProjectionSupervisor.js"
export * as RecordedEvent from "./RecordedEvent.js"
export * as RunnerLock from "./RunnerLock.js"
export * as SnapshotStore from "./SnapshotStore.js"
export * as StreamId from "./StreamId.js"
export * as Aggregate from "./aggregate/Aggregate.js"
export * as CommandHandler from "./aggregate/CommandHandler.js"
export * as Correlation from "./aggregate/Correlation.js"
export * as EventRegistry from "./events/EventRegistry.js"
export * as EventType from "./events/EventType.js"
export * as TypedEventStore from "./events/TypedEventStore.js"
