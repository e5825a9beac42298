/**
 * Quick start: append to a few streams, read them back, read the global log.
 *
 *   npm start                      # embedded PostgreSQL (PGlite) in .data/quickstart
 *   DATABASE_URL=postgres://… npm start   # a real PostgreSQL server
 *
 * Run it twice: the second run continues from the stored state.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Chunk, Console, Effect, Option, Stream } from "effect"
import { EventStore } from "effect-event-store"
import { StoreLive } from "./store.js"

const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore

  // The run number is itself an event: the stream's version says how many runs came before.
  const run = yield* store.append("quickstart-runs", [{
    eventType: "QuickstartRan",
    data: { at: new Date().toISOString() }
  }])
  yield* Console.log(`Run ${run.streamVersion}${run.streamVersion > 1 ? ": continuing from the stored state" : ""}\n`)

  for (
    const [orderId, items] of [["Order-1", ["book", "pen"]], ["Order-2", ["lamp"]], ["Order-3", [
      "mug",
      "tea",
      "spoon"
    ]]] as const
  ) {
    // Optimistic concurrency: append at the version we just read, as a command handler would.
    const version = Option.getOrElse(yield* store.streamVersion(orderId), () => 0)
    const events = [
      ...(version === 0 ? [{ eventType: "OrderPlaced", data: { orderId } }] : []),
      ...items.map((item) => ({ eventType: "ItemAdded", data: { orderId, item, run: run.streamVersion } }))
    ]
    const result = yield* store.append(orderId, events, { expectedVersion: version })
    yield* Console.log(
      `${orderId}: appended ${events.length} at versions ${version + 1}..${result.streamVersion}, positions ${
        result.positions.join(", ")
      }`
    )
  }

  // A stale expected version is refused, and nothing is stored.
  const conflict = yield* store.append("Order-1", [{ eventType: "ItemAdded", data: { item: "stale" } }], {
    expectedVersion: 1
  }).pipe(
    Effect.flip
  )
  yield* Console.log(`\nStale append refused: ${conflict._tag}: ${conflict.message}`)

  const order1 = yield* Stream.runCollect(store.readStream("Order-1"))
  yield* Console.log(`\nOrder-1 has ${order1.length} events:`)
  for (const event of order1) {
    yield* Console.log(`  v${event.streamVersion} ${event.eventType} ${JSON.stringify(event.data)}`)
  }

  const latest = yield* Stream.runCollect(store.readStream("Order-3", { direction: "backward", limit: 2 }))
  yield* Console.log(
    `\nOrder-3, newest first: ${Chunk.join(Chunk.map(latest, (e) => `v${e.streamVersion} ${e.eventType}`), ", ")}`
  )

  const log = yield* Stream.runCollect(store.readAll({ filter: { categories: ["Order"] } }))
  yield* Console.log(`\nGlobal log, category Order: ${log.length} events`)
  for (const event of Chunk.takeRight(log, 6)) {
    yield* Console.log(`  #${event.position} ${event.streamId} v${event.streamVersion} ${event.eventType}`)
  }

  const streams = yield* Stream.runCollect(store.listStreams())
  yield* Console.log(`\nStreams: ${Chunk.join(Chunk.map(streams, (s) => `${s.streamId}@${s.version}`), ", ")}`)
})

program.pipe(Effect.provide(StoreLive("quickstart")), NodeRuntime.runMain)
