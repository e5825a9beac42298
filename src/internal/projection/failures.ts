/**
 * The failure policy: a handler retried, then its event parked or the
 * projection stopped on it; a stopped runner waiting for its event to be
 * skipped or parked; and the skip or park itself, from any process.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import { CheckpointStore, type FailedEvent } from "../../CheckpointStore.js"
import type { InvalidInput, StoreError } from "../../Errors.js"
import { ProjectionFailed, ProjectionNotStopped, type ResolveOptions } from "../../Projection.js"
import type { RecordedEvent } from "../../RecordedEvent.js"
import type { Job } from "./job.js"
import * as Jobs from "./job.js"
import * as State from "./state.js"

/** Retry 3 times with exponential backoff from 100 ms. */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.intersect(Schedule.recurs(3))
)

// How often a stopped runner looks whether its event was skipped or parked elsewhere.
const resolvedPoll = Duration.seconds(1)

/** Why a cause ended something, in one line. */
export const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  return failure instanceof Error ? failure.message : String(failure)
}

/** The handler failed on a batch (not the store under it). */
export class HandlerFailure {
  constructor(readonly cause: Cause.Cause<unknown>) {}
}

export const isHandlerFailure = (error: unknown): error is HandlerFailure => error instanceof HandlerFailure

/** The policy stopped the projection on an event: where its checkpoint stands. */
export class Stopped {
  constructor(readonly error: ProjectionFailed, readonly checkpoint: string, readonly after: bigint) {}
}

export const isStopped = (error: unknown): error is Stopped => error instanceof Stopped

/**
 * The handler gave up on `event`, applied alone after `previous` on
 * `checkpoint`: park it, or stop with an error that names it.
 */
export const parkOrStop =
  <E, R, T extends string>(job: Job<E, R, T>, checkpoint: string, previous: bigint, event: RecordedEvent) =>
  (failure: HandlerFailure): Effect.Effect<void, Stopped | InvalidInput | StoreError> => {
    const reason = describe(failure.cause)
    return job.projection.onFailure?.then === "park"
      ? Effect.zipRight(
        job.checkpoints.park(job.name, event, reason),
        Effect.logWarning(`Projection "${job.name}" parked event ${event.eventId} at ${event.position}: ${reason}`)
      )
      : Effect.fail(
        new Stopped(
          new ProjectionFailed({
            projection: job.name,
            position: event.position,
            eventId: event.eventId,
            streamId: event.streamId,
            eventType: event.eventType,
            reason,
            cause: Cause.squash(failure.cause)
          }),
          checkpoint,
          previous
        )
      )
  }

/**
 * Stopped on an event: recorded for every process to see, and then the
 * runner, still holding its lock, waits until the event is skipped or parked
 * (the checkpoint moves past it), and goes on from there.
 */
export const awaitResolution =
  <E, R, T extends string>(job: Job<E, R, T>) => (stop: Stopped): Effect.Effect<void, InvalidInput | StoreError> =>
    Effect.gen(function*() {
      const { checkpoints, name } = job
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
      yield* State.transition(job.state, { _tag: "Failed", reason: error.message, cause: Cause.fail(error) })
      yield* Effect.logError(`${error.message}. The projection waits for the event to be skipped or parked.`).pipe(
        Effect.annotateLogs({ projection: name, position: error.position.toString() })
      )
      const movedPast: Effect.Effect<void, InvalidInput | StoreError> = Effect.flatMap(
        checkpoints.load(stop.checkpoint),
        (checkpoint) =>
          Option.getOrElse(checkpoint, () => 0n) >= error.position
            ? Effect.void
            : Effect.zipRight(
              Effect.raceFirst(Queue.take(job.resolved), Effect.sleep(resolvedPoll)),
              Effect.suspend(() => movedPast)
            )
      )
      yield* movedPast
      yield* State.transition(job.state, { _tag: "Running" })
      yield* Jobs.logged(job)(Effect.logInfo(`Projection "${name}" resumes after position ${error.position}`))
    })

/**
 * The event `name` stopped on, if it is still stopped there (its checkpoint
 * has not moved past it).
 */
export const failure = (
  name: string
): Effect.Effect<Option.Option<FailedEvent>, InvalidInput | StoreError, CheckpointStore> =>
  Effect.flatMap(
    CheckpointStore,
    (checkpoints) =>
      Effect.flatMap(checkpoints.failure(name), (found) =>
        Option.isNone(found)
          ? Effect.succeedNone
          : Effect.map(checkpoints.load(found.value.checkpoint), (position) =>
            Option.getOrElse(position, () => 0n) < found.value.position ? found : Option.none()))
  )

/** Skips or parks the event `name` stopped on. */
export const resolve = (
  action: "skip" | "park",
  name: string,
  options?: ResolveOptions
): Effect.Effect<FailedEvent, ProjectionNotStopped | InvalidInput | StoreError, CheckpointStore> =>
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
      `Projection "${name}": ${
        action === "skip" ? "skipped" : "parked"
      } ${failed.eventType} ${failed.eventId} at position ${failed.position}`
    ).pipe(Effect.annotateLogs({ projection: name, position: failed.position.toString() }))
    return failed
  }).pipe(Effect.withSpan(`Projection.${action}`, { attributes: { name } }))
