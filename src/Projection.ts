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
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { type CheckpointConflict, CheckpointStore } from "./CheckpointStore.js"
import { type EventDecodeError, InvalidInput, type StoreError } from "./Errors.js"
import * as EventRegistry from "./events/EventRegistry.js"
import type * as EventType from "./events/EventType.js"
import { type EventFilter, EventStore } from "./EventStore.js"
import { Generations, Superseded, tableName } from "./Generations.js"
import * as SqlErrors from "./postgres/SqlErrors.js"
import type { RecordedEvent } from "./RecordedEvent.js"
import * as RunnerLock from "./RunnerLock.js"

/**
 * What happens when the handler fails on an event: retry with `retry`; if it
 * still fails, `"stop"` the projection with a `ProjectionFailed` that names the
 * event, or `"park"` the event (record it with the `CheckpointStore`, see
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
 * What a runner is doing.
 *
 * @since 0.1.0
 * @category models
 */
export type RunnerState =
  | { readonly _tag: "Standby" }
  | { readonly _tag: "Running" }
  | { readonly _tag: "Restarting"; readonly reason: string }
  | { readonly _tag: "Failed"; readonly error: ProjectionFailed }

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectionStatus {
  readonly name: string
  /** `"live"` when caught up with the head, `"catching-up"` otherwise, from this process's point of view. */
  readonly state: "standby" | "catching-up" | "live" | "restarting" | "failed"
  /** The last position applied (0 before the first). */
  readonly position: bigint
  /** The head of the global log. */
  readonly head: bigint
  /** How far behind: positions between the checkpoint and the head, and the age of the oldest unapplied event. */
  readonly lag: { readonly positions: bigint; readonly millis: number }
  readonly error?: string | undefined
  /** The read model generation readers see, for projections with tables. */
  readonly generation?: number | undefined
  /** A rebuild in progress: the generation being built and how far it has got. */
  readonly rebuild?: { readonly generation: number; readonly position: bigint } | undefined
}

/**
 * A projection started with `start`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectionRunner {
  readonly state: SubscriptionRef.SubscriptionRef<RunnerState>
  readonly status: Effect.Effect<ProjectionStatus, StoreError>
  /** Waits for the runner: it only ever ends by failing (or being interrupted). */
  readonly await: Effect.Effect<never, ProjectionFailed | InvalidInput>
}

class HandlerFailure {
  constructor(readonly event: RecordedEvent, readonly cause: Cause.Cause<unknown>) {}
}

const defaultRetry = Schedule.exponential(Duration.millis(100)).pipe(Schedule.intersect(Schedule.recurs(3)))
const rebuildPoll = Duration.seconds(1)
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
 * The position a projection has applied up to, the head, the lag, and a
 * rebuild in progress. Works from any process.
 *
 * @since 0.1.0
 * @category status
 */
