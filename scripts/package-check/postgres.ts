// The PostgreSQL entry point on the server at DATABASE_URL, in a schema of its own:
// every service from Config (layerAllConfig), and the store over a client of one's own (layer).
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Redacted, Stream } from "effect"
import { CheckpointStore, EventStore } from "effect-event-store"
import { Migrations, PostgresEventStore } from "effect-event-store/postgres"

const url = process.env.DATABASE_URL
if (url === undefined) {
  console.log("postgres: skipped (no DATABASE_URL)")
} else {
  const schema = `pkg_${Math.random().toString(36).slice(2, 10)}`
  const program = Effect.gen(function*() {
    const store = yield* EventStore.EventStore
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

  const all = Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const checkpoints = yield* CheckpointStore.CheckpointStore
    const [position = 0n] = (yield* store.append("Order-1", [{ eventType: "Placed", data: {} }])).positions
    yield* checkpoints.save("orders", position)
    const { pending } = yield* Migrations.status(schema)
    if (pending.length > 0) throw new Error(`pending migrations: ${pending.map((m) => m.name).join(", ")}`)
    const sql = yield* SqlClient.SqlClient
    yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
    console.log("postgres (layerAllConfig): ok")
  })
  await Effect.runPromise(all.pipe(
    Effect.provide(
      PostgresEventStore.layerAllConfig({ url: Config.redacted("DATABASE_URL"), schema: Config.succeed(schema) })
    )
  ))
}
