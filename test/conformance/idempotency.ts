/**
 * Invariant 3: appending the same event ids again at the same place of the
 * same stream succeeds with the first result and stores nothing; the same ids
 * anywhere else are an error.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { EventData } from "../../src/EventData.js"
import {
  append,
  type Backend,
  deleteStream,
  event,
  events,
  failsWith,
  idsOf,
  leavesStoreUnchanged,
  makeTest,
  nth,
  readAll,
  readStream,
  streamVersion,
  uuid
} from "../support/Harness.js"

const upperCased = (batch: ReadonlyArray<EventData>): ReadonlyArray<EventData> =>
  batch.map((e) => ({ ...e, eventId: e.eventId?.toUpperCase() }))

export const idempotencyCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("idempotent retries", () => {
    test("retrying an append with expected version any and the same event ids returns the same result and stores nothing new", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1, "Seed"))
        const batch = events(2)
        const first = yield* append("Order-1", batch)
        const retry = yield* leavesStoreUnchanged(append("Order-1", batch), ["Order-1"])
        expect(retry).toEqual(first)
        expect(retry.streamVersion).toBe(3)
      }))

    test("retrying an append with expected version no_stream and the same event ids returns the same result and stores nothing new", () =>
      Effect.gen(function*() {
        const batch = events(3)
        const first = yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        const retry = yield* leavesStoreUnchanged(append("Order-1", batch, { expectedVersion: "no_stream" }), [
          "Order-1"
        ])
        expect(retry).toEqual(first)
        expect(retry.streamVersion).toBe(3)
      }))

    test("retrying an append that re-created a soft-deleted stream with no_stream returns the first result and stores nothing new", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3, "Old"))
        yield* deleteStream("Order-1")
        const batch = events(2)
        const first = yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        expect(first.streamVersion).toBe(5)
        const retry = yield* leavesStoreUnchanged(append("Order-1", batch, { expectedVersion: "no_stream" }), [
          "Order-1"
        ])
        expect(retry).toEqual(first)
        // Also after the stream was deleted and re-created again since.
        yield* deleteStream("Order-1")
        yield* append("Order-1", events(1, "Newer"), { expectedVersion: "no_stream" })
        expect(yield* append("Order-1", batch, { expectedVersion: "no_stream" })).toEqual(first)
        // The same ids at the same place, but expecting the version before the delete: a conflict.
        const error = yield* failsWith("ConcurrencyError")(append("Order-1", batch, { expectedVersion: 3 }))
        expect(error).toMatchObject({ expected: 3, actual: 6 })
      }))

    test("retrying an append with expected version 0 and the same event ids returns the same result and stores nothing new", () =>
      Effect.gen(function*() {
        const batch = events(2)
        const first = yield* append("Order-1", batch, { expectedVersion: 0 })
        const retry = yield* leavesStoreUnchanged(append("Order-1", batch, { expectedVersion: 0 }), ["Order-1"])
        expect(retry).toEqual(first)
      }))

    test("retrying an append with expected version 2 and the same event ids returns the same result and stores nothing new", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2, "Seed"))
        const batch = events(2)
        const first = yield* append("Order-1", batch, { expectedVersion: 2 })
        const retry = yield* leavesStoreUnchanged(append("Order-1", batch, { expectedVersion: 2 }), ["Order-1"])
        expect(retry).toEqual(first)
        expect(retry.streamVersion).toBe(4)
      }))

    test("retrying an append with expected version stream_exists and the same event ids returns the same result", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1, "Seed"))
        const batch = events(2)
        const first = yield* append("Order-1", batch, { expectedVersion: "stream_exists" })
        const retry = yield* leavesStoreUnchanged(append("Order-1", batch, { expectedVersion: "stream_exists" }), [
          "Order-1"
        ])
        expect(retry).toEqual(first)
      }))

    test("a retry still returns the first result after the stream has moved on (any, no_stream and exact)", () =>
      Effect.gen(function*() {
        const created = events(2)
        const createdResult = yield* append("Order-1", created, { expectedVersion: "no_stream" })
        const exact = events(1)
        const exactResult = yield* append("Order-1", exact, { expectedVersion: 2 })
        const loose = events(1)
        const looseResult = yield* append("Order-1", loose)
        yield* append("Order-1", events(2, "Later"))

        yield* leavesStoreUnchanged(
          Effect.gen(function*() {
            expect(yield* append("Order-1", created, { expectedVersion: "no_stream" })).toEqual(createdResult)
            expect(yield* append("Order-1", exact, { expectedVersion: 2 })).toEqual(exactResult)
            expect(yield* append("Order-1", loose)).toEqual(looseResult)
          }),
          ["Order-1"]
        )
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(6))
      }))

    test("event ids are compared without regard to case: a retry with the ids in upper case is the same append", () =>
      Effect.gen(function*() {
        const batch = events(2)
        const first = yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        const retry = yield* leavesStoreUnchanged(
          append("Order-1", upperCased(batch), { expectedVersion: "no_stream" }),
          ["Order-1"]
        )
        expect(retry).toEqual(first)
      }))

    test("appending stored event ids to another stream fails with DuplicateEventId naming the stream and version that hold them", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1, "Seed"))
        const batch = events(2)
        yield* append("Order-1", batch)
        const error = yield* leavesStoreUnchanged(failsWith("DuplicateEventId")(append("Order-2", batch)), [
          "Order-1",
          "Order-2"
        ])
        expect(error.streamId).toBe("Order-2")
        expect(error.eventId).toBe(batch[0]?.eventId)
        expect(error.existingStreamId).toBe("Order-1")
        expect(error.existingVersion).toBe(2)
        expect(yield* streamVersion("Order-2")).toEqual(Option.none())
      }))

    test("appending stored event ids to another stream fails with DuplicateEventId also with expected version no_stream", () =>
      Effect.gen(function*() {
        const batch = events(1)
        yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        const error = yield* leavesStoreUnchanged(
          failsWith("DuplicateEventId")(append("Order-2", batch, { expectedVersion: "no_stream" })),
          ["Order-1", "Order-2"]
        )
        expect(error.existingStreamId).toBe("Order-1")
      }))

    test("appending stored event ids again at the stream's current version fails with DuplicateEventId and stores nothing", () =>
      Effect.gen(function*() {
        const batch = events(2)
        yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        const error = yield* leavesStoreUnchanged(
          failsWith("DuplicateEventId")(append("Order-1", batch, { expectedVersion: 2 })),
          ["Order-1"]
        )
        expect(error.streamId).toBe("Order-1")
        expect(error.existingStreamId).toBe("Order-1")
        expect(error.existingVersion).toBe(1)
      }))

    test("appending stored event ids with an exact version that is neither the original nor the current one fails with ConcurrencyError", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2, "Seed"))
        const batch = events(2)
        yield* append("Order-1", batch, { expectedVersion: 2 })
        const error = yield* leavesStoreUnchanged(
          failsWith("ConcurrencyError")(append("Order-1", batch, { expectedVersion: 1 })),
          ["Order-1"]
        )
        expect(error.expected).toBe(1)
        expect(error.actual).toBe(4)
      }))

    test("retrying with expected version no_stream after the ids were appended with any to an existing stream fails", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1, "Seed"))
        const batch = events(1)
        yield* append("Order-1", batch)
        const error = yield* leavesStoreUnchanged(
          failsWith("ConcurrencyError")(append("Order-1", batch, { expectedVersion: "no_stream" })),
          ["Order-1"]
        )
        expect(error.actual).toBe(2)
      }))

    test("the same ids in another order fail with DuplicateEventId and store nothing", () =>
      Effect.gen(function*() {
        const batch = events(3)
        yield* append("Order-1", batch)
        const reversed = [...batch].reverse()
        const error = yield* leavesStoreUnchanged(failsWith("DuplicateEventId")(append("Order-1", reversed)), [
          "Order-1"
        ])
        expect(error.streamId).toBe("Order-1")
      }))

    test("an append that overlaps a stored append in some ids fails with DuplicateEventId and stores none of its new events", () =>
      Effect.gen(function*() {
        const batch = events(2)
        yield* append("Order-1", batch)
        const fresh = event("Fresh")
        const overlapping = [nth(batch, 1), fresh]
        const error = yield* leavesStoreUnchanged(failsWith("DuplicateEventId")(append("Order-1", overlapping)), [
          "Order-1"
        ])
        expect(error.eventId).toBe(batch[1]?.eventId)
        expect(idsOf(yield* readAll())).not.toContain(fresh.eventId)
      }))

    test("an append that adds a new event after the stored ones of an earlier append fails and stores nothing", () =>
      Effect.gen(function*() {
        const batch = events(2)
        yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        const extended = [...batch, event("Extra")]
        const error = yield* leavesStoreUnchanged(
          Effect.flip(append("Order-1", extended, { expectedVersion: "no_stream" })),
          ["Order-1"]
        )
        expect(["ConcurrencyError", "DuplicateEventId"]).toContain(error._tag)
        expect(yield* readStream("Order-1")).toHaveLength(2)
      }))

    test("an append that overlaps a stored append of another stream fails with DuplicateEventId and stores none of its new events", () =>
      Effect.gen(function*() {
        const batch = events(2)
        yield* append("Order-1", batch)
        const fresh = event("Fresh")
        const error = yield* leavesStoreUnchanged(
          failsWith("DuplicateEventId")(append("Order-2", [fresh, nth(batch, 0)])),
          ["Order-1", "Order-2"]
        )
        expect(error.eventId).toBe(batch[0]?.eventId)
        expect(error.existingStreamId).toBe("Order-1")
      }))

    test("an append that repeats an event id within itself fails with InvalidInput on events[1].eventId and stores nothing", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1))
        const id = uuid()
        const error = yield* leavesStoreUnchanged(
          failsWith("InvalidInput")(
            append("Order-1", [event("A", {}, { eventId: id }), event("B", {}, { eventId: id })])
          ),
          ["Order-1"]
        )
        expect(error.field).toBe("events[1].eventId")
      }))

    test("an append that repeats an event id within itself in another case fails with InvalidInput", () =>
      Effect.gen(function*() {
        const id = uuid()
        const error = yield* leavesStoreUnchanged(
          failsWith("InvalidInput")(
            append("Order-1", [
              event("A", {}, { eventId: id }),
              event("B"),
              event("C", {}, { eventId: id.toUpperCase() })
            ])
          ),
          ["Order-1"]
        )
        expect(error.field).toBe("events[2].eventId")
      }))
  })
}
