/**
 * The typed store on every backend: rows written long ago at older schema
 * versions read back in the current shape through readStream and readAll;
 * every event type round-trips through the store; unknown types follow the
 * policy; a row that does not decode is an EventDecodeError naming it.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Arbitrary, Chunk, Effect, FastCheck, Option, Stream } from "effect"
import { EventDecodeError } from "../../src/Errors.js"
import * as EventRegistry from "../../src/events/EventRegistry.js"
import * as TypedEventStore from "../../src/events/TypedEventStore.js"
import { EventStore } from "../../src/EventStore.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import { deepEquals } from "../../src/testing/internal/equality.js"
import { startupTimeout } from "../support/wait.js"
import { backends, checkProperty, uniqueCategory, uniqueStream } from "./backends.js"
import { OldOrderEvents, OrderCancelled, OrderEvents, OrderPlaced } from "./fixtures.js"

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const dataOf = (
  events: ReadonlyArray<EventRegistry.Recorded<EventRegistry.Event<typeof OrderEvents>> | RecordedEvent>
) =>
  events.map((event) =>
    EventRegistry.isDecoded(event) ? { type: event.type, data: event.data } : { raw: event.eventType }
  )

/** The three shapes OrderPlaced had, as they sit in the table, and what each reads as today. */
const history = [
  { eventType: "OrderPlaced", schemaVersion: 1, data: { item: "book" } },
  { eventType: "OrderPlaced", schemaVersion: 2, data: { items: ["pen", "ink"] } },
  {
    eventType: "OrderPlaced",
    schemaVersion: 3,
    data: { items: [{ sku: "mug", quantity: 2 }], placedAt: "2024-05-01T10:00:00.000Z" }
  },
  { eventType: "OrderCancelled", data: { reason: "changed my mind" } }
]
const current = [
  OrderPlaced.make({ items: [{ sku: "book", quantity: 1 }], placedAt: new Date(0) }),
  OrderPlaced.make({ items: [{ sku: "pen", quantity: 1 }, { sku: "ink", quantity: 1 }], placedAt: new Date(0) }),
  OrderPlaced.make({ items: [{ sku: "mug", quantity: 2 }], placedAt: new Date("2024-05-01T10:00:00.000Z") }),
  OrderCancelled.make({ reason: "changed my mind" })
]

class Orders extends TypedEventStore.Tag<Orders>()("test/Orders", OrderEvents) {}

