/**
 * A live read model: order summaries, kept by a projection while orders are
 * appended, exactly once, in a SQL table that readers query through a view.
 *
 *   npm run example:projection                       # embedded PostgreSQL in .data/order-summaries
 *   DATABASE_URL=postgres://… npm run example:projection
 */
import { NodeRuntime } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { Console, Duration, Effect, Random, Schedule } from "effect"
import { EventStore, Projection } from "effect-event-store"
import { StoreLive, storeSchema } from "./store.js"

// The read model, in the store's schema. Its table is declared, so it can be
// rebuilt without downtime; readers query the view `order_summaries`.
const orderSummaries = (schema: string) =>
  Projection.make({
    name: "order-summaries",
    filter: { categories: ["Order"] },
    tables: { summaries: `${schema}.order_summaries` },
    setup: (tables) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`CREATE TABLE ${sql(tables.summaries)} (
        order_id text PRIMARY KEY,
        items integer NOT NULL DEFAULT 0,
        total_cents bigint NOT NULL DEFAULT 0,
        status text NOT NULL
      )`),
    handle: (event, tables) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => {
        const summaries = sql(tables.summaries)
        switch (event.eventType) {
          case "OrderPlaced":
            return sql`INSERT INTO ${summaries} (order_id, status) VALUES (${event.streamId}, 'open')`
          case "ItemAdded": {
            const { priceCents } = event.data as { readonly priceCents: number }
            return sql`UPDATE ${summaries} SET items = items + 1, total_cents = total_cents + ${priceCents}
            WHERE order_id = ${event.streamId}`
          }
          case "OrderPaid":
            return sql`UPDATE ${summaries} SET status = 'paid' WHERE order_id = ${event.streamId}`
          default:
            return Effect.void
        }
      })
  })

// Appends orders for a while, as the application's write side would.
const placeOrders = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const orderId = `Order-${Date.now().toString(36)}-${yield* Random.nextIntBetween(100, 999)}`
  yield* store.append(orderId, [{ eventType: "OrderPlaced", data: {} }], { expectedVersion: "no_stream" })
  const items = yield* Random.nextIntBetween(1, 4)
  for (let i = 0; i < items; i++) {
    yield* store.append(orderId, [{
      eventType: "ItemAdded",
      data: { priceCents: yield* Random.nextIntBetween(100, 5000) }
    }])
  }
  if (yield* Random.nextBoolean) yield* store.append(orderId, [{ eventType: "OrderPaid", data: {} }])
}).pipe(Effect.repeat(Schedule.spaced(Duration.millis(150))), Effect.timeout(Duration.seconds(3)), Effect.ignore)

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const schema = yield* storeSchema("order-summaries")
  const runner = yield* Projection.start(orderSummaries(schema))
  yield* Console.log("Projection started; appending orders for 3 seconds…")
  yield* placeOrders

  // Wait until the read model has caught up with the log, then read it.
  const status = yield* runner.status.pipe(
    Effect.delay(Duration.millis(50)),
    Effect.repeat({ until: (s) => s.state === "live" }),
    Effect.timeout(Duration.seconds(10))
  )
  yield* Console.log(
    `Status: ${status.state}, applied up to position ${status.position} of ${status.head}, lag ${status.lag.positions} positions, generation ${status.generation}`
  )
  const rows = yield* sql<
    { readonly order_id: string; readonly items: number; readonly total_cents: string; readonly status: string }
  >`
    SELECT order_id, items, total_cents::text AS total_cents, status FROM ${
    sql(`${schema}.order_summaries`)
  } ORDER BY order_id DESC LIMIT 8`
  const [counts] = yield* sql<{ readonly orders: string; readonly paid: string }>`
    SELECT count(*)::text AS orders, count(*) FILTER (WHERE status = 'paid')::text AS paid FROM ${
    sql(`${schema}.order_summaries`)
  }`
  yield* Console.log(`Order summaries: ${counts?.orders} orders, ${counts?.paid} paid; the newest:`)
  for (const row of rows) {
    yield* Console.log(
      `  ${row.order_id}  ${row.items} items  ${(Number(row.total_cents) / 100).toFixed(2)}  ${row.status}`
    )
  }
})

program.pipe(Effect.scoped, Effect.provide(StoreLive("order-summaries")), NodeRuntime.runMain)
