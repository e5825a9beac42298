/**
 * Projections: the read side, declared as a handler per event and run as a
 * live subscription with checkpoints.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Subscribable from "effect/Subscribable"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { CheckpointConflict, CheckpointStore, type FailedEvent } from "./CheckpointStore.js"
import { type EventDecodeError, InvalidInput, StoreError } from "./Errors.js"
import * as EventRegistry from "./events/EventRegistry.js"
import type * as EventType from "./events/EventType.js"
import { type EventFilter, EventStore } from "./EventStore.js"
import { Generations, Superseded, tableName } from "./Generations.js"
import * as SqlErrors from "./internal/postgres/sqlErrors.js"
import type { RecordedEvent } from "./RecordedEvent.js"
import * as RunnerLock from "./RunnerLock.js"

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
 * @since 0.1.0
 * @category models
 */
export interface Projection<E = never, R = never, T extends string = never> {
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
   * Applies one event. On the SQL backends, its SQL joins the batch's
   * transaction. `tables` maps each declared table to the one to write.
   */
  readonly handle: (event: RecordedEvent, tables: Tables<T>) => Effect.Effect<void, E, R>
  /**
   * The read model tables the projection owns (SQL backends), by a name of
   * your choosing: `{ totals: "app.order_totals" }`. Declaring them makes
   * `rebuild` possible without downtime: each generation has its own tables
   * (`app.order_totals_g1`, `…_g2`), readers query views with the declared
   * names, and the views switch to a rebuilt generation once it has caught up.
   * Needs exactly-once delivery and the `Generations` service.
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
 * Declares a projection (the identity, for type inference).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never, T extends string = never>(
  projection: Projection<E, R, T>
): Projection<E, R, T> => projection

/**
 * Declares a projection over the events of a registry: the handler gets each
 * event decoded to its current shape, through the same upcasting as every
 * other reader. Only the registry's event types are read (unless `filter`
 * says otherwise); an event that does not decode is a handler failure, so the
 * failure policy (stop or park) names it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const typed = <E extends EventType.Event, Err = never, R = never, T extends string = never>(
  registry: EventRegistry.EventRegistry<E>,
  projection: Omit<Projection<Err, R, T>, "handle"> & {
    readonly handle: (event: EventRegistry.Recorded<E>, tables: Tables<T>) => Effect.Effect<void, Err, R>
  }
): Projection<Err | EventDecodeError, R, T> => ({
  ...projection,
  filter: { ...projection.filter, eventTypes: projection.filter?.eventTypes ?? registry.names },
  handle: (event, tables) =>
    Effect.flatMap(
      EventRegistry.decode(registry, event, "skip"),
      Option.match({ onNone: () => Effect.void, onSome: (decoded) => projection.handle(decoded, tables) })
    )
})

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
  readonly status: Effect.Effect<ProjectionStatus, StoreError>
  /**
   * Waits until the runner fails (or is interrupted) and fails with what
   * stopped it; at once if it has failed already.
   */
  readonly await: Effect.Effect<never, RunnerError>
  /** Skips the event this projection stopped on, and wakes the runner (see `skip`). */
  readonly skip: (options?: ResolveOptions) => Effect.Effect<FailedEvent, ProjectionNotStopped | StoreError>
  /** Parks the event this projection stopped on, and wakes the runner (see `park`). */
  readonly park: (options?: ResolveOptions) => Effect.Effect<FailedEvent, ProjectionNotStopped | StoreError>
}

class HandlerFailure {
  constructor(readonly event: RecordedEvent, readonly cause: Cause.Cause<unknown>) {}
}

// The policy stopped the projection on an event: where its checkpoint stands.
class Stopped {
  constructor(readonly error: ProjectionFailed, readonly checkpoint: string, readonly after: bigint) {}
}

const defaultRetry = Schedule.exponential(Duration.millis(100)).pipe(Schedule.intersect(Schedule.recurs(3)))
const rebuildPoll = Duration.seconds(1)
// How often a stopped runner looks whether its event was skipped or parked elsewhere.
const resolvedPoll = Duration.seconds(1)
// Back off while restarts keep coming; start afresh after a minute without one.
const restartDelay = Schedule.exponential(Duration.millis(200)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(10))),
  Schedule.resetAfter(Duration.minutes(1))
)

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  return failure instanceof Error ? failure.message : String(failure)
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
export const failure = (name: string): Effect.Effect<Option.Option<FailedEvent>, StoreError, CheckpointStore> =>
  Effect.flatMap(CheckpointStore, (checkpoints) =>
    Effect.flatMap(checkpoints.failure(name), (found) =>
      Option.isNone(found)
        ? Effect.succeedNone
        : Effect.map(checkpoints.load(found.value.checkpoint), (position) =>
          Option.getOrElse(position, () => 0n) < found.value.position ? found : Option.none())))

