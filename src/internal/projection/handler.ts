/**
 * The three forms of handler as one: a batch's work, prepared outside its
 * transaction (a pipeline's stream) and written in it.
 */
import type * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Projection, Tables } from "../../Projection.js"
import type { RecordedEvent } from "../../RecordedEvent.js"

/** Prepares the writes of `events` (outside the batch's transaction); running them writes (in it). */
export type Apply<E, R, T extends string> = (
  events: Arr.NonEmptyReadonlyArray<RecordedEvent>,
  tables: Tables<T>
) => Effect.Effect<Effect.Effect<void, E, R>, E, R>

export const applyOf = <E, R, T extends string>(projection: Projection<E, R, T>): Apply<E, R, T> => {
  if (projection.handle !== undefined) {
    const { handle } = projection
    return (events, tables) =>
      Effect.succeed(Effect.forEach(events, (event) => handle(event, tables), { discard: true }))
  }
  if (projection.handleBatch !== undefined) {
    const { handleBatch } = projection
    return (events, tables) => Effect.succeed(handleBatch(events, tables))
  }
  const { pipeline } = projection
  return (events, tables) =>
    Effect.map(
      Stream.runCollect(pipeline(Stream.fromIterable(events), tables)),
      (writes) => Effect.forEach(writes, (write) => write, { discard: true })
    )
}
