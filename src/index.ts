/**
 * effect-event-store: an event store for event-sourced systems on Effect.
 *
 * The core: the `EventStore` service, its models and its typed errors.
 * Backends live in their own entry points: `effect-event-store/postgres`,
 * `effect-event-store/pglite` and `effect-event-store/memory`.
 *
 * @since 0.1.0
 */
export * from "./CheckpointStore.js"
export * from "./Errors.js"
export * from "./Generations.js"
export * as EventData from "./EventData.js"
export * from "./EventStore.js"
export * as ExpectedVersion from "./ExpectedVersion.js"
export * as Projection from "./Projection.js"
export * as ProjectionSupervisor from "./ProjectionSupervisor.js"
export type { RecordedEvent, StreamInfo } from "./RecordedEvent.js"
export * as RunnerLock from "./RunnerLock.js"
export * as StreamId from "./StreamId.js"
export * as Aggregate from "./aggregate/Aggregate.js"
export * as CommandHandler from "./aggregate/CommandHandler.js"
export * as Correlation from "./aggregate/Correlation.js"
export * as EventRegistry from "./events/EventRegistry.js"
export * as EventType from "./events/EventType.js"
export * as TypedEventStore from "./events/TypedEventStore.js"
export {
  isCurrent,
  type LoadedSnapshot,
  loadSnapshot,
  type Snapshot,
  type SnapshotBasis,
  type SnapshotSchema,
  SnapshotStore,
  type SnapshotToSave,
  saveSnapshot
} from "./SnapshotStore.js"
