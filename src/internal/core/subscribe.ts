/**
 * Live subscriptions: catching up and following are one loop. Read up to the
 * settled horizon in pages; when there is nothing above it, wait for a
 * wake-up and move the horizon. No switch-over, so nothing is dropped or
 * repeated at the seam.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { InvalidInput, StoreError } from "../../Errors.js"
import type { SubscribeOptions } from "../../EventStore.js"
import type { RecordedEvent } from "../../RecordedEvent.js"
import * as Validation from "../../Validation.js"
import type { EventStoreDriver } from "./driver.js"

export const subscribe = (driver: EventStoreDriver) =>
(options?: SubscribeOptions): Stream.Stream<RecordedEvent, InvalidInput | StoreError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const { batchSize, filter, from, includeArchived } = yield* Validation.subscribeOptions(options)
    // Registered before the first read, so that no append falls between the two.
    const nextWakeup = yield* driver.wakeups
    let horizon = yield* driver.settledHorizon
    let cursor = from === "end" ? horizon + 1n : from
    const step = Effect.gen(function*() {
      if (cursor > horizon) {
        horizon = yield* driver.settledHorizon
        if (cursor > horizon) {
          yield* nextWakeup
          return Chunk.empty<RecordedEvent>()
        }
      }
      const page = yield* driver.readLogPage({ from: cursor, to: horizon, filter, includeArchived, limit: batchSize })
      const last = page[page.length - 1]
      // A short page means nothing else that matches is at or below the horizon.
      cursor = page.length < batchSize || last === undefined ? horizon + 1n : last.position + 1n
      return Chunk.unsafeFromArray(page)
    })
    return Stream.repeatEffectChunk(step)
  })).pipe(Stream.withSpan("EventStore.subscribe"))
