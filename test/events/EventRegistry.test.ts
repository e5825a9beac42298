/**
 * The registry on its own, without a store: declarations are checked when it
 * is built, and `decode` turns stored events of every version into the
 * current shape, or into an `EventDecodeError` that names the event.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, ParseResult, Schema } from "effect"
import { BankEvents } from "../../examples/bank-account/events.js"
import { EventDecodeError } from "../../src/Errors.js"
import * as EventRegistry from "../../src/events/EventRegistry.js"
import * as EventType from "../../src/events/EventType.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import { Properties } from "../../src/testing/index.js"
import { OrderCancelled, OrderEvents, OrderPlaced, OrderPlacedV1, OrderPlacedV2 } from "./fixtures.js"

const stored = (eventType: string, schemaVersion: number, data: unknown): RecordedEvent => ({
  eventId: "0190f5a2-7c1e-7a3b-9d1e-2f3a4b5c6d7e",
  streamId: "Order-7",
  streamVersion: 3,
  position: 42n,
  eventType,
  schemaVersion,
  data,
  metadata: {},
  recordedAt: new Date(0)
})

const problems = (...types: ReadonlyArray<EventType.Any>) =>
  Either.match(EventRegistry.validate(...types), {
    onLeft: (error) => error.problems,
    onRight: () => []
  })

const V1 = Schema.Struct({ a: Schema.String })

describe("EventRegistry construction", () => {
  it("accepts complete chains", () => {
    expect(problems(OrderPlaced, OrderCancelled)).toEqual([])
    expect(OrderEvents.names).toEqual(["OrderPlaced", "OrderCancelled"])
  })

  it("refuses a gap in a chain: v1 → v3 with no upcaster from v2", () => {
    const gap = EventType.make("Gap", { version: 3, schema: V1, upcasters: { 1: EventType.upcast(V1, (v) => v) } })
    expect(problems(gap)).toEqual([
      `"Gap": no upcaster from version 2: events stored at that version could not be read as version 3`
    ])
  })

  it("refuses a chain with no upcasters at all below the current version", () => {
    expect(problems(EventType.make("Bare", { version: 3, schema: V1 }))).toEqual([
      `"Bare": no upcaster from version 1, 2: events stored at those versions could not be read as version 3`
    ])
  })

  it("refuses an upcaster from a version that is not older than the current one", () => {
    const tooHigh = EventType.make("TooHigh", {
      version: 2,
      schema: V1,
      upcasters: { 1: EventType.upcast(V1, (v) => v), 3: EventType.upcast(V1, (v) => v) }
    })
    const fromCurrent = EventType.make("FromCurrent", {
      version: 2,
      schema: V1,
      upcasters: { 1: EventType.upcast(V1, (v) => v), 2: EventType.upcast(V1, (v) => v) }
    })
    expect(problems(tooHigh, fromCurrent)).toEqual([
      `"TooHigh": there is an upcaster from version 3, but the current version is 2 (is the version too low?)`,
      `"FromCurrent": there is an upcaster from version 2, but the current version is 2 (the current version needs no upcaster)`
    ])
  })

  it("refuses duplicate names, bad names, bad versions and things that are not upcasters", () => {
    const result = problems(
      OrderPlaced,
      EventType.make("OrderPlaced", { schema: V1 }),
      EventType.make("", { schema: V1 }),
      EventType.make("Zero", { version: 0, schema: V1 }),
      EventType.make("Odd", { version: 2, schema: V1, upcasters: { 1: { _tag: "Function", schema: V1 } as never } })
    )
    expect(result).toEqual([
      `event type "": must be a non-empty string`,
      `"Zero": the current version 0 is not a positive integer`,
      `"Odd": the upcaster from version 1 is not an upcaster (use EventType.upcast)`,
      `"OrderPlaced" is declared twice`
    ])
  })

  it("make throws the same problems as a typed error, naming every one", () => {
    const gap = EventType.make("Gap", { version: 2, schema: V1 })
    expect(() => EventRegistry.make(gap, gap)).toThrow(EventRegistry.InvalidEventRegistry)
    expect(() => EventRegistry.make(gap, gap)).toThrow(
      /Invalid event registry:\n {2}- "Gap": no upcaster from version 1.*\n {2}- "Gap" is declared twice/
    )
  })
})

describe("EventRegistry.decode", () => {
  it.effect("reads every stored version as the current shape", () =>
    Effect.gen(function*() {
      const decodeData = (schemaVersion: number, data: unknown) =>
        EventRegistry.decode(OrderEvents, stored("OrderPlaced", schemaVersion, data)).pipe(
          Effect.map(Option.map((event) => EventRegistry.isDecoded(event) ? event.data : undefined))
        )
      expect(yield* decodeData(1, { item: "book" })).toEqual(
        Option.some({ items: [{ sku: "book", quantity: 1 }], placedAt: new Date(0) })
      )
      expect(yield* decodeData(2, { items: ["pen", "ink"] })).toEqual(
        Option.some({ items: [{ sku: "pen", quantity: 1 }, { sku: "ink", quantity: 1 }], placedAt: new Date(0) })
      )
      expect(yield* decodeData(3, { items: [{ sku: "mug", quantity: 2 }], placedAt: "2024-05-01T10:00:00.000Z" }))
        .toEqual(
          Option.some({ items: [{ sku: "mug", quantity: 2 }], placedAt: new Date("2024-05-01T10:00:00.000Z") })
        )
    }))

  it.effect("keeps the stored event's fields, with the stored schema version", () =>
    Effect.gen(function*() {
      const event = yield* EventRegistry.decode(OrderEvents, stored("OrderPlaced", 1, { item: "book" }))
      expect(Option.getOrThrow(event)).toMatchObject({
        type: "OrderPlaced",
        eventType: "OrderPlaced",
        schemaVersion: 1,
        streamId: "Order-7",
        streamVersion: 3,
        position: 42n
      })
    }))

  it.effect("a decode failure names the stream, version, position, type and schema version, with the parse issue", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(EventRegistry.decode(OrderEvents, stored("OrderPlaced", 2, { items: "pen" })))
      expect(error).toBeInstanceOf(EventDecodeError)
      expect(error).toMatchObject({
        streamId: "Order-7",
        streamVersion: 3,
        position: 42n,
        eventType: "OrderPlaced",
        schemaVersion: 2,
        reason: "InvalidData"
      })
      expect(error.issue).toMatch(/^upcasting version 2 to 3: /)
      expect(error.issue).toMatch(/\["items"\][\s\S]*Expected ReadonlyArray<string>, actual "pen"/)
      expect(error.message).toMatch(
        /^Could not decode event "OrderPlaced" \(schema version 2\) at "Order-7" version 3, position 42: /
      )
      expect(error.cause).toBeInstanceOf(ParseResult.ParseError)
    }))

  it.effect("an upcaster that throws is a decode failure, not a defect", () =>
    Effect.gen(function*() {
      const Fragile = EventType.make("Fragile", {
        version: 2,
        schema: V1,
        upcasters: {
          1: EventType.upcast(V1, () => {
            throw new Error("no luck")
          })
        }
      })
      const error = yield* Effect.flip(
        EventRegistry.decode(EventRegistry.make(Fragile), stored("Fragile", 1, { a: "x" }))
      )
      expect(error.reason).toBe("InvalidData")
      expect(error.issue).toBe("the upcaster from version 1 threw: no luck")
    }))

  it.effect("what an upcaster produces is checked by the current schema", () =>
    Effect.gen(function*() {
      const Sloppy = EventType.make("Sloppy", {
        version: 2,
        schema: Schema.Struct({ a: Schema.String, b: Schema.Number }),
        upcasters: { 1: EventType.upcast(V1, (v1) => ({ ...v1, b: "not a number" })) }
      })
      const error = yield* Effect.flip(
        EventRegistry.decode(EventRegistry.make(Sloppy), stored("Sloppy", 1, { a: "x" }))
      )
      expect(error.issue).toMatch(/^as version 2: [\s\S]*\["b"\][\s\S]*Expected number/)
    }))

  it.effect("a schema version newer than the registry knows fails, under every policy", () =>
    Effect.gen(function*() {
      for (const policy of ["fail", "skip", "passthrough"] as const) {
        const error = yield* Effect.flip(EventRegistry.decode(OrderEvents, stored("OrderPlaced", 4, {}), policy))
        expect(error.reason).toBe("UnknownSchemaVersion")
        expect(error.issue).toBe("the registry knows versions 1 to 3; this event was written by newer code")
      }
    }))

  it.effect("an unknown event type fails, is skipped or passes through raw, as the policy says", () =>
    Effect.gen(function*() {
      const audit = stored("OrderAudited", 1, { by: "ops" })
      const error = yield* Effect.flip(EventRegistry.decode(OrderEvents, audit))
      expect(error).toMatchObject({
        reason: "UnknownEventType",
        eventType: "OrderAudited",
        schemaVersion: 1,
        position: 42n
      })
      expect(yield* EventRegistry.decode(OrderEvents, audit, "skip")).toEqual(Option.none())
      const raw = Option.getOrThrow(yield* EventRegistry.decode(OrderEvents, audit, "passthrough"))
      expect(raw).toBe(audit)
      expect(EventRegistry.isDecoded(raw)).toBe(false)
    }))
})

describe("EventRegistry.encode", () => {
  it.effect("encodes with the current schema and stores its version", () =>
    Effect.gen(function*() {
      const data = yield* EventRegistry.encode(
        OrderEvents,
        { ...OrderCancelled.make({ reason: "late", refund: 12345678901234567890n }), metadata: { correlationId: "c" } }
      )
      expect(data).toEqual({
        eventType: "OrderCancelled",
        schemaVersion: 1,
        data: { reason: "late", refund: "12345678901234567890" },
        metadata: { correlationId: "c" }
      })
    }))

  it.effect("data that does not encode is an InvalidInput naming the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        EventRegistry.encode(
          OrderEvents,
          OrderPlaced.make({ items: [{ sku: "x", quantity: -1 }], placedAt: new Date(0) }),
          "events[0]"
        )
      )
      expect(error._tag).toBe("InvalidInput")
      expect(error.field).toBe("events[0].data")
      expect(error.reason).toMatch(/quantity[\s\S]*Expected a positive number, actual -1/)
      const unknown = yield* Effect.flip(EventRegistry.encode(OrderEvents, { type: "Nope", data: {} } as never))
      expect(unknown.field).toBe("event.type")
    }))
})

describe("EventType", () => {
  it("makes events and recognises them", () => {
    const event = OrderCancelled.make({ reason: "r" })
    expect(event).toEqual({ type: "OrderCancelled", data: { reason: "r" } })
    expect(OrderCancelled.is(event)).toBe(true)
    expect(OrderPlaced.is(event)).toBe(false)
  })

  it("keeps old schemas usable on their own", () => {
    expect(Schema.decodeUnknownSync(OrderPlacedV1)({ item: "a" })).toEqual({ item: "a" })
    expect(Schema.decodeUnknownSync(OrderPlacedV2)({ items: [] })).toEqual({ items: [] })
  })
})

describe("round trips generated from the schemas", () => {
  it("every event type of the order registry survives encode → JSON → decode", () => Properties.roundTrip(OrderEvents))
  it("every event type of the bank example survives encode → JSON → decode", () => Properties.roundTrip(BankEvents))
})
