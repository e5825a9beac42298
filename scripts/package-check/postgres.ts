// The PostgreSQL entry point on the server at DATABASE_URL, in a schema of its own.
import { PgClient } from "@effect/sql-pg"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Redacted, Stream } from "effect"
import { EventStore } from "effect-event-store"
import { PostgresEventStore } from "effect-event-store/postgres"

const url = process.env.DATABASE_URL
if (url === undefined) {
  console.log("postgres: skipped (no DATABASE_URL)")
} else {
  const schema = `pkg_${Math.random().toString(36).slice(2, 10)}`
  const program = Effect.gen(function*() {
    const store = yield* EventStore
    yield* store.append("Order-1", [{ eventType: "Placed", data: { total: 3 } }], { expectedVersion: "no_stream" })
    const events = yield* Stream.runCollect(store.readAll())
    if (events.length !== 1) throw new Error(`expected 1 event, read ${events.length}`)
    const sql = yield* SqlClient.SqlClient
    yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
    console.log("postgres: ok")
  })
  const layer = PostgresEventStore.layer({ schema }).pipe(
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(url) }))
  )
  await Effect.runPromise(program.pipe(Effect.provide(layer)))
}
