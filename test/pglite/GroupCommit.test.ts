/**
 * Group commit on PGlite, whose one connection a transaction holds for its
 * whole length: appends made outside it queue (the lone one waiting for the
 * connection, the others for it) and go once it commits, while the appends
 * inside it go on its connection; nothing waits for anything in a cycle.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Stream } from "effect"
import { EventStore } from "../../src/EventStore.js"
import { PgliteEventStore } from "../../src/pglite/index.js"
import { startupTimeout } from "../support/wait.js"

describe("group commit on PGlite", () => {
  it.live(
    "appends outside a transaction that holds the connection wait for it, and the appends inside it go on",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const sql = yield* SqlClient.SqlClient
        const opened = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const transaction = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* store.append("Inside", [{ eventType: "E", data: 1 }])
          yield* Deferred.succeed(opened, undefined)
          yield* Deferred.await(release)
          // A fiber forked inside the transaction appends inside it too.
          yield* Effect.fork(store.append("Inside", [{ eventType: "E", data: 2 }], { expectedVersion: 1 })).pipe(
            Effect.flatMap(Fiber.join)
          )
        })))
        yield* Deferred.await(opened)

        const outside = yield* Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) => Effect.fork(store.append(`Outside-${i % 3}`, [{ eventType: "E", data: i }])),
          { concurrency: "unbounded" }
        )
        yield* Effect.yieldNow()
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(transaction)
        const results = yield* Fiber.joinAll(outside)

        expect(results.map((result) => result.streamVersion)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
        expect(all.filter((event) => event.streamId === "Inside").map((event) => event.data)).toEqual([1, 2])
        expect(
          all.filter((event) => event.streamId !== "Inside").map((event) => event.data).sort((a, b) =>
            Number(a) - Number(b)
          )
        )
          .toEqual(Array.from({ length: 12 }, (_, i) => i))
        // The transaction committed before any of the appends made outside it.
        const positionOf = (data: number, streamId: string) =>
          all.find((event) => event.streamId === streamId && event.data === data)?.position ?? -1n
        expect(positionOf(2, "Inside") < positionOf(0, "Outside-0")).toBe(true)
      }).pipe(Effect.provide(PgliteEventStore.layer())),
    startupTimeout
  )
})
