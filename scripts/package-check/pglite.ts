// The embedded entry point: PGlite in memory, migrated on start.
import { Effect, Stream } from "effect"
import { EventStore } from "effect-event-store"
import { PgliteEventStore } from "effect-event-store/pglite"

const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  yield* store.append("Order-1", [{ eventType: "Placed", data: { total: 3 } }], { expectedVersion: "no_stream" })
  const events = yield* Stream.runCollect(store.readStream("Order-1"))
  if (events.length !== 1) throw new Error(`expected 1 event, read ${events.length}`)
  console.log("pglite: ok")
})

await Effect.runPromise(program.pipe(Effect.provide(PgliteEventStore.layer())))
