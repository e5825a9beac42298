/**
 * Event types with a history, for the tests: OrderPlaced went through three
 * shapes (v1 → v2 by a function, v2 → v3 by a Schema transformation, and v3
 * decodes a date), OrderCancelled never changed.
 */
import { Schema } from "effect"
import * as EventRegistry from "../../src/events/EventRegistry.js"
import * as EventType from "../../src/events/EventType.js"

export const OrderPlacedV1 = Schema.Struct({ item: Schema.String })
export const OrderPlacedV2 = Schema.Struct({ items: Schema.Array(Schema.String) })
export const OrderPlacedV3 = Schema.Struct({
  items: Schema.Array(Schema.Struct({ sku: Schema.String, quantity: Schema.Int.pipe(Schema.positive()) })),
  placedAt: Schema.Date
})

/** What v2 events become: one of each item, placed at an unknown time (the epoch). */
const v2ToV3 = Schema.transform(OrderPlacedV2, Schema.encodedSchema(OrderPlacedV3), {
  strict: true,
  decode: ({ items }) => ({ items: items.map((sku) => ({ sku, quantity: 1 })), placedAt: new Date(0).toISOString() }),
  encode: ({ items }) => ({ items: items.map((item) => item.sku) })
})

export const OrderPlaced = EventType.make("OrderPlaced", {
  version: 3,
  schema: OrderPlacedV3,
  upcasters: {
    1: EventType.upcast(OrderPlacedV1, (v1): typeof OrderPlacedV2.Encoded => ({ items: [v1.item] })),
    2: EventType.upcast(v2ToV3)
  }
})

export const OrderCancelled = EventType.make("OrderCancelled", {
  schema: Schema.Struct({ reason: Schema.String, refund: Schema.optional(Schema.BigInt) })
})

export const OrderEvents = EventRegistry.make(OrderPlaced, OrderCancelled)
export type OrderEvent = EventRegistry.Event<typeof OrderEvents>

/** The registry as it was when OrderPlaced had only its first shape. */
export const OldOrderEvents = EventRegistry.make(EventType.make("OrderPlaced", { schema: OrderPlacedV1 }))
