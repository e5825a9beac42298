/**
 * Reading one stream: forward and backward, from a version, at most `limit`
 * events, in pages of `batchSize`, with the same events whatever the paging.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { EventStore, type ReadStreamOptions } from "../../src/EventStore.js"
import {
  append,
  type Backend,
  collect,
  events,
  failsWith,
  idsOf,
  makeTest,
  range,
  readAll,
  readStream,
  versionsOf
} from "../support/Harness.js"

interface Case {
  readonly options: ReadStreamOptions
  readonly versions: ReadonlyArray<number>
}

const down = (from: number, to: number): ReadonlyArray<number> => [...range(to, from)].reverse()

// A stream of 7 events; batch sizes 2 and 3 do not divide 7, 7 does.
const cases: ReadonlyArray<Case> = [
  { options: {}, versions: range(1, 7) },
  { options: { from: 3 }, versions: range(3, 7) },
  { options: { from: 0 }, versions: range(1, 7) },
  { options: { from: 7 }, versions: [7] },
  { options: { from: 8 }, versions: [] },
  { options: { from: 100 }, versions: [] },
  { options: { limit: 3 }, versions: [1, 2, 3] },
  { options: { limit: 7 }, versions: range(1, 7) },
  { options: { limit: 100 }, versions: range(1, 7) },
  { options: { from: 3, limit: 3 }, versions: [3, 4, 5] },
  { options: { from: 6, limit: 5 }, versions: [6, 7] },
  { options: { batchSize: 1 }, versions: range(1, 7) },
  { options: { batchSize: 2 }, versions: range(1, 7) },
  { options: { batchSize: 3 }, versions: range(1, 7) },
  { options: { batchSize: 7 }, versions: range(1, 7) },
  { options: { batchSize: 2, limit: 5 }, versions: range(1, 5) },
  { options: { batchSize: 3, limit: 6 }, versions: range(1, 6) },
  { options: { batchSize: 3, from: 2, limit: 4 }, versions: [2, 3, 4, 5] },
  { options: { batchSize: 2, from: 4 }, versions: [4, 5, 6, 7] },
  { options: { direction: "forward", batchSize: 3, from: 5, limit: 10 }, versions: [5, 6, 7] },
  { options: { direction: "backward" }, versions: down(7, 1) },
  { options: { direction: "backward", from: 5 }, versions: down(5, 1) },
  { options: { direction: "backward", from: 1 }, versions: [1] },
  { options: { direction: "backward", from: 0 }, versions: [] },
  { options: { direction: "backward", from: 100 }, versions: down(7, 1) },
  { options: { direction: "backward", limit: 3 }, versions: [7, 6, 5] },
  { options: { direction: "backward", batchSize: 1 }, versions: down(7, 1) },
  { options: { direction: "backward", batchSize: 2 }, versions: down(7, 1) },
  { options: { direction: "backward", batchSize: 3 }, versions: down(7, 1) },
  { options: { direction: "backward", batchSize: 7 }, versions: down(7, 1) },
  { options: { direction: "backward", batchSize: 2, from: 6, limit: 3 }, versions: [6, 5, 4] },
  { options: { direction: "backward", batchSize: 3, limit: 5 }, versions: [7, 6, 5, 4, 3] },
  { options: { direction: "backward", batchSize: 2, from: 3, limit: 10 }, versions: [3, 2, 1] }
]

const describeOptions = (options: ReadStreamOptions): string => {
  const parts = [
    options.direction === undefined ? undefined : options.direction,
    options.from === undefined ? undefined : `from ${options.from}`,
    options.limit === undefined ? undefined : `limit ${options.limit}`,
    options.batchSize === undefined ? undefined : `batchSize ${options.batchSize}`
  ].filter((part) => part !== undefined)
  return parts.length === 0 ? "without options" : parts.join(", ")
}

const describeVersions = (versions: ReadonlyArray<number>): string =>
  versions.length === 0 ? "nothing" : `versions ${versions.join(", ")}`

export const readStreamCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("readStream", () => {
    // Two streams written in turns, so that a read that leaks the other stream shows.
    const given = Effect.gen(function*() {
      const seven = events(7, "Mine")
      for (const [i, e] of seven.entries()) {
        yield* append("Order-1", [e], { expectedVersion: i })
        yield* append("Order-2", events(1, `Theirs${i}-`))
      }
      return seven
    })

    for (const { options, versions } of cases) {
      test(`readStream ${describeOptions(options)} of a stream of 7 events returns ${describeVersions(versions)}`, () =>
        Effect.gen(function*() {
          const seven = yield* given
          const read = yield* readStream("Order-1", options)
          expect(versionsOf(read)).toEqual(versions)
          expect(read.every((e) => e.streamId === "Order-1")).toBe(true)
          expect(idsOf(read)).toEqual(versions.map((v) => seven[v - 1]?.eventId))
        }))
    }

    test("readStream returns the same events readAll returns for the stream", () =>
      Effect.gen(function*() {
        yield* given
        const fromAll = (yield* readAll()).filter((e) => e.streamId === "Order-1")
        expect(yield* readStream("Order-1", { batchSize: 2 })).toEqual(fromAll)
        expect(yield* readStream("Order-1", { direction: "backward", batchSize: 3 })).toEqual([...fromAll].reverse())
      }))

    test("readStream of a stream that does not exist fails with StreamNotFound naming the stream", () =>
      Effect.gen(function*() {
        yield* given
        const error = yield* failsWith("StreamNotFound")(readStream("Order-3"))
        expect(error.streamId).toBe("Order-3")
        const backward = yield* failsWith("StreamNotFound")(readStream("Order-3", { direction: "backward", from: 2 }))
        expect(backward.streamId).toBe("Order-3")
      }))

    test("readStream of an empty store fails with StreamNotFound", () =>
      Effect.gen(function*() {
        const error = yield* failsWith("StreamNotFound")(readStream("Order-1"))
        expect(error.streamId).toBe("Order-1")
      }))

    test("stream ids are case-sensitive and exact: Order-1, order-1 and Order-1 with a trailing space are three streams", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        yield* append("order-1", events(1))
        yield* append("Order-1 ", events(3))
        expect(yield* readStream("Order-1")).toHaveLength(2)
        expect(yield* readStream("order-1")).toHaveLength(1)
        expect(yield* readStream("Order-1 ")).toHaveLength(3)
        yield* failsWith("StreamNotFound")(readStream("ORDER-1"))
      }))

    test("a stream whose id is a prefix of another's holds only its own events", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1))
        yield* append("Order-10", events(2))
        yield* append("Order-1-a", events(3))
        expect(yield* readStream("Order-1")).toHaveLength(1)
      }))

    test("readStream ends at the version the stream had when the read started: events appended while it runs are not listed", () =>
      Effect.gen(function*() {
        yield* given
        const seen = yield* collect(
          Stream.flatMap(EventStore, (store) => store.readStream("Order-1", { batchSize: 2 })).pipe(
            Stream.tap(() => append("Order-1", events(1, "Late")))
          )
        )
        expect(versionsOf(seen)).toEqual(range(1, 7))
        expect(versionsOf(yield* readStream("Order-1"))).toEqual(range(1, 14))
      }))

    test("a stream longer than the default batch size is read completely and in order", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(600))
        yield* append("Order-1", events(5, "Tail"))
        const forward = yield* readStream("Order-1")
        expect(versionsOf(forward)).toEqual(range(1, 605))
        const backward = yield* readStream("Order-1", { direction: "backward" })
        expect(versionsOf(backward)).toEqual(down(605, 1))
      }))
  })
}
