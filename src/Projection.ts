/**
 * Projections: the read side, declared as a handler per event, per batch or
 * as a `Stream` pipeline, and run as a live subscription with checkpoints.
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import type * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Subscribable from "effect/Subscribable"
import type { CheckpointStore, FailedEvent } from "./CheckpointStore.js"
import { type EventDecodeError, InvalidInput, type StoreError } from "./Errors.js"
import * as EventRegistry from "./events/EventRegistry.js"
import type * as EventType from "./events/EventType.js"
import type { EventFilter, EventStore } from "./EventStore.js"
import { Generations } from "./Generations.js"
import * as AwaitPosition from "./internal/projection/awaitPosition.js"
import * as Failures from "./internal/projection/failures.js"
import * as Runner from "./internal/projection/runner.js"
import * as Status from "./internal/projection/status.js"
import type { RecordedEvent } from "./RecordedEvent.js"
import type * as RunnerLock from "./RunnerLock.js"

/**
 * What happens when the handler fails on an event: retry with `retry`; if it
 * still fails, `"stop"` the projection with a `ProjectionFailed` that names the
 * event (until the event is skipped or parked at run time, see `skip` and
 * `park`), or `"park"` the event (record it with the `CheckpointStore`, see
 * `parked`) and go on.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailurePolicy {
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  readonly then: "stop" | "park"
}

/**
 * The physical table of each declared read model table, for the generation a
 * runner is working on.
 *
 * @since 0.1.0
 * @category models
 */
export type Tables<T extends string> = { readonly [K in T]: string }

/**
 * What every form of projection declares besides its handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = never, R = never, T extends string = never> {
  /** Unique per store: it names the checkpoint and the runner lock. */
  readonly name: string
  /** The events the projection sees; all when absent. */
  readonly filter?: EventFilter | undefined
  /**
   * Also the events of archived streams, in their places (default false: a
   * projection follows the hot log, so a rebuild leaves archived streams out).
   */
  readonly includeArchived?: boolean | undefined
  /**
   * The read model tables the projection owns (SQL backends), by a name of
   * your choosing: `{ totals: "app.order_totals" }`. Declaring them makes
   * `rebuild` possible without downtime: each generation has its own tables
   * (`app.order_totals_g1`, `…_g2`), readers query views with the declared
   * names, and the views switch to a rebuilt generation once it has caught up.
   * Needs exactly-once delivery and the `Generations` service (which `start`
   * and `run` then require in their types).
   */
  readonly tables?: Tables<T> | undefined
  /** Creates one generation's tables (`CREATE TABLE ${sql(tables.orders)} …`); runs in the transaction that starts it. */
  readonly setup?: ((tables: Tables<T>) => Effect.Effect<void, E, R>) | undefined
  /**
   * `"exactly-once"` (default): the handler's writes and the checkpoint commit
   * in one transaction of the `CheckpointStore`, so for a SQL read model on the
   * same database nothing is applied twice or lost, wherever the process dies.
   * `"at-least-once"`: the checkpoint is saved after the handler ran; after a
   * crash the last batch may be handled again (deduplicate with `eventId`).
   */
  readonly delivery?: "exactly-once" | "at-least-once" | undefined
  /** Events per batch (and per transaction), default 100. */
  readonly batchSize?: number | undefined
  /** Default: retry 3 times with exponential backoff from 100 ms, then stop. */
  readonly onFailure?: FailurePolicy | undefined
}

/**
 * How a projection applies its events, over events of type `A`
 * (`RecordedEvent`, or the decoded events of `typed`); exactly one of:
 *
 * - `handle`: one event at a time.
 * - `handleBatch`: a whole batch at once (up to `batchSize` events, in the
 *   order of the log), so that a read model can be written with one
 *   multi-row statement per batch.
 * - `pipeline`: a `Stream` over the batch's events that gives the batch's
 *   writes (filter, map, group, `mapEffect` with concurrency, …); the
 *   pipeline runs before the batch's transaction, its writes run in it, in
 *   the order they come out of the pipeline, before the checkpoint.
 *
 * Each batch commits with its checkpoint as one transaction (exactly once),
 * whatever the form. When a batch keeps failing, its events are applied one
 * by one (a batch of one event each, with the same retries), so that the
 * failure policy stops on, or parks, the one event that fails.
 *
 * @since 0.1.0
 * @category models
 */