export const status = <E, R, T extends string>(
  projection: Projection<E, R, T>,
  state: RunnerState = { _tag: "Running" }
): Effect.Effect<ProjectionStatus, StoreError, EventStore | CheckpointStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const checkpoints = yield* CheckpointStore
    const generations = projection.tables === undefined ? Option.none() : yield* Effect.serviceOption(Generations)
    const generation = Option.isSome(generations) ? yield* generations.value.current(projection.name) : undefined
    const load = (g: number | undefined) =>
      Effect.map(checkpoints.load(checkpointName(projection.name, g)), Option.getOrElse(() => 0n))
    const position = yield* load(generation?.active)
    const head = yield* store.headPosition
    const next = yield* Stream.runHead(store.readAll({
      from: position + 1n,
      limit: 1,
      filter: projection.filter,
      includeArchived: projection.includeArchived
    })).pipe(
      Effect.catchTag("InvalidInput", () => Effect.succeedNone)
    )
    const now = yield* Clock.currentTimeMillis
    const lagMillis = Option.match(next, { onNone: () => 0, onSome: (event) => Math.max(0, now - event.recordedAt.getTime()) })
    return {
      name: projection.name,
      state: state._tag === "Standby"
        ? "standby"
        : state._tag === "Restarting"
        ? "restarting"
        : state._tag === "Failed"
        ? "failed"
        : Option.isNone(next)
        ? "live"
        : "catching-up",
      position,
      head,
      lag: { positions: head > position ? head - position : 0n, millis: lagMillis },
      error: state._tag === "Failed" ? state.error.message : state._tag === "Restarting" ? state.reason : undefined,
      generation: generation?.active,
      rebuild: generation?.building === undefined
        ? undefined
        : { generation: generation.building, position: yield* load(generation.building) }
    }
  })

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
 * checkpoint and follows the log. Store errors and lost locks make it start
 * over from its checkpoint; a `ProjectionFailed` stops it. For a projection
 * with tables it also builds a requested rebuild and switches to it.
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
    const { name } = projection
    const declaredTables: Tables<T> | undefined = projection.tables
    const declared: ReadonlyArray<string> = declaredTables === undefined ? [] : Object.values(declaredTables)
    const batchSize = projection.batchSize ?? 100
    const retry = projection.onFailure?.retry ?? defaultRetry
    const exactlyOnce = projection.delivery !== "at-least-once"

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
    const parkOrStop = (failure: HandlerFailure): Effect.Effect<void, ProjectionFailed | StoreError> => {
      const { event } = failure
      const reason = describe(failure.cause)
      return projection.onFailure?.then === "park"
        ? Effect.zipRight(
          checkpoints.park(name, event, reason),
          Effect.logWarning(`Projection "${name}" parked event ${event.eventId} at ${event.position}: ${reason}`)
        )
        : Effect.fail(
          new ProjectionFailed({
            projection: name,
            position: event.position,
            eventId: event.eventId,
            streamId: event.streamId,
            eventType: event.eventType,
            reason,
            cause: Cause.squash(failure.cause)
          })
        )
    }

    const isHandlerFailure = (error: unknown): error is HandlerFailure => error instanceof HandlerFailure

    type BatchError = ProjectionFailed | CheckpointConflict | Superseded | StoreError

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
            Effect.catchIf(isHandlerFailure, parkOrStop)
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
            : checkpoints.transaction(Effect.zipRight(begin, Effect.zipRight(parkOrStop(failure), save))).pipe(
              Effect.as(last.position)
            ))
      )
    }

    const follow = (target: Target, checkpoint: bigint, afterBatch: Effect.Effect<void, BatchError> = Effect.void) =>
      store.subscribe({
        from: checkpoint + 1n,
        filter: projection.filter,
        includeArchived: projection.includeArchived,
        batchSize
      }).pipe(
        Stream.chunks,
        Stream.runFoldEffect(checkpoint, (previous, batch) =>
          Effect.zipLeft(applyBatch(target, previous, Chunk.toReadonlyArray(batch)), afterBatch))
      )

    const withGenerations = (gens: Context.Tag.Service<Generations>) => {
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

    const runOnce = Effect.scoped(Effect.gen(function*() {
      yield* SubscriptionRef.set(state, { _tag: "Standby" })
      const lost = yield* lock.acquire(name)
      yield* SubscriptionRef.set(state, { _tag: "Running" })
      return yield* Effect.raceFirst(work, lost)
    }))

    // Everything but a ProjectionFailed (or bad options) is worth starting over for.
    const supervised: Effect.Effect<never, ProjectionFailed | InvalidInput, R> = runOnce.pipe(
      Effect.catchTags({
        LockLost: (error: RunnerLock.LockLost) =>
          Effect.zipRight(SubscriptionRef.set(state, { _tag: "Standby" }), Effect.logWarning(error.message)),
        CheckpointConflict: (error: CheckpointConflict) =>
          Effect.zipRight(
            SubscriptionRef.set(state, { _tag: "Standby" }),
            Effect.logWarning(`Projection "${name}" stands down: ${error.message}`)
          ),
        Superseded: (error: Superseded) => Effect.logInfo(`${error.message}: switching to the active generation`),
        StoreError: (error: StoreError) =>
          Effect.zipRight(
            SubscriptionRef.set(state, { _tag: "Restarting", reason: error.message }),
            Effect.logWarning(`Projection "${name}" restarts after a store error: ${error.message}`)
          )
      }),
      Effect.repeat(restartDelay),
      Effect.zipRight(Effect.never),
      Effect.tapError((error) =>
        error._tag === "ProjectionFailed" ? SubscriptionRef.set(state, { _tag: "Failed", error }) : Effect.void
      )
    )

    const fiber = yield* Effect.forkScoped(supervised)
    const statusServices = Context.make(EventStore, store).pipe(
      Context.add(CheckpointStore, checkpoints),
      (context) => Option.isSome(generations) ? Context.add(context, Generations, generations.value) : context
    )
    return {
      state,
      status: Effect.flatMap(SubscriptionRef.get(state), (current) => status(projection, current)).pipe(
        Effect.provide(statusServices)
      ),
      await: Effect.flatMap(fiber.await, (exit) => exit._tag === "Failure" ? Effect.failCause(exit.cause) : Effect.never)
    }
  })

/**
 * Runs a projection until it fails with `ProjectionFailed` (or is interrupted).
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E, R, T extends string>(
  projection: Projection<E, R, T>
): Effect.Effect<never, ProjectionFailed | InvalidInput, EventStore | CheckpointStore | R> =>
  Effect.scoped(Effect.flatMap(start(projection), (runner) => runner.await))
