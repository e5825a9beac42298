// The root and memory entry points, as an application imports them from the published package.
import { Effect, Stream } from "effect"
import { EventStore } from "effect-event-store"
import { MemoryEventStore } from "effect-event-store/memory"

const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  yield* store.append("Order-1", [{ eventType: "Placed", data: { total: 3 } }], { expectedVersion: "no_stream" })
  const events = yield* Stream.runCollect(store.readAll())
  if (events.length !== 1) throw new Error(`expected 1 event, read ${events.length}`)
  console.log("memory: ok")
})

await Effect.runPromise(program.pipe(Effect.provide(MemoryEventStore.layer())))
