// An application bundled into one file (esbuild): the migrations must come with the code.
import { Effect } from "effect"
import { EventStore } from "effect-event-store"
import { PgliteEventStore } from "effect-event-store/pglite"

const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const result = yield* store.append("Order-1", [{ eventType: "Placed", data: { total: 3 } }])
  console.log(`bundled: ok (version ${result.streamVersion})`)
})

await Effect.runPromise(program.pipe(Effect.provide(PgliteEventStore.layer())))