export type Handler<A, E = never, R = never, T extends string = never> =
  | {
    /**
     * Applies one event. On the SQL backends, its SQL joins the batch's
     * transaction. `tables` maps each declared table to the one to write.
     */
    readonly handle: (event: A, tables: Tables<T>) => Effect.Effect<void, E, R>
    readonly handleBatch?: undefined
    readonly pipeline?: undefined
  }
  | {
    readonly handle?: undefined
    /**
     * Applies the events of a batch, in the order of the log. On the SQL
     * backends, its SQL joins the batch's transaction.
     */
    readonly handleBatch: (events: Arr.NonEmptyReadonlyArray<A>, tables: Tables<T>) => Effect.Effect<void, E, R>
    readonly pipeline?: undefined
  }
  | {
    readonly handle?: undefined
    readonly handleBatch?: undefined
    /**
     * Turns the events of a batch into the batch's writes. The stream runs
     * outside the transaction (its lookups can use the whole pool); each
     * write it gives runs in the batch's transaction, in the order given,
     * then the checkpoint. Windows, groups and buffers end with the batch.
     */
    readonly pipeline: (
      events: Stream.Stream<A>,
      tables: Tables<T>
    ) => Stream.Stream<Effect.Effect<unknown, E, R>, E, R>
  }

/**
 * A projection: its options and one of the three forms of handler.
 *
 * @since 0.1.0
 * @category models
 */
export type Projection<E = never, R = never, T extends string = never> =
  & Options<E, R, T>
  & Handler<RecordedEvent, E, R, T>

/**
 * What a projection with tables `T` needs besides its handler's requirements:
 * the read model `Generations` when it declares tables, nothing otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export type TablesRequirement<T extends string> = [T] extends [never] ? never : Generations

/**
 * What running a projection with tables `T` needs besides its handler's
 * requirements: the `EventStore`, the `CheckpointStore`, a `RunnerLock`, and
 * the read model `Generations` when it declares tables.
 *
 * @since 0.1.0
 * @category models
 */
export type RunnerRequirements<T extends string> =
  | EventStore
  | CheckpointStore
  | RunnerLock.RunnerLock
  | TablesRequirement<T>

