/**
 * Following the log into a target: a subscription from the checkpoint on,
 * applied batch by batch.
 */
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { RecordedEvent } from "../../RecordedEvent.js"
import * as Batch from "./batch.js"
import type { Job } from "./job.js"

/**
 * Applies the events after `checkpoint` to `target`, and then every event
 * that comes; `afterBatch` runs after each batch. Ends only with an error.
 */
export const follow = <E, R, T extends string>(
  job: Job<E, R, T>,
  target: Batch.Target<T>,
  checkpoint: bigint,
  afterBatch: Effect.Effect<void, Batch.BatchError> = Effect.void
) =>
  Effect.zipRight(
    Ref.set(job.position, checkpoint),
    job.store.subscribeWithCheckpoints({
      from: checkpoint + 1n,
      filter: job.projection.filter,
      includeArchived: job.projection.includeArchived,
      batchSize: job.batchSize,
      // The runner restarts on store errors itself, with its backoff, and shows
      // it in its state: a subscription retrying inside would hide a stall.
      retry: Schedule.stop
    }).pipe(
      Stream.chunks,
      Stream.runFoldEffect(checkpoint, (previous, items) => {
        const events: Array<RecordedEvent> = []
        let reached = previous
        for (const item of items) {
          if (item._tag === "Event") events.push(item.event)
          else if (item.position > reached) reached = item.position
        }
        return Batch.apply(job, target, previous, events).pipe(
          // Past a range with nothing for this projection, the checkpoint moves
          // too, once it would save a restart at least a batch of reading: a
          // selective filter resumes near the head, at one write per batch of log.
          Effect.flatMap((applied) =>
            reached - applied >= BigInt(job.batchSize)
              ? Batch.advance(job, target, applied, reached)
              : Effect.succeed(applied)
          ),
          Effect.tap((applied) => Ref.set(job.position, applied)),
          Effect.zipLeft(afterBatch)
        )
      })
    )
  )
