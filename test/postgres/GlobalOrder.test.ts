/**
 * Invariant 4 on the real server: every reader of the global log sees every
 * committed event exactly once, in one order, whatever the writers do.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Fiber, Option, Random, Ref, Stream } from "effect"
import { EventStore } from "../../src/EventStore.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import { eventually, patience } from "../support/wait.js"
import { serverAvailable, storeLayer, uniqueSchema } from "./support.js"

const readAllFrom = (from: bigint) =>
  Effect.flatMap(EventStore, (store) => Stream.runCollect(store.readAll({ from, batchSize: 100 }))).pipe(
    Effect.map(Chunk.toReadonlyArray)
  )

/** A transaction on its own connection that writes `table` and then waits until told to finish. */
const holdTransaction = <A, E>(
  work: Effect.Effect<A, E, SqlClient.SqlClient | EventStore>,
  release: Deferred.Deferred<"commit" | "rollback">,
  started: Deferred.Deferred<void>
) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(Effect.gen(function*() {
      const result = yield* work
      yield* Deferred.succeed(started, undefined)
      if ((yield* Deferred.await(release)) === "rollback") return yield* Effect.fail("rolled back" as const)
      return result
    }))
  })

describe.skipIf(!serverAvailable)("global order on PostgreSQL", () => {
  it.live("a reader does not pass an append that is still in flight, and sees it once it commits", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const release = yield* Deferred.make<"commit" | "rollback">()
      const started = yield* Deferred.make<void>()
      const slow = yield* Effect.fork(
        holdTransaction(store.append("slow-1", [{ eventType: "E", data: 1 }]), release, started)
      )
      yield* Deferred.await(started)
      const fast = yield* store.append("fast-1", [{ eventType: "E", data: 2 }])

      const reader = yield* Effect.fork(readAllFrom(0n))
      // The slow append holds a lower position; the reader must wait for it, not return `fast` alone.
      const early = yield* Fiber.await(reader).pipe(Effect.timeout(Duration.millis(300)), Effect.option)
      expect(Option.isNone(early)).toBe(true)

      yield* Deferred.succeed(release, "commit")
      const slowResult = yield* Fiber.join(slow)
      const events = yield* Fiber.join(reader)
      expect(events.map((e) => e.position)).toEqual([...slowResult.positions, ...fast.positions])
      expect(slowResult.positions[0] ?? 0n).toBeLessThan(fast.positions[0] ?? 0n)
    }).pipe(Effect.provide(storeLayer(uniqueSchema("go_wait")))))

  it.live("a rolled-back append leaves a hole that readers pass once the transaction has ended", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const release = yield* Deferred.make<"commit" | "rollback">()
      const started = yield* Deferred.make<void>()
      const doomed = yield* Effect.fork(
        holdTransaction(store.append("doomed-1", [{ eventType: "E", data: 1 }]), release, started)
      )
      yield* Deferred.await(started)
      const kept = yield* store.append("kept-1", [{ eventType: "E", data: 2 }])
      const reader = yield* Effect.fork(readAllFrom(0n))
      yield* Effect.sleep(Duration.millis(50))
      yield* Deferred.succeed(release, "rollback")
      expect(yield* Fiber.join(doomed).pipe(Effect.flip)).toBe("rolled back")
      const events = yield* Fiber.join(reader)
      expect(events.map((e) => e.streamId)).toEqual(["kept-1"])
      expect(events.map((e) => e.position)).toEqual(kept.positions)
    }).pipe(Effect.provide(storeLayer(uniqueSchema("go_hole")))))

  it.live("a transaction that never touches the events table does not hold readers back", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore
      yield* sql`CREATE TABLE IF NOT EXISTS unrelated_writes (id serial PRIMARY KEY, note text)`
      const release = yield* Deferred.make<"commit" | "rollback">()
      const started = yield* Deferred.make<void>()
      const unrelated = yield* Effect.fork(
        holdTransaction(sql`INSERT INTO unrelated_writes (note) VALUES ('held')`, release, started)
      )
      yield* Deferred.await(started)
      const appended = yield* store.append("free-1", [{ eventType: "E", data: 1 }])
      // Bounded only so that a regression fails instead of hanging: the read must not wait for `unrelated`.
      const events = yield* readAllFrom(0n).pipe(Effect.timeoutFail({ duration: patience, onTimeout: () => "stalled" }))
      expect(events.map((e) => e.position)).toEqual(appended.positions)
      yield* Deferred.succeed(release, "rollback")
      yield* Fiber.await(unrelated)
    }).pipe(Effect.provide(storeLayer(uniqueSchema("go_free")))))

  const manySchema = uniqueSchema("go_many")
  it.live(
    "16 writers (some in longer transactions, some rolling back) and 3 following readers agree on one order",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        yield* sql`CREATE TABLE ${sql(`${manySchema}.side_writes`)} (id serial PRIMARY KEY, writer int NOT NULL)`
        yield* sql`CREATE TABLE IF NOT EXISTS unrelated_writes (id serial PRIMARY KEY, note text)`

        // Held open for the whole test after writing an unrelated table.
        const releaseBlocker = yield* Deferred.make<"commit" | "rollback">()
        const blockerStarted = yield* Deferred.make<void>()
        const blocker = yield* Effect.fork(
          holdTransaction(sql`INSERT INTO unrelated_writes (note) VALUES ('blocker')`, releaseBlocker, blockerStarted)
        )
        yield* Deferred.await(blockerStarted)

        const writers = 16
        const appendsPerWriter = 60
        const committed = yield* Ref.make<Array<bigint>>([])
        const rolledBack = yield* Ref.make<Array<bigint>>([])
        const writing = yield* Ref.make(true)

        const writer = (w: number) =>
          Effect.forEach(Array.from({ length: appendsPerWriter }, (_, i) => i), (i) =>
            Effect.gen(function*() {
              const streamId = `acct-${yield* Random.nextIntBetween(0, 40)}`
              const size = yield* Random.nextIntBetween(1, 4)
              const events = Array.from({ length: size }, (_, k) => ({ eventType: "Deposited", data: { w, i, k } }))
              const mode = w % 4 === 0 ? "long" : w % 8 === 1 ? "rollback" : "plain"
              if (mode === "plain") {
                const result = yield* store.append(streamId, events)
                yield* Ref.update(committed, (all) => [...all, ...result.positions])
                return
              }
              const positions = yield* Ref.make<ReadonlyArray<bigint>>([])
              const outcome = yield* sql.withTransaction(Effect.gen(function*() {
                yield* sql`INSERT INTO ${sql(`${manySchema}.side_writes`)} (writer) VALUES (${w})`
                yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 4)))
                const result = yield* store.append(streamId, events)
                yield* Ref.set(positions, result.positions)
                yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 6)))
                if (mode === "rollback" && i % 2 === 0) return yield* Effect.fail("rollback" as const)
              })).pipe(Effect.either)
              yield* Ref.update(
                outcome._tag === "Right" ? committed : rolledBack,
                (all) => [...all, ...Ref.get(positions).pipe(Effect.runSync)]
              )
            }), { discard: true })

        const reader = Effect.gen(function*() {
          const seen: Array<bigint> = []
          let checkpoint = 0n
          while (true) {
            const stillWriting = yield* Ref.get(writing)
            const batch = yield* readAllFrom(checkpoint + 1n)
            for (const event of batch) seen.push(event.position)
            checkpoint = batch.at(-1)?.position ?? checkpoint
            if (!stillWriting && batch.length === 0) return seen
            yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 3)))
          }
        })

        const readers = yield* Effect.forkAll([reader, reader, reader])
        yield* Effect.forEach(Array.from({ length: writers }, (_, w) => w), writer, {
          concurrency: "unbounded",
          discard: true
        })
        yield* Ref.set(writing, false)
        const views = yield* Fiber.join(readers)
        // The blocker is still open: the readers finished regardless.
        yield* Deferred.succeed(releaseBlocker, "rollback")
        yield* Fiber.await(blocker)

        const final = (yield* readAllFrom(0n)).map((e) => e.position)
        const committedPositions = [...(yield* Ref.get(committed))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        expect(final).toEqual(committedPositions)
        expect(new Set(final).size).toBe(final.length)
        for (const view of views) expect(view).toEqual(final)
        const gone = new Set(yield* Ref.get(rolledBack))
        expect(gone.size).toBeGreaterThan(0)
        expect(final.some((p) => gone.has(p))).toBe(false)
        expect(final.length).toBeGreaterThan(writers * appendsPerWriter)
      }).pipe(Effect.provide(storeLayer(manySchema, 24))),
    { timeout: 120_000 }
  )

  it.live("racing appends on one stream at the same expected version: exactly one wins", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append("race-1", [{ eventType: "Opened", data: {} }])
      for (const expectedVersion of [1, "no_stream" as const]) {
        const streamId = expectedVersion === "no_stream" ? "race-new" : "race-1"
        const results = yield* Effect.forEach(
          Array.from({ length: 16 }, (_, i) => i),
          (i) => Effect.either(store.append(streamId, [{ eventType: "Raced", data: { i } }], { expectedVersion })),
          { concurrency: "unbounded" }
        )
        const wins = results.filter((r) => r._tag === "Right")
        const losses = results.flatMap((r) => (r._tag === "Left" ? [r.left] : []))
        expect(wins).toHaveLength(1)
        expect(losses).toHaveLength(15)
        for (const loss of losses) expect(loss._tag).toBe("ConcurrencyError")
      }
      expect(Option.getOrThrow(yield* store.streamVersion("race-1"))).toBe(2)
      expect(Option.getOrThrow(yield* store.streamVersion("race-new"))).toBe(1)
    }).pipe(Effect.provide(storeLayer(uniqueSchema("go_race"), 20))))

  it.live("live subscribers under 12 concurrent writers (some rolling back) each get every committed event once, in order", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore
      const committed = yield* Ref.make(0)
      const subscriber = Effect.gen(function*() {
        const received = yield* Ref.make<ReadonlyArray<RecordedEvent>>([])
        const fiber = yield* Effect.fork(
          Stream.runForEach(
            store.subscribe({ batchSize: 50 }),
            (event) => Ref.update(received, (all) => [...all, event])
          )
        )
        return { received, fiber }
      })
      const subscribers = [yield* subscriber, yield* subscriber]
      yield* Effect.forEach(
        Array.from({ length: 12 }, (_, w) => w),
        (w) =>
          Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
            sql.withTransaction(Effect.gen(function*() {
              const result = yield* store.append(`live-${w % 5}`, [{ eventType: "Tick", data: { w, i } }])
              if (w % 3 === 0 && i % 4 === 0) return yield* Effect.fail("rollback" as const)
              return result
            })).pipe(
              Effect.zipRight(Ref.update(committed, (n) => n + 1)),
              Effect.catchAll(() => Effect.void)
            ), { discard: true }),
        { concurrency: "unbounded", discard: true }
      )
      const expected = (yield* Stream.runCollect(store.readAll())).pipe(Chunk.toReadonlyArray)
      expect(expected).toHaveLength(yield* Ref.get(committed))
      for (const { fiber, received } of subscribers) {
        // Bounded only so that a lost event fails the test instead of hanging it.
        yield* eventually(
          Effect.map(Ref.get(received), (all) => all.length >= expected.length),
          "the subscriber has them all"
        )
        yield* Effect.sleep(Duration.millis(100))
        expect(yield* Ref.get(received)).toEqual(expected)
        yield* Fiber.interrupt(fiber)
      }
    }).pipe(Effect.provide(storeLayer(uniqueSchema("go_live"), 20))))
})
