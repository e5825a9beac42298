/**
 * Keyset pagination, the one way every read of the store pages.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/**
 * Fetches a page, emits it and moves the cursor past its last element; stops
 * on a short page, when `remaining` runs out, or when `next` says the last
 * element was the known end (which saves an empty round trip).
 */
export const paginate = <S extends { readonly remaining: number }, A, E, R>(
  initial: S,
  fetch: (state: S, size: number) => Effect.Effect<ReadonlyArray<A>, E, R>,
  next: (last: A, state: S) => S | undefined,
  batchSize: number
): Stream.Stream<A, E, R> =>
  Stream.paginateChunkEffect(initial, (state) => {
    const size = Math.min(batchSize, state.remaining)
    return Effect.map(fetch(state, size), (page) => {
      const last = page[page.length - 1]
      const remaining = state.remaining - page.length
      const done = last === undefined || page.length < size || remaining <= 0
      return [
        Chunk.unsafeFromArray(page),
        done ? Option.none<S>() : Option.fromNullable(next(last, { ...state, remaining }))
      ] as const
    })
  })
