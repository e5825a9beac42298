/**
 * Projections: the read side, declared as a handler per event and run as a
 * live subscription with checkpoints.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { type CheckpointConflict, CheckpointStore } from "./CheckpointStore.js"
import type { InvalidInput, StoreError } from "./Errors.js"
import { type EventFilter, EventStore } from "./EventStore.js"
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
 * @since 0.1.0
 * @category models
 */
export interface Projection<E = never, R = never> {
  /** Unique per store: it names the checkpoint and the runner lock. */
  readonly name: string
  /** The events the projection sees; all when absent. */
  readonly filter?: EventFilter | undefined
  /** Applies one event. On the SQL backends, its SQL joins the batch's transaction. */
  readonly handle: (event: RecordedEvent) => Effect.Effect<void, E, R>
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
export const make = <E = never, R = never>(projection: Projection<E, R>): Projection<E, R> => projection

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
const restartDelay = Schedule.exponential(Duration.millis(200)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(10))))

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  return failure instanceof Error ? failure.message : String(failure)
}

/**
 * The position a projection has applied up to, the head, and the lag.
 *
 * @since 0.1.0
 * @category status
 */
export const status = <E, R>(
  projection: Projection<E, R>,
  state: RunnerState = { _tag: "Running" }
): Effect.Effect<ProjectionStatus, StoreError, EventStore | CheckpointStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const checkpoints = yield* CheckpointStore
    const position = Option.getOrElse(yield* checkpoints.load(projection.name), () => 0n)
    const head = yield* store.headPosition
    const next = yield* Stream.runHead(store.readAll({ from: position + 1n, limit: 1, filter: projection.filter })).pipe(
      Effect.catchTag("InvalidInput", () => Effect.succeedNone)
    )
    const now = yield* Clock.currentTimeMillis
    const lagMillis = Option.match(next, { onNone: () => 0, onSome: (event) => Math.max(0, now - event.recordedAt.getTime()) })
    const caughtUp = Option.isNone(next)
    return {
      name: projection.name,
      state: state._tag === "Standby"
        ? "standby"
        : state._tag === "Restarting"
        ? "restarting"
        : state._tag === "Failed"
        ? "failed"
        : caughtUp
        ? "live"
        : "catching-up",
      position,
      head,
      lag: { positions: head > position ? head - position : 0n, millis: lagMillis },
      error: state._tag === "Failed" ? state.error.message : state._tag === "Restarting" ? state.reason : undefined
    }
  })

/**
 * Starts a projection in the background of the scope: it waits for the runner
 * lock (one active runner per projection; the `RunnerLock` in context, or a
 * lock within this process when there is none), then catches up from its
 * checkpoint and follows the log. Store errors and lost locks make it start
 * over from its checkpoint; a `ProjectionFailed` stops it.
 *
 * @since 0.1.0
 * @category running
 */
export const start = <E, R>(
  projection: Projection<E, R>
): Effect.Effect<ProjectionRunner, never, EventStore | CheckpointStore | Scope.Scope | R> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const checkpoints = yield* CheckpointStore
    const lock = Option.getOrElse(yield* Effect.serviceOption(RunnerLock.RunnerLock), () => RunnerLock.localFor(checkpoints))
    const state = yield* SubscriptionRef.make<RunnerState>({ _tag: "Standby" })
    const { name } = projection
    const batchSize = projection.batchSize ?? 100
    const retry = projection.onFailure?.retry ?? defaultRetry
    const exactlyOnce = projection.delivery !== "at-least-once"

    const handleOne = (event: RecordedEvent): Effect.Effect<void, HandlerFailure, R> =>
      Effect.catchAllCause(projection.handle(event), (cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.fail(new HandlerFailure(event, cause)))

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

    // Applies a batch and returns the new checkpoint; the checkpoint is compared
    // and set, so that a runner that lost its lock cannot commit over the new one.
    const applyBatch = (
      previous: bigint,
      events: ReadonlyArray<RecordedEvent>
    ): Effect.Effect<bigint, ProjectionFailed | CheckpointConflict | StoreError, R> => {
      const last = events[events.length - 1]
      if (last === undefined) return Effect.succeed(previous)
      const save = checkpoints.save(name, last.position, { expected: previous })
      if (!exactlyOnce) {
        return Effect.forEach(events, (event) =>
          handleOne(event).pipe(
            Effect.retry({ schedule: retry, while: isHandlerFailure }),
            Effect.catchIf(isHandlerFailure, parkOrStop)
          ), { discard: true }).pipe(Effect.zipRight(save), Effect.as(last.position))
      }
      // Exactly once: the whole batch and its checkpoint in one transaction. When
      // a batch keeps failing, its events are retried one by one to find the culprit.
      return checkpoints.transaction(Effect.zipRight(Effect.forEach(events, handleOne, { discard: true }), save)).pipe(
        Effect.retry({ schedule: retry, while: isHandlerFailure }),
        Effect.as(last.position),
        Effect.catchIf(isHandlerFailure, (failure) =>
          events.length > 1
            ? Effect.reduce(events, previous, (position, event) => applyBatch(position, [event]))
            : checkpoints.transaction(Effect.zipRight(parkOrStop(failure), save)).pipe(Effect.as(last.position)))
      )
    }

    const follow = (checkpoint: bigint) =>
      store.subscribe({ from: checkpoint + 1n, filter: projection.filter, batchSize }).pipe(
        Stream.chunks,
        Stream.runFoldEffect(checkpoint, (previous, batch) => applyBatch(previous, Chunk.toReadonlyArray(batch)))
      )

    const runOnce = Effect.scoped(Effect.gen(function*() {
      yield* SubscriptionRef.set(state, { _tag: "Standby" })
      const lost = yield* lock.acquire(name)
      yield* SubscriptionRef.set(state, { _tag: "Running" })
      const checkpoint = Option.getOrElse(yield* checkpoints.load(name), () => 0n)
      return yield* Effect.raceFirst(follow(checkpoint), lost)
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
    return {
      state,
      status: Effect.flatMap(SubscriptionRef.get(state), (current) => status(projection, current)).pipe(
        Effect.provideService(EventStore, store),
        Effect.provideService(CheckpointStore, checkpoints)
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
export const run = <E, R>(
  projection: Projection<E, R>
): Effect.Effect<never, ProjectionFailed | InvalidInput, EventStore | CheckpointStore | R> =>
  Effect.scoped(Effect.flatMap(start(projection), (runner) => runner.await))