/**
 * Declares a projection (the identity, for type inference).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never, T extends string = never>(
  projection: Projection<E, R, T>
): Projection<E, R, T> => projection

/**
 * Declares a projection over the events of a registry: the handler (of any
 * form) gets each event decoded to its current shape, through the same
 * upcasting as every other reader. Only the registry's event types are read
 * (unless `filter` says otherwise); an event that does not decode is a
 * handler failure, so the failure policy (stop or park) names it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const typed = <E extends EventType.Event, Err = never, R = never, T extends string = never>(
  registry: EventRegistry.EventRegistry<E>,
  projection: Options<Err, R, T> & Handler<EventRegistry.Recorded<E>, Err, R, T>
): Projection<Err | EventDecodeError, R, T> => {
  const options = {
    ...projection,
    filter: { ...projection.filter, eventTypes: projection.filter?.eventTypes ?? registry.names }
  }
  const decodeAll = (events: ReadonlyArray<RecordedEvent>) =>
    Effect.map(
      Effect.forEach(events, (event) => EventRegistry.decode(registry, event, "skip")),
      (decoded) => Arr.getSomes(decoded)
    )
  if (projection.handle !== undefined) {
    const { handle } = projection
    return {
      ...options,
      handleBatch: undefined,
      pipeline: undefined,
      handle: (event, tables) =>
        Effect.flatMap(
          EventRegistry.decode(registry, event, "skip"),
          Option.match({ onNone: () => Effect.void, onSome: (decoded) => handle(decoded, tables) })
        )
    }
  }
  if (projection.handleBatch !== undefined) {
    const { handleBatch } = projection
    return {
      ...options,
      handle: undefined,
      pipeline: undefined,
      handleBatch: (events, tables) =>
        Effect.flatMap(
          decodeAll(events),
          (decoded) => Arr.isNonEmptyReadonlyArray(decoded) ? handleBatch(decoded, tables) : Effect.void
        )
    }
  }
  const { pipeline } = projection
  // Decoded up front, so that an event that does not decode fails the batch
  // (and then, applied alone, names itself) rather than ending the stream.
  return {
    ...options,
    handle: undefined,
    handleBatch: undefined,
    pipeline: (events, tables) =>
      Stream.unwrap(Effect.map(
        Effect.flatMap(Stream.runCollect(events), (chunk) => decodeAll(Chunk.toReadonlyArray(chunk))),
        (decoded) => pipeline(Stream.fromIterable(decoded), tables)
      ))
  }
}

/**
 * The handler kept failing on an event and the policy says stop.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProjectionFailed extends Schema.TaggedError<ProjectionFailed>()("ProjectionFailed", {
  projection: Schema.String,
  position: Schema.BigIntFromSelf,
  eventId: Schema.String,
  streamId: Schema.String,
  eventType: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `Projection "${this.projection}" failed on ${this.eventType} ${this.eventId} (stream "${this.streamId}", position ${this.position}): ${this.reason}`
  }
}

/**
 * A projection is not stopped on an event (or not on the one at `position`):
 * there is nothing to skip or park.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProjectionNotStopped extends Schema.TaggedError<ProjectionNotStopped>()("ProjectionNotStopped", {
  projection: Schema.String,
  position: Schema.optional(Schema.BigIntFromSelf)
}) {
  override get message(): string {
    const event = this.position === undefined ? "an event" : `the event at position ${this.position}`
    return `Projection "${this.projection}" is not stopped on ${event}`
  }
}

/**
 * `awaitPosition` gave up: the projection had not passed the position within
 * the timeout. `reached` is the checkpoint it had when the wait ended.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionWaitTimeout extends Schema.TaggedError<ProjectionWaitTimeout>()("ProjectionWaitTimeout", {
  projection: Schema.String,
  position: Schema.BigIntFromSelf,
  reached: Schema.BigIntFromSelf,
  timeout: Schema.DurationFromSelf
}) {
  override get message(): string {
    return `Projection "${this.projection}" had not reached position ${this.position} after ${
      Duration.format(this.timeout)
    } (it is at ${this.reached})`
  }
}

/**
 * What ends a runner: a handler that kept failing (`ProjectionFailed`; the
 * runner waits for the event to be skipped or parked), invalid options
 * (`InvalidInput`), or a runner lock that cannot work where it runs
 * (`LockUnsupported`). A defect ends it too, as a defect.
 *
 * @since 0.1.0
 * @category models
 */
export type RunnerError = ProjectionFailed | InvalidInput | RunnerLock.LockUnsupported

/**
 * What a runner is doing. `Failed` holds the cause that stopped it: a
 * `ProjectionFailed` (until its event is skipped or parked, see `skip`), an
 * invalid option, an unusable lock, or a defect.
 *
 * @since 0.1.0
 * @category models
 */
export type RunnerState =
  | { readonly _tag: "Standby" }
  | { readonly _tag: "Running" }
  | { readonly _tag: "Restarting"; readonly reason: string }
  | { readonly _tag: "Failed"; readonly reason: string; readonly cause: Cause.Cause<RunnerError> }

/**
 * Where a projection is, as `status` reports it. A schema, so that a health
 * endpoint can encode it to JSON (`Schema.encode(ProjectionStatus)`).
 *
 * @since 0.1.0
 * @category models
 */
