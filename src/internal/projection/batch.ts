/**
 * A batch of events applied to a target: exactly once (the handlers and the
 * checkpoint in one transaction of the `CheckpointStore`) or at least once
 * (the checkpoint saved after the handlers), the checkpoint moved by
 * compare-and-set either way.
 */
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

// A handler that lost its database connection did not fail on its event:
// the runner starts over from its checkpoint, as after any store error,
// instead of retrying, parking or stopping on the event.
const handleOne = <E, R, T extends string>(
  job: Job<E, R, T>,
  event: RecordedEvent,
  tables: Tables<T>
): Effect.Effect<void, Failures.HandlerFailure | StoreError, R> =>
  Effect.catchAllCause(
    job.projection.handle(event, tables),
    (cause): Effect.Effect<never, Failures.HandlerFailure | StoreError> => {
      if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
      const lost = SqlErrors.lostConnectionIn(cause)
      return lost === undefined
        ? Effect.fail(new Failures.HandlerFailure(event, cause))
        : Effect.fail(
          SqlErrors.storeError(`Projection "${job.name}" lost its database connection at position ${event.position}`)(
            lost
          )
        )
    }
  )

/**
 * Applies a batch and returns the new checkpoint; the checkpoint is compared
 * and set, so that a runner that lost its lock cannot commit over the new one.
 */
export const apply = <E, R, T extends string>(
  job: Job<E, R, T>,
  target: Target<T>,
  previous: bigint,
  events: ReadonlyArray<RecordedEvent>
): Effect.Effect<bigint, BatchError, R> => {
  const { checkpoints } = job
  const retry = job.projection.onFailure?.retry ?? Failures.defaultRetry
  const parkOrStop = Failures.parkOrStop(job, target.checkpoint, previous)
  const last = events[events.length - 1]
  if (last === undefined) return Effect.succeed(previous)
  const save = Effect.zipRight(
    checkpoints.save(target.checkpoint, last.position, { expected: previous }),
    target.after(last.position)
  )
  if (!job.exactlyOnce) {
    return Effect.forEach(events, (event) =>
      handleOne(job, event, target.tables).pipe(
        Effect.retry({ schedule: retry, while: Failures.isHandlerFailure }),
        Effect.catchIf(Failures.isHandlerFailure, parkOrStop)
      ), { discard: true }).pipe(Effect.zipRight(save), Effect.as(last.position))
  }
  // Exactly once: the whole batch and its checkpoint in one transaction,
  // which first locks the checkpoint, so a runner that lost its lock stands
  // down before its handlers can collide with the new runner's writes. When
  // a batch keeps failing, its events are retried one by one to find the culprit.
  const handleAll = Effect.forEach(events, (event) => handleOne(job, event, target.tables), { discard: true })
  const begin = Effect.zipRight(checkpoints.lock(target.checkpoint, previous), target.before)
  return checkpoints.transaction(Effect.zipRight(begin, Effect.zipRight(handleAll, save))).pipe(
    Effect.retry({ schedule: retry, while: Failures.isHandlerFailure }),
    Effect.as(last.position),
    Effect.catchIf(Failures.isHandlerFailure, (failure) =>
      events.length > 1
        ? Effect.reduce(events, previous, (position, event) => apply(job, target, position, [event]))
        : checkpoints.transaction(Effect.zipRight(begin, Effect.zipRight(parkOrStop(failure), save))).pipe(
          Effect.as(last.position)
        ))
  )
}
