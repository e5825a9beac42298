/**
 * Invariant 2: the expected-version check of an append, every case on a new
 * and on an existing stream. A conflict is a `ConcurrencyError` that names the
 * stream, the expectation and the actual version, and stores nothing.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { ExpectedVersion } from "../../src/ExpectedVersion.js"
import {
  append,
  type Backend,
  events,
  expectIncreasing,
  failsWith,
  idsOf,
  leavesStoreUnchanged,
  makeTest,
  range,
  readAll,
  readStream,
  streamVersion,
  versionsOf
} from "../support/Harness.js"

interface Case {
  /** `undefined`: no `expectedVersion` option at all. */
  readonly expected: ExpectedVersion | undefined
  /** The stream's version before the append; 0: it does not exist. */
  readonly at: number
  readonly succeeds: boolean
}

// Written out rather than computed, so that the table is the specification.
const cases: ReadonlyArray<Case> = [
  { expected: undefined, at: 0, succeeds: true },
  { expected: undefined, at: 2, succeeds: true },
  { expected: "any", at: 0, succeeds: true },
  { expected: "any", at: 2, succeeds: true },
  { expected: "no_stream", at: 0, succeeds: true },
  { expected: "no_stream", at: 2, succeeds: false },
  { expected: "stream_exists", at: 0, succeeds: false },
  { expected: "stream_exists", at: 2, succeeds: true },
  { expected: 0, at: 0, succeeds: true },
  { expected: 0, at: 2, succeeds: false },
  { expected: 1, at: 0, succeeds: false },
  { expected: 1, at: 2, succeeds: false },
  { expected: 2, at: 0, succeeds: false },
  { expected: 2, at: 2, succeeds: true },
  { expected: 3, at: 2, succeeds: false },
  { expected: 7, at: 2, succeeds: false }
]

const describeExpected = (expected: ExpectedVersion | undefined): string =>
  expected === undefined
    ? "without an expected version (any)"
    : typeof expected === "number"
    ? `with expected version ${expected}${expected === 0 ? " (no_stream)" : ""}`
    : `with expected version ${expected}`

const describeStream = (at: number): string => at === 0 ? "a stream that does not exist" : `a stream at version ${at}`

/** How a `ConcurrencyError` reports the expectation: version 0 is reported as no_stream, its one spelling. */
const reported = (expected: ExpectedVersion): ExpectedVersion => expected === 0 ? "no_stream" : expected

export const expectedVersionCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("expected version", () => {
    for (const { at, expected, succeeds } of cases) {
      const options = expected === undefined ? undefined : { expectedVersion: expected }
      const streamId = "Order-1"

      // Another stream, longer than this one, shows that the check is per stream.
      const given = Effect.gen(function*() {
        yield* append("Order-other", events(5, "Other"))
        if (at > 0) {
          yield* append(streamId, events(1, "Seed"), { expectedVersion: "no_stream" })
          yield* append(streamId, events(at - 1, "More"), { expectedVersion: 1 })
        }
        return yield* readAll()
      })

      if (succeeds) {
        test(
          `append ${describeExpected(expected)} to ${describeStream(at)} succeeds and stores the events at versions ${
            at + 1
          } and ${at + 2}`,
          () =>
            Effect.gen(function*() {
              const before = yield* given
              const batch = events(2, "Added")
              const result = yield* append(streamId, batch, options)

              expect(result.streamVersion).toBe(at + 2)
              expect(result.positions).toHaveLength(2)
              expectIncreasing([...before.map((e) => e.position), ...result.positions])
              expect(yield* streamVersion(streamId)).toEqual(Option.some(at + 2))

              const stream = yield* readStream(streamId)
              expect(versionsOf(stream)).toEqual(range(1, at + 2))
              expect(idsOf(stream.slice(at))).toEqual(idsOf(batch))

              const after = yield* readAll()
              expect(after.slice(0, before.length)).toEqual(before)
              expect(idsOf(after.slice(before.length))).toEqual(idsOf(batch))
              expect(after.slice(before.length).map((e) => e.position)).toEqual(result.positions)
            })
        )
      } else {
        test(
          `append ${describeExpected(expected)} to ${
            describeStream(at)
          } fails with ConcurrencyError and stores nothing`,
          () =>
            Effect.gen(function*() {
              yield* given
              const error = yield* leavesStoreUnchanged(
                failsWith("ConcurrencyError")(append(streamId, events(2, "Rejected"), options)),
                [streamId]
              )
              expect(error.streamId).toBe(streamId)
              expect(error.expected).toEqual(reported(expected ?? "any"))
              expect(error.actual).toBe(at)
              expect(yield* streamVersion(streamId)).toEqual(at === 0 ? Option.none() : Option.some(at))

              // The conflict used up no version: the right expectation gets the next one.
              const retry = yield* append(streamId, events(1, "Next"), { expectedVersion: at })
              expect(retry.streamVersion).toBe(at + 1)
              expect(versionsOf(yield* readStream(streamId))).toEqual(range(1, at + 1))
            })
        )
      }
    }

    test("an append with expected version n after a conflict at n succeeds once the caller re-reads the version", () =>
      Effect.gen(function*() {
        yield* append("Cart-1", events(2), { expectedVersion: "no_stream" })
        // Two writers read version 2; the first one wins.
        yield* append("Cart-1", events(1, "First"), { expectedVersion: 2 })
        const conflict = yield* failsWith("ConcurrencyError")(
          append("Cart-1", events(1, "Second"), { expectedVersion: 2 })
        )
        expect(conflict.actual).toBe(3)
        const version = Option.getOrElse(yield* streamVersion("Cart-1"), () => 0)
        const result = yield* append("Cart-1", events(1, "Second"), { expectedVersion: version })
        expect(result.streamVersion).toBe(4)
        expect((yield* readStream("Cart-1")).map((e) => e.eventType)).toEqual([
          "Event1",
          "Event2",
          "First1",
          "Second1"
        ])
      }))

    test("ConcurrencyError's message names the stream, the expectation and the actual version", () =>
      Effect.gen(function*() {
        yield* append("Order-9", events(2))
        const error = yield* failsWith("ConcurrencyError")(append("Order-9", events(1), { expectedVersion: 5 }))
        expect(error.message).toContain("Order-9")
        expect(error.message).toContain("5")
        expect(error.message).toContain("2")
      }))
  })
}