const resolve = (action: "skip" | "park") => (name: string, options?: ResolveOptions) =>
  Effect.gen(function*() {
    const checkpoints = yield* CheckpointStore
    const notStopped = new ProjectionNotStopped({ projection: name, position: options?.position })
    // The record's removal, the park and the checkpoint's move commit together;
    // the checkpoint moves by compare-and-set from where the runner stopped, so
    // a runner that got past the event meanwhile (or a second skip) wins.
    const failed = yield* checkpoints.transaction(Effect.gen(function*() {
      const found = yield* checkpoints.clearFailure(name, options?.position)
      if (Option.isNone(found)) return yield* notStopped
      const failed = found.value
      yield* checkpoints.lock(failed.checkpoint, failed.after)
      if (action === "park") yield* checkpoints.park(name, failed, failed.error)
      yield* checkpoints.save(failed.checkpoint, failed.position, { expected: failed.after })
      return failed
    })).pipe(Effect.catchTag("CheckpointConflict", () => Effect.fail(notStopped)))
    yield* Effect.logWarning(
      `Projection "${name}": ${action === "skip" ? "skipped" : "parked"} ${failed.eventType} ${failed.eventId} at position ${failed.position}`
    ).pipe(Effect.annotateLogs({ projection: name, position: failed.position.toString() }))
    return failed
  }).pipe(Effect.withSpan(`Projection.${action}`, { attributes: { name } }))

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
export const skip: (
  name: string,
  options?: ResolveOptions
) => Effect.Effect<FailedEvent, ProjectionNotStopped | StoreError, CheckpointStore> = resolve("skip")

/**
 * Like `skip`, and records the event with its error among the projection's
 * parked events (`CheckpointStore.parked`), in the same transaction.
 *
 * @since 0.1.0
 * @category failures
 */
export const park: (
  name: string,
  options?: ResolveOptions
) => Effect.Effect<FailedEvent, ProjectionNotStopped | StoreError, CheckpointStore> = resolve("park")

const stateName = (state: RunnerState, caughtUp: boolean): ProjectionStatus["state"] => {
  switch (state._tag) {
    case "Standby":
      return "standby"
    case "Restarting":
      return "restarting"
    case "Failed":
      return "failed"
    case "Running":
      return caughtUp ? "live" : "catching-up"
  }
}

const statusOf = <E, R, T extends string>(
  projection: Projection<E, R, T>,
  runner: Option.Option<{ readonly state: RunnerState; readonly since: Date }>
): Effect.Effect<ProjectionStatus, StoreError, EventStore | CheckpointStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const checkpoints = yield* CheckpointStore
    const generations = projection.tables === undefined ? Option.none() : yield* Effect.serviceOption(Generations)
    const generation = Option.isSome(generations) ? yield* generations.value.current(projection.name) : undefined
    const load = (g: number | undefined) =>
      Effect.map(checkpoints.load(checkpointName(projection.name, g)), Option.getOrElse(() => 0n))
    const position = yield* load(generation?.active)
    const next = yield* Stream.runHead(store.readAll({
      from: position + 1n,
      limit: 1,
      filter: projection.filter,
      includeArchived: projection.includeArchived
    })).pipe(
      Effect.catchTag("InvalidInput", () => Effect.succeedNone)
    )
    // Read after the next event, so that the head is never before it.
    const head = yield* store.headPosition
    const stopped = yield* failure(projection.name)
    const now = yield* Clock.currentTimeMillis
    const local = Option.getOrUndefined(runner)
    const caughtUp = Option.isNone(next)
    const error = local?.state._tag === "Failed" || local?.state._tag === "Restarting"
      ? local.state.reason
      : Option.isSome(stopped)
      ? `stopped on ${stopped.value.eventType} ${stopped.value.eventId} at position ${stopped.value.position}: ${stopped.value.error}`
      : undefined
    return {
      name: projection.name,
      state: local !== undefined
        ? stateName(local.state, caughtUp)
        : Option.isSome(stopped)
        ? "failed"
        : caughtUp
        ? "live"
        : "catching-up",
      position,
      head,
      lag: Option.match(next, {
        onNone: () => ({ positions: 0n, millis: 0 }),
        onSome: (event) => ({
          positions: head >= event.position ? head - event.position + 1n : 1n,
          millis: Math.max(0, now - event.recordedAt.getTime())
        })
      }),
      since: local?.since,
      error,
      failure: Option.match(stopped, {
        onNone: () => undefined,
        onSome: ({ error, eventId, eventType, failedAt, position, streamId }) => ({ position, eventId, streamId, eventType, error, failedAt })
      }),
      generation: generation?.active,
      rebuild: generation?.building === undefined
        ? undefined
        : { generation: generation.building, position: yield* load(generation.building) }
    }
  })

