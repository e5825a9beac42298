/**
 * Following the log into a target: a subscription from the checkpoint on,
 * applied batch by batch.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
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
    job.store.subscribe({
      from: checkpoint + 1n,
      filter: job.projection.filter,
      includeArchived: job.projection.includeArchived,
      batchSize: job.batchSize,
      // The runner restarts on store errors itself, with its backoff, and shows
      // it in its state: a subscription retrying inside would hide a stall.
      retry: Schedule.stop
    }).pipe(
      Stream.chunks,
      Stream.runFoldEffect(checkpoint, (previous, batch) =>
        Batch.apply(job, target, previous, Chunk.toReadonlyArray(batch)).pipe(
          Effect.tap((applied) =>
            Ref.set(job.position, applied)
          ),
          Effect.zipLeft(afterBatch)
        ))
    )
  )
