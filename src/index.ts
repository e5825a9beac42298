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

/**
 * Where subscribers and projections keep their place in the global log.
 *
 * @since 0.1.0
 */
export * as CheckpointStore from "./CheckpointStore.js"

/**
 * The typed failures of the store.
 *
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"

/**
 * What a writer hands to `append`.
 *
 * @since 0.1.0
 */
export * as EventData from "./EventData.js"

/**
 * The event store service: append-only streams with optimistic concurrency and one global ordered log.
 *
 * @since 0.1.0
 */
export * as EventStore from "./EventStore.js"

/**
 * What a writer believes about a stream before it appends.
 *
 * @since 0.1.0
 */
export * as ExpectedVersion from "./ExpectedVersion.js"

/**
 * Generations of a projection's read model tables, for rebuilds beside the live model.
 *
 * @since 0.1.0
 */
export * as Generations from "./Generations.js"

/**
 * Projections: the read side, a handler per event run as a live subscription with checkpoints.
 *
 * @since 0.1.0
 */
export * as Projection from "./Projection.js"

/**
 * An application's projections, started together, with a readiness check.
 *
 * @since 0.1.0
 */
export * as ProjectionSupervisor from "./ProjectionSupervisor.js"

/**
 * A stored event, with its stream version and its global position; a stream's summary.
 *
 * @since 0.1.0
 */
export * as RecordedEvent from "./RecordedEvent.js"

/**
 * At most one active runner per projection.
 *
 * @since 0.1.0
 */
export * as RunnerLock from "./RunnerLock.js"

/**
 * Snapshots of aggregate state, used only while the stream still shows what they summarise.
 *
 * @since 0.1.0
 */
export * as SnapshotStore from "./SnapshotStore.js"

/**
 * Stream ids and their categories.
 *
 * @since 0.1.0
 */
export * as StreamId from "./StreamId.js"

/**
 * An aggregate as a decider: an initial state, `evolve` and `decide`.
 *
 * @since 0.1.0
 */
export * as Aggregate from "./aggregate/Aggregate.js"

/**
 * Runs commands against an aggregate stored in the event store.
 *
 * @since 0.1.0
 */
export * as CommandHandler from "./aggregate/CommandHandler.js"

/**
 * Correlation and causation ids, carried into the metadata of the events a piece of work produces.
 *
 * @since 0.1.0
 */
export * as Correlation from "./aggregate/Correlation.js"

/**
 * A set of event types: where stored events become typed events and back.
 *
 * @since 0.1.0
 */
export * as EventRegistry from "./events/EventRegistry.js"

/**
 * Declaring an event type: its name, its current schema and its upcasters.
 *
 * @since 0.1.0
 */
export * as EventType from "./events/EventType.js"

/**
 * A typed view of the `EventStore` for the events of one registry.
 *
 * @since 0.1.0
 */
export * as TypedEventStore from "./events/TypedEventStore.js"
