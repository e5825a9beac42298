/**
 * Appends: prepared and checked by the core, stored by the driver, and a
 * rejected append classified here, the same way for every backend.
 */
import * as Effect from "effect/Effect"
import { StreamDeleted } from "../../Errors.js"
import type { EventData } from "../../EventData.js"
import type { AppendError, AppendOptions, AppendResult } from "../../EventStore.js"
import * as Validation from "../validation/index.js"
import * as AppendRejection from "./appendRejection.js"
import type { EventStoreDriver } from "./driver.js"

export const make = (driver: EventStoreDriver, limits: Validation.Limits) =>
(
  streamId: string,
  events: ReadonlyArray<EventData>,
  options?: AppendOptions
): Effect.Effect<AppendResult, AppendError> =>
  Effect.gen(function*() {
    const prepared = yield* Validation.prepareAppend(streamId, events, options?.expectedVersion, limits)
    const attempt = yield* driver.append(prepared)
    if (attempt._tag === "Appended") return { streamVersion: attempt.streamVersion, positions: attempt.positions }
    // A tombstone wins over idempotency, as in EventStoreDB: the answer does not
    // depend on whether a scavenge has removed the stream's events yet.
    if (attempt.reason === "tombstoned") return yield* new StreamDeleted({ streamId })
    return yield* AppendRejection.classify(prepared, attempt.actual, attempt.stored)
  }).pipe(Effect.withSpan("EventStore.append", {
    attributes: { streamId, events: Array.isArray(events) ? events.length : 0 },
    // Capturing a stack for every append costs more than the rest of the span.
    captureStackTrace: false
  }))