/**
 * The position a projection has applied up to, the head, the lag, a rebuild
 * in progress, and the event it stopped on, if any. Works from any process;
 * a runner's own `status` adds its state.
 *
 * @since 0.1.0
 * @category status
 */
export const status = <E, R, T extends string>(
  projection: Projection<E, R, T>
): Effect.Effect<ProjectionStatus, StoreError, EventStore | CheckpointStore> => statusOf(projection, Option.none())

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
    ? Effect.fail(new InvalidInput({ field: "tables", reason: `projection "${projection.name}" declares no tables to rebuild` }))
    : Effect.flatMap(Generations, (generations) => generations.requestRebuild(projection.name))

/**
 * Starts a projection in the background of the scope: it waits for the runner
 * lock (one active runner per projection; the `RunnerLock` in context, or a
 * lock within this process when there is none), then catches up from its
 * checkpoint and follows the log. For a projection with tables it also builds
 * a requested rebuild and switches to it.
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
): Effect.Effect<ProjectionRunner, never, EventStore | CheckpointStore | Scope.Scope | R> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const checkpoints = yield* CheckpointStore
    const lock = Option.getOrElse(yield* Effect.serviceOption(RunnerLock.RunnerLock), () => RunnerLock.localFor(checkpoints))
    const generations = yield* Effect.serviceOption(Generations)
    const state = yield* SubscriptionRef.make<RunnerState>({ _tag: "Standby" })
    const since = yield* Ref.make(new Date(yield* Clock.currentTimeMillis))
    // The last checkpoint this runner saw, for its log lines.
    const position = yield* Ref.make(0n)
    // A skip or park through the runner's handle wakes it at once.
    const resolved = yield* Queue.sliding<void>(1)
    const { name } = projection
    const declaredTables: Tables<T> | undefined = projection.tables
    const declared: ReadonlyArray<string> = declaredTables === undefined ? [] : Object.values(declaredTables)
    const batchSize = projection.batchSize ?? 100
    const retry = projection.onFailure?.retry ?? defaultRetry
    const exactlyOnce = projection.delivery !== "at-least-once"

    const transition = (next: RunnerState) =>
      Effect.gen(function*() {
        const current = yield* SubscriptionRef.get(state)
        if (current._tag !== next._tag) yield* Ref.set(since, new Date(yield* Clock.currentTimeMillis))
        else if (current._tag === "Standby" || current._tag === "Running") return
        yield* SubscriptionRef.set(state, next)
      })

    const logged = <A, E1, R1>(effect: Effect.Effect<A, E1, R1>) =>
      Effect.flatMap(Ref.get(position), (at) => Effect.annotateLogs(effect, { projection: name, position: at.toString() }))

    const tablesOf = (generation: number | undefined): Tables<T> =>
      Object.fromEntries(
        Object.entries<string>(declaredTables ?? {}).map(([key, table]) => [key, generation === undefined ? table : tableName(table, generation)])
      ) as Tables<T>

    /** Where a batch goes: a checkpoint, the tables to write, and checks made in its transaction. */
    interface Target {
      readonly checkpoint: string
      readonly tables: Tables<T>
      readonly before: Effect.Effect<void, Superseded | StoreError>
      readonly after: (position: bigint) => Effect.Effect<unknown, StoreError>
    }
    const plainTarget: Target = { checkpoint: name, tables: tablesOf(undefined), before: Effect.void, after: () => Effect.void }

    // A handler that lost its database connection did not fail on its event:
    // the runner starts over from its checkpoint, as after any store error,
    // instead of retrying, parking or stopping on the event.
    const handleOne = (event: RecordedEvent, tables: Tables<T>): Effect.Effect<void, HandlerFailure | StoreError, R> =>
      Effect.catchAllCause(projection.handle(event, tables), (cause): Effect.Effect<never, HandlerFailure | StoreError> => {
        if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
        const lost = SqlErrors.lostConnectionIn(cause)
        return lost === undefined
          ? Effect.fail(new HandlerFailure(event, cause))
          : Effect.fail(SqlErrors.storeError(`Projection "${name}" lost its database connection at position ${event.position}`)(lost))
      })

    // The handler gave up on an event: park it, or stop with an error that names it.
    const parkOrStop = (target: Target, previous: bigint) => (failure: HandlerFailure): Effect.Effect<void, Stopped | StoreError> => {
      const { event } = failure
      const reason = describe(failure.cause)
      return projection.onFailure?.then === "park"
        ? Effect.zipRight(
          checkpoints.park(name, event, reason),
          Effect.logWarning(`Projection "${name}" parked event ${event.eventId} at ${event.position}: ${reason}`)
        )
        : Effect.fail(
          new Stopped(
            new ProjectionFailed({
              projection: name,
              position: event.position,
              eventId: event.eventId,
              streamId: event.streamId,
              eventType: event.eventType,
              reason,
              cause: Cause.squash(failure.cause)
            }),
            target.checkpoint,
            previous
          )
        )
    }

    const isHandlerFailure = (error: unknown): error is HandlerFailure => error instanceof HandlerFailure

    type BatchError = Stopped | CheckpointConflict | Superseded | StoreError

    // Applies a batch and returns the new checkpoint; the checkpoint is compared
    // and set, so that a runner that lost its lock cannot commit over the new one.
    const applyBatch = (
      target: Target,
      previous: bigint,
      events: ReadonlyArray<RecordedEvent>
    ): Effect.Effect<bigint, BatchError, R> => {
      const last = events[events.length - 1]
      if (last === undefined) return Effect.succeed(previous)
      const save = Effect.zipRight(
        checkpoints.save(target.checkpoint, last.position, { expected: previous }),
        target.after(last.position)
      )
      if (!exactlyOnce) {
        return Effect.forEach(events, (event) =>
          handleOne(event, target.tables).pipe(
            Effect.retry({ schedule: retry, while: isHandlerFailure }),
            Effect.catchIf(isHandlerFailure, parkOrStop(target, previous))
          ), { discard: true }).pipe(Effect.zipRight(save), Effect.as(last.position))
      }
      // Exactly once: the whole batch and its checkpoint in one transaction,
      // which first locks the checkpoint, so a runner that lost its lock stands
      // down before its handlers can collide with the new runner's writes. When
      // a batch keeps failing, its events are retried one by one to find the culprit.
      const handleAll = Effect.forEach(events, (event) => handleOne(event, target.tables), { discard: true })
      const begin = Effect.zipRight(checkpoints.lock(target.checkpoint, previous), target.before)
      return checkpoints.transaction(Effect.zipRight(begin, Effect.zipRight(handleAll, save))).pipe(
        Effect.retry({ schedule: retry, while: isHandlerFailure }),
        Effect.as(last.position),
        Effect.catchIf(isHandlerFailure, (failure) =>
          events.length > 1
            ? Effect.reduce(events, previous, (position, event) => applyBatch(target, position, [event]))
            : checkpoints.transaction(Effect.zipRight(begin, Effect.zipRight(parkOrStop(target, previous)(failure), save))).pipe(
              Effect.as(last.position)
            ))
      )
    }

    const follow = (target: Target, checkpoint: bigint, afterBatch: Effect.Effect<void, BatchError> = Effect.void) =>
      Effect.zipRight(
        Ref.set(position, checkpoint),
        store.subscribe({
          from: checkpoint + 1n,
          filter: projection.filter,
          includeArchived: projection.includeArchived,
          batchSize,
          // The runner restarts on store errors itself, with its backoff, and shows
          // it in its state: a subscription retrying inside would hide a stall.
          retry: Schedule.stop
        }).pipe(
          Stream.chunks,
          Stream.runFoldEffect(checkpoint, (previous, batch) =>
            applyBatch(target, previous, Chunk.toReadonlyArray(batch)).pipe(
              Effect.tap((applied) => Ref.set(position, applied)),
              Effect.zipLeft(afterBatch)
            ))
        )
      )

    const withGenerations = (gens: Generations) => {
      // The first time a generation is used: its tables, its views (unless it is
      // a rebuild, which readers see only once it has caught up) and its
      // checkpoint, in one transaction, so a crash leaves all or nothing.
      const prepare = (generation: number, publish: boolean) =>
        Effect.gen(function*() {
          const checkpoint = checkpointName(name, generation)
          const existing = yield* checkpoints.load(checkpoint)
          if (Option.isSome(existing)) return existing.value
          yield* checkpoints.transaction(Effect.gen(function*() {
            if (projection.setup) {
              yield* Effect.orDieWith(projection.setup(tablesOf(generation)), (error) =>
                new Error(`The setup of projection "${name}" failed for generation ${generation}: ${String(error)}`))
            }
            if (publish) yield* gens.publish(generation, declared)
            yield* checkpoints.save(checkpoint, 0n, { expected: 0n })
          }))
          return 0n
        })

      const activeTarget = (generation: number): Target => ({
        checkpoint: checkpointName(name, generation),
        tables: tablesOf(generation),
        before: gens.guard(name, generation),
        after: () => Effect.void
      })

      // A rebuild: the next generation, built from the start beside the active
      // one; each of its batches tries to switch the views over, which succeeds
      // once it is not behind the active generation.
      const buildTarget = (generation: number): Target => ({
        checkpoint: checkpointName(name, generation),
        tables: tablesOf(generation),
        before: gens.guard(name, generation),
        after: (position) => gens.trySwitch(name, generation, position, declared)
      })

      const watchForRebuild = (active: number) =>
        Effect.gen(function*() {
          const { building } = yield* gens.current(name)
          if (building === undefined) return
          yield* Effect.logInfo(`Projection "${name}" rebuilds into generation ${building}`)
          const checkpoint = yield* prepare(building, false)
          const switched = Effect.flatMap(gens.current(name), (current) =>
            current.active === building ? Effect.fail(new Superseded({ name, generation: active })) : Effect.void)
          yield* switched
          return yield* follow(buildTarget(building), checkpoint, switched)
        }).pipe(Effect.repeat(Schedule.spaced(rebuildPoll)), Effect.zipRight(Effect.never))

      return Effect.gen(function*() {
        const { active } = yield* gens.current(name)
        // After a switch, the generation before is read by nobody.
        if (active > 1) yield* gens.drop(active - 1, declared)
        const checkpoint = yield* prepare(active, true)
        return yield* Effect.raceFirst(follow(activeTarget(active), checkpoint), watchForRebuild(active))
      })
    }

    const work = Effect.gen(function*() {
      if (projection.tables === undefined) {
        const checkpoint = Option.getOrElse(yield* checkpoints.load(name), () => 0n)
        return yield* follow(plainTarget, checkpoint)
      }
      if (!exactlyOnce) {
        return yield* new InvalidInput({ field: "delivery", reason: "a projection with tables needs exactly-once delivery" })
      }
      if (Option.isNone(generations)) {
        return yield* new InvalidInput({ field: "tables", reason: "tables need the Generations service of a SQL backend" })
      }
      return yield* withGenerations(generations.value)
    })

    // Stopped on an event: recorded for every process to see, and then the
    // runner, still holding its lock, waits until the event is skipped or
    // parked (the checkpoint moves past it), and goes on from there.
    const stopped = (stop: Stopped) =>
      Effect.gen(function*() {
        const { error } = stop
        yield* checkpoints.recordFailure({
          projection: name,
          checkpoint: stop.checkpoint,
          after: stop.after,
          position: error.position,
          eventId: error.eventId,
          streamId: error.streamId,
          eventType: error.eventType,
          error: error.reason
        })
        yield* transition({ _tag: "Failed", reason: error.message, cause: Cause.fail(error) })
        yield* Effect.logError(`${error.message}. The projection waits for the event to be skipped or parked.`).pipe(
          Effect.annotateLogs({ projection: name, position: error.position.toString() })
        )
        const movedPast: Effect.Effect<void, StoreError> = Effect.flatMap(checkpoints.load(stop.checkpoint), (checkpoint) =>
          Option.getOrElse(checkpoint, () => 0n) >= error.position
            ? Effect.void
            : Effect.zipRight(Effect.raceFirst(Queue.take(resolved), Effect.sleep(resolvedPoll)), Effect.suspend(() => movedPast)))
        yield* movedPast
        yield* transition({ _tag: "Running" })
        yield* logged(Effect.logInfo(`Projection "${name}" resumes after position ${error.position}`))
      })

    const active = Effect.forever(Effect.catchIf(work, (error): error is Stopped => error instanceof Stopped, stopped))

    // What follows an end of `runOnce`: a restart (a state, and a warning) or a stop.
    type Outcome =
      | { readonly restart: true; readonly state: RunnerState; readonly log: string; readonly info?: boolean }
      | { readonly restart: false; readonly state: Extract<RunnerState, { readonly _tag: "Failed" }> }
    const stop = (cause: Cause.Cause<RunnerError>): Outcome => ({
      restart: false,
      state: { _tag: "Failed", reason: describe(cause), cause }
    })
    const outcome = (cause: Cause.Cause<unknown>): Outcome => {
      const failure = Cause.failureOption(cause)
      if (Cause.isDie(cause) || Option.isNone(failure)) return stop(Cause.stripFailures(cause))
      const error = failure.value
      if (error instanceof StoreError) {
        return { restart: true, state: { _tag: "Restarting", reason: error.message }, log: `restarts after a store error: ${error.message}` }
      }
      if (error instanceof RunnerLock.LockLost || error instanceof CheckpointConflict) {
        return { restart: true, state: { _tag: "Standby" }, log: `stands down: ${error.message}` }
      }
      if (error instanceof Superseded) {
        return { restart: true, state: { _tag: "Standby" }, log: `starts over on the active generation: ${error.message}`, info: true }
      }
      if (error instanceof InvalidInput || error instanceof RunnerLock.LockUnsupported) return stop(Cause.fail(error))
      return stop(Cause.die(error))
    }

    const runOnce = Effect.scoped(Effect.gen(function*() {
      yield* transition({ _tag: "Standby" })
      const lost = yield* lock.acquire(name)
      // Runs before the lock is released (finalizers run in reverse order), so
      // that nobody sees this runner Running once it has let its lock go.
      yield* Effect.addFinalizer((exit) =>
        Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
          ? transition(outcome(exit.cause).state)
          : transition({ _tag: "Standby" })
      )
      yield* transition({ _tag: "Running" })
      return yield* Effect.raceFirst(active, lost)
    }))

    const supervised: Effect.Effect<never, RunnerError, R> = runOnce.pipe(
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
        const next = outcome(cause)
        if (next.restart) {
          const log = next.info === true ? Effect.logInfo : Effect.logWarning
          return Effect.zipRight(transition(next.state), logged(log(`Projection "${name}" ${next.log}`)))
        }
        return Effect.zipRight(
          transition(next.state),
          logged(Effect.logError(`Projection "${name}" stopped: ${next.state.reason}`, cause))
        ).pipe(Effect.zipRight(Effect.failCause(next.state.cause)))
      }),
      Effect.repeat(restartDelay),
      Effect.zipRight(Effect.never)
    )

    const fiber = yield* Effect.forkScoped(supervised)
    const statusServices = Context.make(EventStore, store).pipe(
      Context.add(CheckpointStore, checkpoints),
      (context) => Option.isSome(generations) ? Context.add(context, Generations, generations.value) : context
    )
    const untilFailed = state.changes.pipe(
      Stream.filter((current) => current._tag === "Failed"),
      Stream.runHead,
      Effect.flatMap(Option.match({
        onNone: () => Effect.never,
        onSome: (failed) => Effect.failCause(failed.cause)
      }))
    )
    const resolveHere = (resolution: typeof skip) => (options?: ResolveOptions) =>
      resolution(name, options).pipe(
        Effect.tap(() => Queue.offer(resolved, undefined)),
        Effect.provideService(CheckpointStore, checkpoints)
      )
    return {
      name,
      state: Subscribable.make({ get: SubscriptionRef.get(state), changes: state.changes }),
      status: Effect.gen(function*() {
        const current = yield* SubscriptionRef.get(state)
        return yield* statusOf(projection, Option.some({ state: current, since: yield* Ref.get(since) }))
      }).pipe(Effect.provide(statusServices)),
      await: Effect.raceFirst(
        untilFailed,
        Effect.flatMap(fiber.await, (exit) => Exit.isFailure(exit) ? Effect.failCause(exit.cause) : Effect.never)
      ),
      skip: resolveHere(skip),
      park: resolveHere(park)
    }
  })

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
): Effect.Effect<never, RunnerError, EventStore | CheckpointStore | R> =>
  Effect.scoped(Effect.flatMap(start(projection), (runner) => runner.await))