for (const backend of backends("typed")) {
  describe.skipIf(!backend.available)(`TypedEventStore on ${backend.name}`, () => {
    layer(backend.layer, { timeout: startupTimeout, excludeTestServices: true })((it) => {
      it.effect("rows stored at versions 1, 2 and 3 read back in the current shape, by readStream and readAll", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const category = uniqueCategory("Order")
          yield* store.append(`${category}-1`, history)
          const orders = yield* TypedEventStore.make(OrderEvents)
          const read = yield* collect(orders.readStream(`${category}-1`))
          expect(dataOf(read)).toEqual(current)
          expect(read.map((event) => event.schemaVersion)).toEqual([1, 2, 3, 1])
          const all = yield* collect(orders.readAll({ filter: { categories: [category] } }))
          expect(dataOf(all)).toEqual(current)
          expect(all.map((event) => event.position)).toEqual(read.map((event) => event.position))
        }))

      it.effect("the live subscription decodes the same way, old rows included", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const category = uniqueCategory("Order")
          yield* store.append(`${category}-1`, [
            ...history.slice(0, 1),
            { eventType: "OrderAudited", data: {} },
            ...history.slice(1)
          ])
          const orders = yield* TypedEventStore.make(OrderEvents, { unknownEvents: "skip" })
          const live = yield* collect(
            orders.subscribe({ filter: { categories: [category] } }).pipe(Stream.take(current.length))
          )
          expect(dataOf(live)).toEqual(current)
        }))

      it.effect("events appended through an old registry read as the current shape through the new one", () =>
        Effect.gen(function*() {
          const streamId = uniqueStream("Order")
          const old = yield* TypedEventStore.make(OldOrderEvents)
          yield* old.append(streamId, [{ type: "OrderPlaced", data: { item: "lamp" } }])
          const [row] = yield* collect((yield* EventStore).readStream(streamId))
          expect(row).toMatchObject({ eventType: "OrderPlaced", schemaVersion: 1, data: { item: "lamp" } })
          const [event] = yield* collect((yield* TypedEventStore.make(OrderEvents)).readStream(streamId))
          expect(event).toMatchObject({
            type: "OrderPlaced",
            data: { items: [{ sku: "lamp", quantity: 1 }], placedAt: new Date(0) }
          })
        }))

      it.effect("append encodes with the current schema, storing its version, ids and metadata", () =>
        Effect.gen(function*() {
          const streamId = uniqueStream("Order")
          const orders = yield* Orders
          const eventId = "0190f5a2-7c1e-7a3b-9d1e-2f3a4b5c6d7e".replace("7e", Math.random().toString(16).slice(2, 4))
          const result = yield* orders.append(streamId, [
            {
              ...OrderPlaced.make({ items: [{ sku: "a", quantity: 3 }], placedAt: new Date(1_000) }),
              eventId,
              metadata: { correlationId: "c-1" }
            },
            OrderCancelled.make({ reason: "r", refund: 5n })
          ], { expectedVersion: "no_stream" })
          expect(result.streamVersion).toBe(2)
          const rows = yield* collect((yield* EventStore).readStream(streamId))
          expect(
            rows.map(({ data, eventId, eventType, metadata, schemaVersion }) => ({
              eventId,
              eventType,
              schemaVersion,
              data,
              metadata
            }))
          )
            .toEqual([
              {
                eventId,
                eventType: "OrderPlaced",
                schemaVersion: 3,
                data: { items: [{ sku: "a", quantity: 3 }], placedAt: "1970-01-01T00:00:01.000Z" },
                metadata: { correlationId: "c-1" }
              },
              {
                eventId: rows[1]?.eventId,
                eventType: "OrderCancelled",
                schemaVersion: 1,
                data: { reason: "r", refund: "5" },
                metadata: {}
              }
            ])
        }).pipe(Effect.provide(Orders.layer)))

      it.effect("an event that does not encode is an InvalidInput, and nothing is stored", () =>
        Effect.gen(function*() {
          const streamId = uniqueStream("Order")
          const orders = yield* TypedEventStore.make(OrderEvents)
          const error = yield* Effect.flip(orders.append(streamId, [
            OrderCancelled.make({ reason: "fine" }),
            OrderPlaced.make({ items: [{ sku: "a", quantity: 0 }], placedAt: new Date(0) })
          ]))
          expect(error).toMatchObject({ _tag: "InvalidInput", field: "events[1].data" })
          expect(yield* (yield* EventStore).streamVersion(streamId)).toEqual(Option.none())
        }))

      it.effect("every event type round-trips through the store (property, generated from the schemas)", () =>
        Effect.gen(function*() {
          const orders = yield* TypedEventStore.make(OrderEvents)
          for (const type of OrderEvents.types.values()) {
            yield* checkProperty(
              FastCheck.array(Arbitrary.make(type.schema), { minLength: 1, maxLength: 5 }),
              (data) =>
                Effect.gen(function*() {
                  const streamId = uniqueStream("RoundTrip")
                  const events = data.map((value) => type.make(value) as EventRegistry.Event<typeof OrderEvents>)
                  yield* orders.append(streamId, events)
                  const read = yield* collect(orders.readStream(streamId))
                  if (!deepEquals(dataOf(read), events)) {
                    return yield* Effect.dieMessage(`read back ${JSON.stringify(dataOf(read))}`)
                  }
                }),
              { numRuns: backend.name === "memory" ? 100 : 25 }
            )
          }
        }))

      describe("events of a type the registry does not know", () => {
        const mixed = (category: string) =>
          Effect.gen(function*() {
            const store = yield* EventStore
            yield* store.append(`${category}-1`, [
              { eventType: "OrderCancelled", data: { reason: "a" } },
              { eventType: "OrderAudited", data: { by: "ops" } },
              { eventType: "OrderCancelled", data: { reason: "b" } }
            ])
          })

        it.effect("fail the read under the default policy", () =>
          Effect.gen(function*() {
            const category = uniqueCategory("Mixed")
            yield* mixed(category)
            const orders = yield* TypedEventStore.make(OrderEvents)
            for (
              const read of [orders.readStream(`${category}-1`), orders.readAll({ filter: { categories: [category] } })]
            ) {
              const error = yield* Effect.flip(collect(read))
              expect(error).toBeInstanceOf(EventDecodeError)
              expect(error).toMatchObject({ reason: "UnknownEventType", eventType: "OrderAudited", streamVersion: 2 })
            }
          }))

        it.effect("are left out under skip", () =>
          Effect.gen(function*() {
            const category = uniqueCategory("Mixed")
            yield* mixed(category)
            const orders = yield* TypedEventStore.make(OrderEvents, { unknownEvents: "skip" })
            const expected = [OrderCancelled.make({ reason: "a" }), OrderCancelled.make({ reason: "b" })]
            expect(dataOf(yield* collect(orders.readStream(`${category}-1`)))).toEqual(expected)
            expect(dataOf(yield* collect(orders.readAll({ filter: { categories: [category] } })))).toEqual(expected)
            // With a filter naming only unknown types, nothing comes back (and no error).
            expect(yield* collect(orders.readAll({ filter: { categories: [category], eventTypes: ["OrderAudited"] } })))
              .toEqual([])
          }))

        it.effect("come through raw under passthrough", () =>
          Effect.gen(function*() {
            const category = uniqueCategory("Mixed")
            yield* mixed(category)
            const orders = yield* TypedEventStore.make(OrderEvents, { unknownEvents: "passthrough" })
            for (
              const read of [orders.readStream(`${category}-1`), orders.readAll({ filter: { categories: [category] } })]
            ) {
              const events = yield* collect(read)
              expect(dataOf(events)).toEqual([
                OrderCancelled.make({ reason: "a" }),
                { raw: "OrderAudited" },
                OrderCancelled.make({ reason: "b" })
              ])
              const raw = events[1]
              expect(raw !== undefined && !EventRegistry.isDecoded(raw) && raw.data).toEqual({ by: "ops" })
            }
          }))
      })

      it.effect("a row that does not decode fails the read with an EventDecodeError naming it", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const category = uniqueCategory("Corrupt")
          const streamId = `${category}-1`
          const { positions } = yield* store.append(streamId, [
            { eventType: "OrderCancelled", data: { reason: "ok" } },
            { eventType: "OrderPlaced", schemaVersion: 2, data: { items: "pen" } }
          ])
          const orders = yield* TypedEventStore.make(OrderEvents)
          for (const read of [orders.readStream(streamId), orders.readAll({ filter: { categories: [category] } })]) {
            const error = yield* Effect.flip(collect(read))
            expect(error).toMatchObject({
              _tag: "EventDecodeError",
              streamId,
              streamVersion: 2,
              position: positions[1],
              eventType: "OrderPlaced",
              schemaVersion: 2,
              reason: "InvalidData"
            })
            expect((error as EventDecodeError).issue).toMatch(/upcasting version 2 to 3: [\s\S]*items/)
          }
          // A newer writer's version: named as such.
          yield* store.append(streamId, [{ eventType: "OrderPlaced", schemaVersion: 7, data: {} }])
          const newer = yield* Effect.flip(collect(orders.readStream(streamId, { from: 3 })))
          expect(newer).toMatchObject({ reason: "UnknownSchemaVersion", schemaVersion: 7, streamVersion: 3 })
        }))
    })
  })
}
