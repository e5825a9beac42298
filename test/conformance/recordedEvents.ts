/**
 * What a stored event carries, and invariant 1: a stored event never changes.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import {
  append,
  type Backend,
  event,
  events,
  lowerCaseUuid,
  makeTest,
  nth,
  readAll,
  readStream,
  uuid
} from "../support/Harness.js"

const nested = {
  order: {
    id: "o-1",
    lines: [
      { sku: "A-1", quantity: 2, price: 9.99, tags: ["red", "sale"] },
      { sku: "B-2", quantity: 1, price: 0.1, tags: [] }
    ],
    customer: { name: "Zoë Ångström", address: null, vip: false, notes: {} },
    deep: { a: { b: { c: { d: { e: { f: [1, [2, [3, [4]]]] } } } } } }
  },
  total: -12.5,
  count: 0,
  big: 9_007_199_254_740_991,
  exponent: 1.5e-10,
  flags: [true, false, null]
}

const unicode = {
  greek: "Ελληνικά",
  cjk: "漢字かなカナ한국어",
  rtl: "עברית العربية",
  emoji: "👩‍💻🚀🇪🇺",
  astral: "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  escapes: "quote \" backslash \\ tab \t newline \n",
  "ключ 🔑": "unicode key",
  combining: "e\u0301",
  bom: "\ufeff",
  lineSeparator: "\u2028\u2029"
}

const deeplyNested = (depth: number): unknown => {
  let value: unknown = "bottom"
  for (let i = 0; i < depth; i++) value = { level: value }
  return value
}

const roundTrips: ReadonlyArray<readonly [name: string, data: unknown]> = [
  ["nested objects and arrays", nested],
  ["unicode strings and keys", unicode],
  ["a deeply nested object", deeplyNested(100)],
  ["a top-level string", "just a string"],
  ["a top-level number", 42.25],
  ["zero", 0],
  ["true", true],
  ["null", null],
  ["an empty object", {}],
  ["an empty array", []],
  ["a top-level array", [1, "two", { three: 3 }, [4]]],
  ["an empty string and an empty key", { "": "" }],
  ["numbers at the edges of doubles", { max: 1.7976931348623157e308, min: 5e-324, negative: -9_007_199_254_740_991 }]
]

export const recordedEventCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("recorded events", () => {
    test("a recorded event carries its event id, stream id, version, position, type, schema version, data, metadata and recordedAt", () =>
      Effect.gen(function*() {
        const eventId = uuid()
        const metadata = { correlationId: "corr-1", causationId: "cause-1", tenant: "acme", trace: { span: 7 } }
        const before = Date.now()
        yield* append("Order-1", events(1, "Seed"))
        const result = yield* append("Order-1", [
          { eventId, eventType: "OrderPlaced", schemaVersion: 3, data: { total: 10 }, metadata }
        ])
        const after = Date.now()
        const [, recorded] = yield* readStream("Order-1")
        expect(recorded).toBeDefined()
        if (recorded === undefined) return
        expect(recorded.eventId).toBe(eventId)
        expect(recorded.streamId).toBe("Order-1")
        expect(recorded.streamVersion).toBe(2)
        expect(typeof recorded.position).toBe("bigint")
        expect(recorded.position).toBe(nth(result.positions, 0))
        expect(recorded.eventType).toBe("OrderPlaced")
        expect(recorded.schemaVersion).toBe(3)
        expect(recorded.data).toEqual({ total: 10 })
        expect(recorded.metadata).toEqual(metadata)
        expect(recorded.recordedAt).toBeInstanceOf(Date)
        // The database clock may differ a little from ours.
        const at = recorded.recordedAt.getTime()
        expect(at).toBeGreaterThanOrEqual(before - 60_000)
        expect(at).toBeLessThanOrEqual(after + 60_000)
        expect(Object.keys(recorded).sort()).toEqual([
          "data",
          "eventId",
          "eventType",
          "metadata",
          "position",
          "recordedAt",
          "schemaVersion",
          "streamId",
          "streamVersion"
        ])
      }))

    test("an event without an id gets a generated lower-case UUID, different for every event", () =>
      Effect.gen(function*() {
        yield* append("Order-1", [{ eventType: "A", data: 1 }, { eventType: "B", data: 2 }])
        yield* append("Order-2", [{ eventType: "C", data: 3 }])
        const all = yield* readAll()
        for (const e of all) expect(e.eventId).toMatch(lowerCaseUuid)
        expect(new Set(all.map((e) => e.eventId)).size).toBe(3)
      }))

    test("an event id given in upper case is stored in lower case", () =>
      Effect.gen(function*() {
        const eventId = uuid()
        yield* append("Order-1", [event("A", {}, { eventId: eventId.toUpperCase() })])
        const [stored] = yield* readAll()
        expect(stored?.eventId).toBe(eventId.toLowerCase())
      }))

    test("schemaVersion defaults to 1 and is kept when given", () =>
      Effect.gen(function*() {
        yield* append("Order-1", [
          { eventType: "A", data: {} },
          { eventType: "A", data: {}, schemaVersion: 1 },
          { eventType: "A", data: {}, schemaVersion: 2 },
          { eventType: "A", data: {}, schemaVersion: 2_147_483_647 }
        ])
        expect((yield* readStream("Order-1")).map((e) => e.schemaVersion)).toEqual([1, 1, 2, 2_147_483_647])
      }))

    for (const [name, data] of roundTrips) {
      test(`data round-trips: ${name}`, () =>
        Effect.gen(function*() {
          yield* append("Order-1", [event("Data", data)])
          const [fromStream] = yield* readStream("Order-1")
          const [fromAll] = yield* readAll()
          expect(fromStream?.data).toStrictEqual(data)
          expect(fromAll?.data).toStrictEqual(data)
        }))
    }

    test("a data property that is undefined is left out, as JSON.stringify does", () =>
      Effect.gen(function*() {
        yield* append("Order-1", [event("A", { kept: 1, dropped: undefined })])
        const [stored] = yield* readStream("Order-1")
        expect(stored?.data).toStrictEqual({ kept: 1 })
      }))

    test("metadata round-trips: correlationId, causationId and custom keys with nested JSON and unicode", () =>
      Effect.gen(function*() {
        const metadata = {
          correlationId: uuid(),
          causationId: uuid(),
          user: { id: 7, roles: ["admin", "ops"], name: "Zoë 👩‍💻" },
          source: "checkout",
          retries: 0,
          flags: [null, true]
        }
        yield* append("Order-1", [event("A", { a: 1 }, { metadata })])
        const [stored] = yield* readStream("Order-1")
        expect(stored?.metadata).toStrictEqual(metadata)
      }))

    test("metadata defaults to an empty object", () =>
      Effect.gen(function*() {
        yield* append("Order-1", [{ eventType: "A", data: null }])
        const [stored] = yield* readStream("Order-1")
        expect(stored?.metadata).toStrictEqual({})
        expect(stored?.data).toBeNull()
      }))

    test("recordedAt does not decrease along the log", () =>
      Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* append(`Order-${i % 2}`, events(2))
        const times = (yield* readAll()).map((e) => e.recordedAt.getTime())
        expect(times.every((t) => Number.isFinite(t))).toBe(true)
        expect([...times].sort((a, b) => a - b)).toEqual(times)
      }))

    test("a stored event never changes: mutating the appended data or a read event afterwards changes nothing stored", () =>
      Effect.gen(function*() {
        const data = { items: [{ sku: "A" }], total: 1 }
        const metadata = { correlationId: "c", custom: { n: 1 } }
        yield* append("Order-1", [event("A", data, { metadata })])
        data.items.push({ sku: "B" })
        data.total = 2
        metadata.custom.n = 2

        const [first] = yield* readStream("Order-1")
        expect(first?.data).toStrictEqual({ items: [{ sku: "A" }], total: 1 })
        expect(first?.metadata).toStrictEqual({ correlationId: "c", custom: { n: 1 } })
        // A store may hand out frozen values; then the mutation throws, which is fine too.
        try {
          const read = first?.data as { items: Array<unknown>; total: number }
          read.items.push("mutated")
          read.total = 99
        } catch {
          // frozen
        }
        const [again] = yield* readStream("Order-1")
        expect(again?.data).toStrictEqual({ items: [{ sku: "A" }], total: 1 })
        const [fromAll] = yield* readAll()
        expect(fromAll?.data).toStrictEqual({ items: [{ sku: "A" }], total: 1 })
      }))

    test("appending to one stream does not change the events of another", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        const before = yield* readStream("Order-1")
        yield* append("Order-2", events(3))
        yield* append("Order-1", events(1, "Later"))
        expect((yield* readStream("Order-1")).slice(0, 3)).toEqual(before)
      }))
  })
}
