/**
 * The event every contender appends: a small, typical domain event
 * (about 250 bytes of JSON with its metadata).
 */
import type { BenchEvent } from "./contenders/Contender.js"

export const sampleEvent: BenchEvent = {
  type: "OrderLineAdded",
  data: {
    orderId: "0b7d9c3e-4f2a-4e59-9a51-7c1d2e3f4a5b",
    sku: "BOOK-978-0134757599",
    quantity: 2,
    unitPrice: { amount: 4599, currency: "EUR" },
    note: "gift wrap, deliver after 17:00"
  },
  metadata: {
    correlationId: "6f1c2d3e-8a9b-4c5d-9e0f-1a2b3c4d5e6f",
    causationId: "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
  }
}

/** `count` copies of the sample event: the workloads append the same data again and again. */
export const sampleEvents = (count: number): ReadonlyArray<BenchEvent> =>
  Array.from({ length: count }, () => sampleEvent)
