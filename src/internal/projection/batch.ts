/**
 * A batch of events applied to a target: exactly once (the handler's writes
 * and the checkpoint in one transaction of the `CheckpointStore`) or at least
 * once (the checkpoint saved after the handler), the checkpoint moved by
 * compare-and-set either way. A batch that keeps failing is applied again
 * event by event, so that the failure policy names one event.
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type { CheckpointConflict } from "../../CheckpointStore.js"
import type { InvalidInput, StoreError } from "../../Errors.js"
import type { Superseded } from "../../Generations.js"
import type { Tables } from "../../Projection.js"
import type { RecordedEvent } from "../../RecordedEvent.js"
import * as SqlErrors from "../postgres/sqlErrors.js"
import * as Failures from "./failures.js"
import type { Job } from "./job.js"

/** Where a batch goes: a checkpoint, the tables to write, and checks made in its transaction. */
export interface Target<T extends string> {
  readonly checkpoint: string
  readonly tables: Tables<T>
  readonly before: Effect.Effect<void, Superseded | StoreError>
  readonly after: (position: bigint) => Effect.Effect<unknown, StoreError>
}

export type BatchError = Failures.Stopped | CheckpointConflict | Superseded | InvalidInput | StoreError

const span = (events: Arr.NonEmptyReadonlyArray<RecordedEvent>): string => {
  const first = Arr.headNonEmpty(events).position
  const last = Arr.lastNonEmpty(events).position
  return first === last ? `position ${first}` : `positions ${first} to ${last}`
}

// A handler that lost its database connection did not fail on its events:
// the runner starts over from its checkpoint, as after any store error,
// instead of retrying, parking or stopping on an event.
const asHandlerFailure = <E, R, T extends string>(
  job: Job<E, R, T>,
  events: Arr.NonEmptyReadonlyArray<RecordedEvent>
) =>
<A, E1, R1>(effect: Effect.Effect<A, E1, R1>): Effect.Effect<A, Failures.HandlerFailure | StoreError, R1> =>
  Effect.catchAllCause(effect, (cause): Effect.Effect<never, Failures.HandlerFailure | StoreError> => {
    if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
    const lost = SqlErrors.lostConnectionIn(cause)
    return lost === undefined
      ? Effect.fail(new Failures.HandlerFailure(cause))
      : Effect.fail(
        SqlErrors.storeError(`Projection "${job.name}" lost its database connection at ${span(events)}`)(lost)
      )
  })

/**
 * Applies a batch and returns the new checkpoint; the checkpoint is compared
 * and set, so that a runner that lost its lock cannot commit over the new one.
 */
export const apply = <E, R, T extends string>(
  job: Job<E, R, T>,
  target: Target<T>,
  previous: bigint,
  batch: ReadonlyArray<RecordedEvent>
): Effect.Effect<bigint, BatchError, R> => {
  if (!Arr.isNonEmptyReadonlyArray(batch)) return Effect.succeed(previous)
  const last = Arr.lastNonEmpty(batch).position
  return job.exactlyOnce
    ? Effect.as(exactlyOnce(job, target, previous, batch), last)
    : atLeastOnce(job, target, previous, batch).pipe(
      Effect.zipRight(save(job, target, previous, last)),
      Effect.as(last)
    )
}

/**
 * Moves the checkpoint past a range of the log with no event for the
 * projection: the same compare-and-set as after a batch, under the same lock
 * and checks when exactly once, with no handler and no writes.
 */
export const advance = <E, R, T extends string>(
  job: Job<E, R, T>,
  target: Target<T>,
  previous: bigint,
  position: bigint
): Effect.Effect<bigint, BatchError> => {
  if (position <= previous) return Effect.succeed(previous)
  const saved = save(job, target, previous, position)
  return Effect.as(
    job.exactlyOnce
      ? job.checkpoints.transaction(
        job.checkpoints.lock(target.checkpoint, previous).pipe(Effect.zipRight(target.before), Effect.zipRight(saved))
      )
      : saved,
    position
  )
}

/** Moves the checkpoint from `previous` to `last` by compare-and-set, and runs the target's check after a batch. */
const save = <E, R, T extends string>(job: Job<E, R, T>, target: Target<T>, previous: bigint, last: bigint) =>
  Effect.zipRight(job.checkpoints.save(target.checkpoint, last, { expected: previous }), target.after(last))

// The whole batch and its checkpoint in one transaction, which first locks
// the checkpoint, so a runner that lost its lock stands down before its
// handler can collide with the new runner's writes. A pipeline's stream runs
// before the transaction; its writes run in it.
const exactlyOnce = <E, R, T extends string>(
  job: Job<E, R, T>,
  target: Target<T>,
  previous: bigint,
  events: Arr.NonEmptyReadonlyArray<RecordedEvent>
): Effect.Effect<void, BatchError, R> => {
  const { checkpoints } = job
  const retry = job.projection.onFailure?.retry ?? Failures.defaultRetry
  const last = Arr.lastNonEmpty(events).position
  const inTransaction = <E1, R1>(write: Effect.Effect<void, E1, R1>) =>
    checkpoints.transaction(
      checkpoints.lock(target.checkpoint, previous).pipe(
        Effect.zipRight(target.before),
        Effect.zipRight(write),
        Effect.zipRight(save(job, target, previous, last))
      )
    )
  const handled = asHandlerFailure(job, events)
  return handled(job.apply(events, target.tables)).pipe(
    Effect.flatMap((write) => inTransaction(handled(write))),
    Effect.retry({ schedule: retry, while: Failures.isHandlerFailure }),
    Effect.catchIf(Failures.isHandlerFailure, (failure) =>
      events.length > 1
        ? Effect.asVoid(
          Effect.reduce(events, previous, (position, event) =>
            Effect.as(exactlyOnce(job, target, position, [event]), event.position))
        )
        : inTransaction(Failures.parkOrStop(job, target.checkpoint, previous, Arr.headNonEmpty(events))(failure)))
  )
}

// The handler outside any transaction, the checkpoint saved after it: a
// handler per event is retried event by event (a retry repeats only the
// event that failed); a batch or a pipeline as a whole, then event by event.
const atLeastOnce = <E, R, T extends string>(
  job: Job<E, R, T>,
  target: Target<T>,
  previous: bigint,
  events: Arr.NonEmptyReadonlyArray<RecordedEvent>
): Effect.Effect<void, BatchError, R> => {
  const retry = job.projection.onFailure?.retry ?? Failures.defaultRetry
  const attempt = (unit: Arr.NonEmptyReadonlyArray<RecordedEvent>): Effect.Effect<void, BatchError, R> =>
    job.apply(unit, target.tables).pipe(
      Effect.flatMap((write) => write),
      asHandlerFailure(job, unit),
      Effect.retry({ schedule: retry, while: Failures.isHandlerFailure }),
      Effect.catchIf(Failures.isHandlerFailure, (failure) =>
        unit.length > 1
          ? Effect.forEach(unit, (event) => attempt([event]), { discard: true })
          : Failures.parkOrStop(job, target.checkpoint, previous, Arr.headNonEmpty(unit))(failure))
    )
  return job.perEvent ? Effect.forEach(events, (event) => attempt([event]), { discard: true }) : attempt(events)
}
