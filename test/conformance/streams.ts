/**
 * What the store says about streams: a stream's version, and the list of
 * streams in stream id (code point) order.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  append,
  type Backend,
  events,
  failsWith,
  listStreams,
  makeTest,
  nth,
  streamVersion
} from "../support/Harness.js"

/**
 * Stream ids in code point order, deliberately written down in another order.
 * U+FF61 sorts before U+1F600 by code point but after it by UTF-16 code unit
 * (a surrogate pair starts with 0xD83D), so a JavaScript string comparison
 * gets the last two wrong.
 */
const codePointOrder = [
  "Cart-1",
  "Order",
  "Order-1",
  "Order-10",
  "Order-2",
  "Order-x-y",
  "Orderly-1",
  "order-3",
  "zeta-1",
  "Émile-1",
  "Ｘ-1\uff61",
  "😀-1"
]
const writeOrder = [
  "Order-2",
  "😀-1",
  "Cart-1",
  "order-3",
  "Order",
  "Ｘ-1\uff61",
  "Order-x-y",
  "Émile-1",
  "Order-10",
  "zeta-1",
  "Orderly-1",
  "Order-1"
]

const given = Effect.gen(function*() {
  for (const [i, streamId] of writeOrder.entries()) {
    yield* append(streamId, events((i % 3) + 1))
  }
})

const versionOf = (streamId: string): number => (writeOrder.indexOf(streamId) % 3) + 1

const ids = (streams: ReadonlyArray<{ readonly streamId: string }>) => streams.map((s) => s.streamId)

export const streamCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("streamVersion", () => {
    test("streamVersion of a stream that does not exist is none", () =>
      Effect.gen(function*() {
        expect(yield* streamVersion("Order-1")).toEqual(Option.none())
        yield* append("Order-2", events(2))
        expect(yield* streamVersion("Order-1")).toEqual(Option.none())
      }))

    test("streamVersion is the version of the stream's last event, after every append", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(3))
        yield* append("Order-2", events(5))
        yield* append("Order-1", events(1))
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(4))
        expect(yield* streamVersion("Order-2")).toEqual(Option.some(5))
      }))

    test("streamVersion does not change when an append fails", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        yield* failsWith("ConcurrencyError")(append("Order-1", events(1), { expectedVersion: 1 }))
        yield* failsWith("ConcurrencyError")(append("Order-3", events(1), { expectedVersion: "stream_exists" }))
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(2))
        expect(yield* streamVersion("Order-3")).toEqual(Option.none())
      }))
  })

  describe("listStreams", () => {
    test("listStreams of an empty store is empty", () =>
      Effect.gen(function*() {
        expect(yield* listStreams()).toEqual([])
        expect(yield* listStreams({ category: "Order", after: "Order-1", limit: 2 })).toEqual([])
      }))

    test("listStreams lists every stream once, in code point order of stream ids, with category and version", () =>
      Effect.gen(function*() {
        yield* given
        const streams = yield* listStreams()
        expect(ids(streams)).toEqual(codePointOrder)
        for (const info of streams) {
          expect(info.version).toBe(versionOf(info.streamId))
          expect(info.category).toBe(info.streamId.split("-")[0])
        }
      }))

    test("a stream's createdAt stays and its updatedAt moves forward with each append", () =>
      Effect.gen(function*() {
        const before = Date.now()
        yield* append("Order-1", events(1))
        const [created] = yield* listStreams()
        expect(created?.createdAt).toBeInstanceOf(Date)
        expect(created?.updatedAt).toBeInstanceOf(Date)
        if (created === undefined) return
        expect(created.createdAt.getTime()).toBeGreaterThanOrEqual(before - 60_000)
        expect(created.updatedAt.getTime()).toBeGreaterThanOrEqual(created.createdAt.getTime())
        yield* Effect.sleep("5 millis")
        yield* append("Order-1", events(2))
        const [updated] = yield* listStreams()
        expect(updated?.version).toBe(3)
        expect(updated?.createdAt).toEqual(created.createdAt)
        expect(updated?.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime())
      }))

    test("listStreams after a stream id starts with the next stream id, whether the given one exists or not", () =>
      Effect.gen(function*() {
        yield* given
        expect(ids(yield* listStreams({ after: "Order-1" }))).toEqual(codePointOrder.slice(3))
        expect(ids(yield* listStreams({ after: "Order-11" }))).toEqual(codePointOrder.slice(4))
        expect(ids(yield* listStreams({ after: "A" }))).toEqual(codePointOrder)
        expect(ids(yield* listStreams({ after: "Ｘ-1\uff61" }))).toEqual(["😀-1"])
        expect(ids(yield* listStreams({ after: "😀-1" }))).toEqual([])
      }))

    test("listStreams of a category lists only the streams whose id before the first dash is the category", () =>
      Effect.gen(function*() {
        yield* given
        expect(ids(yield* listStreams({ category: "Order" }))).toEqual([
          "Order",
          "Order-1",
          "Order-10",
          "Order-2",
          "Order-x-y"
        ])
        expect(ids(yield* listStreams({ category: "order" }))).toEqual(["order-3"])
        expect(ids(yield* listStreams({ category: "Orderly" }))).toEqual(["Orderly-1"])
        expect(ids(yield* listStreams({ category: "😀" }))).toEqual(["😀-1"])
        expect(ids(yield* listStreams({ category: "Ord" }))).toEqual([])
      }))

    test("listStreams with a limit lists the first streams only", () =>
      Effect.gen(function*() {
        yield* given
        expect(ids(yield* listStreams({ limit: 1 }))).toEqual(codePointOrder.slice(0, 1))
        expect(ids(yield* listStreams({ limit: 5 }))).toEqual(codePointOrder.slice(0, 5))
        expect(ids(yield* listStreams({ limit: 100 }))).toEqual(codePointOrder)
      }))

    for (const batchSize of [1, 2, 5]) {
      test(`listStreams with batchSize ${batchSize} lists the same streams, also with after, category and a limit that crosses a page`, () =>
        Effect.gen(function*() {
          yield* given
          const all = yield* listStreams()
          expect(yield* listStreams({ batchSize })).toEqual(all)
          expect(yield* listStreams({ batchSize, limit: 7 })).toEqual(all.slice(0, 7))
          expect(ids(yield* listStreams({ batchSize, after: nth(codePointOrder, 1), limit: 3 }))).toEqual(
            codePointOrder.slice(2, 5)
          )
          expect(ids(yield* listStreams({ batchSize, category: "Order", after: "Order-1", limit: 3 }))).toEqual([
            "Order-10",
            "Order-2",
            "Order-x-y"
          ])
        }))
    }

    test("listStreams does not list a stream whose only append failed", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1))
        yield* failsWith("ConcurrencyError")(append("Order-2", events(1), { expectedVersion: 3 }))
        yield* failsWith("InvalidInput")(append("Order-3", []))
        expect(ids(yield* listStreams())).toEqual(["Order-1"])
      }))
  })
}
