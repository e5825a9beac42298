/**
 * Invariants 1 and 2: appends are all or nothing, versions count 1, 2, 3 …
 * without gaps, and the result tells the caller where the events landed.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import {
  append,
  type Backend,
  event,
  events,
  expectIncreasing,
  failsWith,
  idsOf,
  leavesStoreUnchanged,
  makeTest,
  nth,
  positionsOf,
  range,
  readAll,
  readStream,
  streamVersion,
  uuid,
  versionsOf
} from "../support/Harness.js"

export const appendCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("append", () => {
    test("an append returns the stream's new version and one position per event, in the order given", () =>
      Effect.gen(function*() {
        const first = yield* append("Order-1", events(3))
        expect(first.streamVersion).toBe(3)
        expect(first.positions).toHaveLength(3)
        expectIncreasing(first.positions)
        for (const position of first.positions) expect(typeof position).toBe("bigint")

        const second = yield* append("Order-1", events(1, "Next"))
        expect(second.streamVersion).toBe(4)
        expect(second.positions).toHaveLength(1)
        expectIncreasing([...first.positions, ...second.positions])
      }))

    test("the positions of an append are the positions readAll and readStream report for its events", () =>
      Effect.gen(function*() {
        const batch = events(4)
        yield* append("Order-0", events(2, "Before"))
        const result = yield* append("Order-1", batch)
        yield* append("Order-2", events(2, "After"))
        const all = yield* readAll()
        const mine = all.filter((e) => e.streamId === "Order-1")
        expect(idsOf(mine)).toEqual(idsOf(batch))
        expect(positionsOf(mine)).toEqual(result.positions)
        expect(positionsOf(yield* readStream("Order-1"))).toEqual(result.positions)
      }))

    test("positions increase across appends to different streams, in the order the appends happened", () =>
      Effect.gen(function*() {
        const a = yield* append("A-1", events(2))
        const b = yield* append("B-1", events(1))
        const c = yield* append("A-1", events(2))
        const d = yield* append("C-1", events(3))
        expectIncreasing([...a.positions, ...b.positions, ...c.positions, ...d.positions])
      }))

    test("an append of several events is stored at consecutive versions of its stream", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        yield* append("Order-2", events(5))
        yield* append("Order-1", events(3))
        expect(versionsOf(yield* readStream("Order-1"))).toEqual(range(1, 5))
        expect(versionsOf(yield* readStream("Order-2"))).toEqual(range(1, 5))
      }))

    test("an append whose third event is invalid fails with InvalidInput on events[2] and stores none of its events", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1))
        const error = yield* leavesStoreUnchanged(
          failsWith("InvalidInput")(append("Order-1", [event("A"), event("B"), event("C", { amount: 1n })])),
          ["Order-1"]
        )
        expect(error.field).toBe("events[2].data")
      }))

    test("an append whose second event id is already stored elsewhere fails with DuplicateEventId and stores none of its events", () =>
      Effect.gen(function*() {
        const taken = uuid()
        yield* append("Order-1", [event("A", {}, { eventId: taken })])
        const batch = [event("B"), event("C", {}, { eventId: taken }), event("D")]
        const error = yield* leavesStoreUnchanged(failsWith("DuplicateEventId")(append("Order-2", batch)), [
          "Order-1",
          "Order-2"
        ])
        expect(error.eventId).toBe(taken)
        expect(yield* streamVersion("Order-2")).toEqual(Option.none())
        const stored = new Set((yield* readAll()).map((e) => e.eventId))
        for (const e of batch) if (e.eventId !== taken) expect(stored.has(e.eventId ?? "")).toBe(false)
      }))

    test("a failed append uses up no version: the next append to the stream gets the next version", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        yield* failsWith("ConcurrencyError")(append("Order-1", events(2), { expectedVersion: 5 }))
        yield* failsWith("InvalidInput")(append("Order-1", [event("A", Number.NaN)]))
        const taken = nth(yield* readAll(), 0).eventId
        yield* failsWith("DuplicateEventId")(append("Order-1", [event("A"), event("B", {}, { eventId: taken })]))
        const result = yield* append("Order-1", events(1, "Last"))
        expect(result.streamVersion).toBe(3)
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([1, 2, 3])
      }))

    test("of ten concurrent appends expecting the same version, exactly one succeeds and the others fail with ConcurrencyError", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        const outcomes = yield* Effect.forEach(
          range(1, 10),
          (i) => Effect.either(append("Order-1", events(2, `Writer${i}-`), { expectedVersion: 2 })),
          { concurrency: "unbounded" }
        )
        const successes = outcomes.filter(Either.isRight)
        expect(successes).toHaveLength(1)
        expect(successes[0]?.right.streamVersion).toBe(4)
        for (const outcome of outcomes) {
          if (Either.isLeft(outcome)) {
            expect(outcome.left._tag).toBe("ConcurrencyError")
            if (outcome.left._tag === "ConcurrencyError") {
              expect(outcome.left.streamId).toBe("Order-1")
              expect(outcome.left.expected).toBe(2)
            }
          }
        }
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([1, 2, 3, 4])
        expect(yield* readAll()).toHaveLength(4)
      }))

    test("of ten concurrent appends to a new stream expecting no_stream, exactly one succeeds", () =>
      Effect.gen(function*() {
        const outcomes = yield* Effect.forEach(
          range(1, 10),
          (i) => Effect.either(append("Order-1", events(1, `Writer${i}-`), { expectedVersion: "no_stream" })),
          { concurrency: "unbounded" }
        )
        expect(outcomes.filter(Either.isRight)).toHaveLength(1)
        for (const outcome of outcomes) {
          if (Either.isLeft(outcome)) expect(outcome.left._tag).toBe("ConcurrencyError")
        }
        expect(yield* readAll()).toHaveLength(1)
      }))

    test("concurrent appends with any to one stream all succeed, at versions 1..n without gaps or overlaps", () =>
      Effect.gen(function*() {
        const results = yield* Effect.forEach(
          range(1, 10),
          (i) => append("Order-1", events(2, `Writer${i}-`)),
          { concurrency: "unbounded" }
        )
        expect(results.map((r) => r.streamVersion).sort((a, b) => a - b)).toEqual(range(1, 10).map((i) => 2 * i))
        const stream = yield* readStream("Order-1")
        expect(versionsOf(stream)).toEqual(range(1, 20))
        // Each append's two events are adjacent and in order.
        for (const result of results) {
          const mine = stream.filter((e) => result.positions.includes(e.position))
          expect(versionsOf(mine)).toEqual([result.streamVersion - 1, result.streamVersion])
        }
        const all = yield* readAll()
        expect(all).toHaveLength(20)
        expectIncreasing(positionsOf(all))
      }))

    test("concurrent retries of one append all succeed with the same result and store its events once", () =>
      Effect.gen(function*() {
        for (const expectedVersion of ["any", "no_stream"] as const) {
          const streamId = `Order-${expectedVersion}`
          const batch = events(3)
          const results = yield* Effect.forEach(
            range(1, 5),
            () => append(streamId, batch, { expectedVersion }),
            { concurrency: "unbounded" }
          )
          for (const result of results) expect(result).toEqual(results[0])
          expect(results[0]?.streamVersion).toBe(3)
          expect(idsOf(yield* readStream(streamId))).toEqual(idsOf(batch))
        }
        expect(yield* readAll()).toHaveLength(6)
      }))
  })
}