export const ProjectionStatus = Schema.Struct({
  name: Schema.String,
  /**
   * The runner's state; `"live"` when it is running and nothing is left to
   * apply. From another process (`status(projection)`), `"failed"` when the
   * projection stopped on an event, else `"live"` or `"catching-up"`.
   */
  state: Schema.Literal("standby", "catching-up", "live", "restarting", "failed"),
  /** The last position applied (0 before the first). */
  position: Schema.BigInt,
  /** The head of the global log. */
  head: Schema.BigInt,
  /**
   * How far behind: from the first event not yet applied to the head (an upper
   * bound on the events still to apply; 0 when there are none), and the age of
   * that event (0 when there is none).
   */
  lag: Schema.Struct({ positions: Schema.BigInt, millis: Schema.Number }),
  /** Since when the runner is in its state (a runner's status only). */
  since: Schema.optional(Schema.Date),
  /** Why the runner failed or restarts, or why the projection stopped. */
  error: Schema.optional(Schema.String),
  /** The event the projection stopped on, until it is skipped or parked. */
  failure: Schema.optional(Schema.Struct({
    position: Schema.BigInt,
    eventId: Schema.String,
    streamId: Schema.String,
    eventType: Schema.String,
    error: Schema.String,
    failedAt: Schema.Date
  })),
  /** The read model generation readers see, for projections with tables. */
  generation: Schema.optional(Schema.Number),
  /** A rebuild in progress: the generation being built and how far it has got. */
  rebuild: Schema.optional(Schema.Struct({ generation: Schema.Number, position: Schema.BigInt }))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectionStatus extends Schema.Schema.Type<typeof ProjectionStatus> {}

/**
 * Which event to skip or park: the one the projection stopped on, and only if
 * it is at `position` when given (so that a command typed after reading a
 * status never skips another event).
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolveOptions {
  readonly position?: bigint | undefined
}

/**
 * A projection started with `start`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectionRunner {
  readonly name: string
  /** The runner's state and its changes, read-only. */
  readonly state: Subscribable.Subscribable<RunnerState>
  readonly status: Effect.Effect<ProjectionStatus, InvalidInput | StoreError>
  /**
   * Waits until the runner fails (or is interrupted) and fails with what
   * stopped it; at once if it has failed already.
   */
  readonly await: Effect.Effect<never, RunnerError>
  /** Skips the event this projection stopped on, and wakes the runner (see `skip`). */
  readonly skip: (
    options?: ResolveOptions
  ) => Effect.Effect<FailedEvent, ProjectionNotStopped | InvalidInput | StoreError>
  /** Parks the event this projection stopped on, and wakes the runner (see `park`). */
  readonly park: (
    options?: ResolveOptions
  ) => Effect.Effect<FailedEvent, ProjectionNotStopped | InvalidInput | StoreError>
}

/**
 * The checkpoint name of a projection's generation: the projection's name for
 * projections without tables, `name@generation` for those with tables.
 *
 * @since 0.1.0
 * @category status
 */
export const checkpointName = (name: string, generation: number | undefined): string =>
  generation === undefined ? name : `${name}@${generation}`

/**
 * The event `name` stopped on, if it is still stopped there (its checkpoint
 * has not moved past it). Works from any process.
 *
 * @since 0.1.0
 * @category failures
 */
export const failure = (
  name: string
): Effect.Effect<Option.Option<FailedEvent>, InvalidInput | StoreError, CheckpointStore> => Failures.failure(name)

/**
 * Skips the event a stopped projection failed on (its failure policy said
 * `"stop"`): moves its checkpoint past it, so its runner, here or in any other
 * process, resumes with the next event (within a second; at once through the
 * runner's own `skip`). Works from any process with the projection's
 * `CheckpointStore`. Fails with `ProjectionNotStopped` when the projection is
 * not stopped on an event (or not on the one at `position`).
 *
 * @since 0.1.0
 * @category failures
 */
export const skip = (
  name: string,
  options?: ResolveOptions
): Effect.Effect<FailedEvent, ProjectionNotStopped | InvalidInput | StoreError, CheckpointStore> =>
  Failures.resolve("skip", name, options)

/**
 * Like `skip`, and records the event with its error among the projection's
 * parked events (`CheckpointStore.parked`), in the same transaction.
 *
 * @since 0.1.0
 * @category failures
 */
export const park = (
  name: string,
  options?: ResolveOptions
): Effect.Effect<FailedEvent, ProjectionNotStopped | InvalidInput | StoreError, CheckpointStore> =>
  Failures.resolve("park", name, options)

/**
 * The position a projection has applied up to, the head, the lag, a rebuild
 * in progress, and the event it stopped on, if any. Works from any process;
 * a runner's own `status` adds its state. A projection with tables needs the
 * `Generations` service, which knows the generation readers see.
 *
 * @since 0.1.0
 * @category status
 */
export const status = <E, R, T extends string>(
  projection: Projection<E, R, T>
): Effect.Effect<ProjectionStatus, InvalidInput | StoreError, EventStore | CheckpointStore | TablesRequirement<T>> =>
  Status.statusOf(projection, Option.none())

/**
 * Waits until `projection` has applied everything it takes up to `position`
 * of the log: read your own writes on an eventually consistent read model.
 * Pass the position an append returned (`AppendResult.positions`, the last
 * one), then query the read model. A filtered projection has passed a
 * position once nothing for it lies between its checkpoint and that position.
 * Works from any process with the projection's stores (it polls the
 * checkpoint: soon at first, then every 100 ms); fails with
 * `ProjectionWaitTimeout` after `timeout` (default 5 seconds). A projection
 * with tables needs `Generations`, to follow the generation readers see.
 *
 * @example
 * import { Effect } from "effect"
 * import { EventStore, Projection } from "effect-event-store"
 * import { MemoryEventStore } from "effect-event-store/memory"
 *
 * const counted = Projection.make({ name: "counted", handle: () => Effect.void })
 *
 * const program = Effect.gen(function*() {
 *   yield* Projection.start(counted)
 *   const store = yield* EventStore.EventStore
 *   const { positions } = yield* store.append("Order-1", [{ eventType: "OrderPlaced", data: {} }])
 *   yield* Projection.awaitPosition(counted, positions[positions.length - 1] ?? 0n, { timeout: "30 seconds" })
 *   return (yield* Projection.status(counted)).position
 * })
 *
 * Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MemoryEventStore.layerAll()))).then((position) =>
 *   assert.strictEqual(position, 1n)
 * )
 *
 * @since 0.2.0
 * @category status
 */
export const awaitPosition = <E, R, T extends string>(
  projection: Projection<E, R, T>,
  position: bigint,
  options?: { readonly timeout?: Duration.DurationInput | undefined }
): Effect.Effect<
  void,
  ProjectionWaitTimeout | InvalidInput | StoreError,
  EventStore | CheckpointStore | TablesRequirement<T>
> => AwaitPosition.awaitPosition(projection, position, options)

/**
 * Asks for a rebuild of a projection with tables: the active runner builds a
 * new generation from the start of the log beside the one readers see, and
 * switches the views to it once it has caught up. Returns the generation being
 * built; `status` shows its progress.
 *
 * @since 0.1.0
 * @category running
 */
export const rebuild = <E, R, T extends string>(
  projection: Projection<E, R, T>
): Effect.Effect<number, InvalidInput | StoreError, Generations> =>
  projection.tables === undefined
    ? Effect.fail(
      new InvalidInput({ field: "tables", reason: `projection "${projection.name}" declares no tables to rebuild` })
    )
    : Effect.flatMap(Generations, (generations) => generations.requestRebuild(projection.name))

/**
 * Starts a projection in the background of the scope: it waits for the runner
 * lock (one active runner per projection, through the `RunnerLock` in
 * context), then catches up from its checkpoint and follows the log. For a
 * projection with tables (which needs the `Generations` service) it also
 * builds a requested rebuild and switches to it.
 *
 * What the database does is worth starting over for: store errors restart it
 * from its checkpoint with a backoff (state `Restarting`), a lost lock or a
 * checkpoint moved by another runner puts it on standby. Everything else stops
 * it, shown in its state and status and logged at error level: a handler that
 * keeps failing (`ProjectionFailed`: the runner keeps its lock and resumes
 * once the event is skipped or parked, from this process or any other),
 * invalid options, an unusable lock, and defects.
 *
 * @since 0.1.0
 * @category running
 */
export const start = <E, R, T extends string>(
  projection: Projection<E, R, T>
): Effect.Effect<ProjectionRunner, never, RunnerRequirements<T> | Scope.Scope | R> => Runner.start(projection)

/**
 * Runs a projection until it fails (or is interrupted): with the error that
 * stopped it, a `ProjectionFailed` included (its runner then ends, and the
 * next one to start tries the event again, or goes on after it once it is
 * skipped or parked).
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E, R, T extends string>(
  projection: Projection<E, R, T>
): Effect.Effect<never, RunnerError, RunnerRequirements<T> | R> =>
  Effect.scoped(Effect.flatMap(start(projection), (runner) => runner.await))
