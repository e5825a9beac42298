/**
 * The stream lifecycle on the real server, where appends really race: soft
 * deletes, tombstones, archives, erasures and scavenges queue with appends on
 * the stream's row, so every append either committed before (and the
 * lifecycle operation saw it) or after, or failed with a typed error — never a
 * raw SQL error. And readers of the global log stay exact while events move
 * to the archive.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Either, Fiber, Option, Random, Ref, Stream } from "effect"
import type { AppendResult } from "../../src/EventStore.js"
import { EventStore } from "../../src/EventStore.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import { eventually } from "../support/wait.js"
import { serverAvailable, storeLayer, uniqueSchema } from "./support.js"

const appenders = 16
const rounds = 6

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const jitter = Effect.flatMap(Random.nextIntBetween(0, 4), (ms) => Effect.sleep(Duration.millis(ms)))

/**
 * Runs `appenders` single-event appends to `streamId` and `operation` at once
 * (released together by a gate, each after a random 0–3 ms; with
 * `headStart`, the appends 20 ms later), and returns each append's outcome
 * with its event id, and the operation's.
 */
const race = <A, E>(
  streamId: string,
  expectedVersion: "any" | "stream_exists",
  operation: Effect.Effect<A, E, EventStore>,
  headStart = false
) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const gate = yield* Deferred.make<void>()
    const appends = yield* Effect.forkAll(
      Array.from({ length: appenders }, (_, i) => {
        const eventId = crypto.randomUUID()
        return Deferred.await(gate).pipe(
          Effect.zipRight(headStart ? Effect.sleep(Duration.millis(20)) : Effect.void),
          Effect.zipRight(jitter),
          Effect.zipRight(store.append(streamId, [{ eventId, eventType: "Raced", data: { i } }], { expectedVersion })),
          Effect.either,
          Effect.map((outcome) => ({ eventId, outcome }))
        )
      })
    )
    const other = yield* Effect.fork(
      Deferred.await(gate).pipe(
        Effect.zipRight(jitter),
        Effect.zipRight(operation),
        Effect.either
      )
    )
    yield* Deferred.succeed(gate, undefined)
    return { appends: yield* Fiber.join(appends), operation: yield* Fiber.join(other) }
  })

const succeeded = (
  appends: ReadonlyArray<
    { readonly eventId: string; readonly outcome: Either.Either<AppendResult, { readonly _tag: string }> }
  >
) =>
  appends.flatMap(({ eventId, outcome }) =>
    Either.isRight(outcome) ? [{ eventId, version: outcome.right.streamVersion }] : []
  )

const failureTags = (appends: ReadonlyArray<{ readonly outcome: Either.Either<unknown, { readonly _tag: string }> }>) =>
  new Set(appends.flatMap(({ outcome }) => Either.isLeft(outcome) ? [outcome.left._tag] : []))

const versionsOf = (events: ReadonlyArray<RecordedEvent>) => events.map((e) => e.streamVersion)
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

describe.skipIf(!serverAvailable)("stream lifecycle on PostgreSQL", () => {
  it.live("16 appends racing a soft delete: each committed before it (and is hidden) or failed with ConcurrencyError at actual 0", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      for (let round = 0; round < rounds; round++) {
        const streamId = `Race-${round}`
        yield* store.append(streamId, [{ eventType: "Opened", data: {} }])
        const { appends, operation } = yield* race(streamId, "stream_exists", store.deleteStream(streamId))
        expect(Either.isRight(operation)).toBe(true)
        const wins = succeeded(appends)
        for (const { outcome } of appends) {
          if (Either.isLeft(outcome)) expect(outcome.left).toMatchObject({ _tag: "ConcurrencyError", actual: 0 })
        }
        // The winners hold versions 2, 3, … without gaps, all hidden by the delete.
        expect(wins.map((w) => w.version).sort((a, b) => a - b)).toEqual(range(2, wins.length + 1))
        expect(yield* Effect.flip(collect(store.readStream(streamId)))).toMatchObject({ _tag: "StreamNotFound" })
        expect(yield* store.streamVersion(streamId)).toEqual(Option.none())
        expect((yield* store.getStreamMetadata(streamId)).truncateBefore).toBe(wins.length + 2)
        const stored = yield* collect(store.readAll({ filter: { streamIds: [streamId] } }))
        expect(versionsOf(stored)).toEqual(range(1, wins.length + 1))
        expect(new Set(stored.slice(1).map((e) => e.eventId))).toEqual(new Set(wins.map((w) => w.eventId)))
        const recreated = yield* store.append(streamId, [{ eventType: "Reopened", data: {} }], {
          expectedVersion: "no_stream"
        })
        expect(recreated.streamVersion).toBe(wins.length + 2)
        expect(versionsOf(yield* collect(store.readStream(streamId)))).toEqual([wins.length + 2])
      }
    }).pipe(Effect.provide(storeLayer(uniqueSchema("lc_delete"), 20))))

  it.live("a delete at an expected version racing 16 appends: it wins only before every append, and then they recreate the stream", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      let deleted = 0
      for (let round = 0; round < rounds * 2; round++) {
        const streamId = `Race-${round}`
        yield* store.append(streamId, [{ eventType: "Opened", data: {} }])
        const { appends, operation } = yield* race(
          streamId,
          "any",
          store.deleteStream(streamId, { expectedVersion: 1 }),
          round % 2 === 0
        )
        // "any" appends never fail, deleted stream or not.
        expect(succeeded(appends)).toHaveLength(appenders)
        const all = yield* collect(store.readAll({ filter: { streamIds: [streamId] } }))
        expect(versionsOf(all)).toEqual(range(1, appenders + 1))
        if (Either.isRight(operation)) {
          // It ran before any append: every append came after it and recreated the stream.
          deleted++
          expect(versionsOf(yield* collect(store.readStream(streamId)))).toEqual(range(2, appenders + 1))
          expect((yield* store.getStreamMetadata(streamId)).truncateBefore).toBe(2)
        } else {
          expect(operation.left).toMatchObject({ _tag: "ConcurrencyError", expected: 1 })
          expect((operation.left as { readonly actual?: number }).actual).toBeGreaterThan(1)
          expect(versionsOf(yield* collect(store.readStream(streamId)))).toEqual(range(1, appenders + 1))
        }
        expect(yield* store.streamVersion(streamId)).toEqual(Option.some(appenders + 1))
      }
      // Not asserted (timing decides), only reported when it helps to read a failure.
      yield* Effect.logDebug(`the delete won ${deleted} of ${rounds * 2} rounds`)
    }).pipe(Effect.provide(storeLayer(uniqueSchema("lc_delete_expected"), 20))))

  it.live("16 appends racing a tombstone: each committed before it or failed with StreamDeleted; none after it", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      for (let round = 0; round < rounds; round++) {
        const streamId = `Race-${round}`
        yield* store.append(streamId, [{ eventType: "Opened", data: {} }])
        const { appends, operation } = yield* race(streamId, "any", store.tombstoneStream(streamId))
        expect(Either.isRight(operation)).toBe(true)
        const tags = failureTags(appends)
        expect([...tags].every((tag) => tag === "StreamDeleted")).toBe(true)
        const wins = succeeded(appends)
        const stored = yield* collect(store.readAll({ filter: { streamIds: [streamId] } }))
        expect(versionsOf(stored)).toEqual(range(1, wins.length + 1))
        expect(new Set(stored.slice(1).map((e) => e.eventId))).toEqual(new Set(wins.map((w) => w.eventId)))
        expect(yield* Effect.flip(store.append(streamId, [{ eventType: "Late", data: {} }]))).toMatchObject({
          _tag: "StreamDeleted"
        })
      }
    }).pipe(Effect.provide(storeLayer(uniqueSchema("lc_tombstone"), 20))))

  it.live("16 appends racing an archive: all succeed, the archive holds a prefix of versions, readStream has each event once", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      for (let round = 0; round < rounds; round++) {
        const streamId = `Race-${round}`
        yield* store.append(streamId, [{ eventType: "Opened", data: {} }])
        const { appends, operation } = yield* race(streamId, "any", store.archiveStream(streamId))
        expect(succeeded(appends)).toHaveLength(appenders)
        const archived = Either.getOrThrow(operation).archived
        expect(archived).toBeGreaterThanOrEqual(1)
        expect(versionsOf(yield* collect(store.readStream(streamId, { batchSize: 3 })))).toEqual(
          range(1, appenders + 1)
        )
        const hot = yield* collect(store.readAll({ filter: { streamIds: [streamId] } }))
        expect(versionsOf(hot)).toEqual(range(archived + 1, appenders + 1))
        const everything = yield* collect(store.readAll({ includeArchived: true, filter: { streamIds: [streamId] } }))
        expect(versionsOf(everything)).toEqual(range(1, appenders + 1))
      }
    }).pipe(Effect.provide(storeLayer(uniqueSchema("lc_archive"), 20))))

  it.live("16 appends racing an erasure: the erased events are exactly the ones stored before it, a prefix of versions", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      for (let round = 0; round < rounds; round++) {
        const streamId = `Race-${round}`
        yield* store.append(streamId, [{ eventType: "Opened", data: { name: "x" } }])
        const { appends, operation } = yield* race(streamId, "any", store.eraseStream(streamId))
        expect(succeeded(appends)).toHaveLength(appenders)
        const erased = Either.getOrThrow(operation).erased
        const read = yield* collect(store.readStream(streamId))
        expect(read.map((e) => e.erasedAt !== undefined)).toEqual(range(1, appenders + 1).map((v) => v <= erased))
        for (const e of read) expect(e.data === null).toBe(e.erasedAt !== undefined)
      }
    }).pipe(Effect.provide(storeLayer(uniqueSchema("lc_erase"), 20))))

  it.live("16 appends racing a scavenge of a maxCount stream: no errors, and afterwards only the newest events are stored", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      for (let round = 0; round < rounds; round++) {
        const streamId = `Race-${round}`
        yield* store.append(streamId, Array.from({ length: 5 }, (_, i) => ({ eventType: "Opened", data: { i } })))
        yield* store.setStreamMetadata(streamId, { maxCount: 3 })
        const { appends, operation } = yield* race(streamId, "any", store.scavenge({ batchSize: 2 }))
        expect(succeeded(appends)).toHaveLength(appenders)
        expect(Either.isRight(operation)).toBe(true)
        const last = appenders + 5
        expect(versionsOf(yield* collect(store.readStream(streamId)))).toEqual([last - 2, last - 1, last])
        yield* store.scavenge()
        expect(versionsOf(yield* collect(store.readAll({ filter: { streamIds: [streamId] } })))).toEqual([
          last - 2,
          last - 1,
          last
        ])
      }
    }).pipe(Effect.provide(storeLayer(uniqueSchema("lc_scavenge"), 20))))

  it.live("a reader of the global log waits for an archive in flight, then sees each event once: in the archive, not the hot log", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore
      yield* store.append("Order-1", [{ eventType: "Placed", data: {} }, { eventType: "Paid", data: {} }])
      yield* store.append("Order-2", [{ eventType: "Placed", data: {} }])
      const before = yield* collect(store.readAll())
      const release = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const archiving = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
        const result = yield* store.archiveStream("Order-1")
        yield* Deferred.succeed(started, undefined)
        yield* Deferred.await(release)
        return result
      })))
      yield* Deferred.await(started)
      const reader = yield* Effect.fork(collect(store.readAll({ includeArchived: true })))
      const early = yield* Fiber.await(reader).pipe(Effect.timeout(Duration.millis(300)), Effect.option)
      expect(Option.isNone(early)).toBe(true)
      yield* Deferred.succeed(release, undefined)
      expect(yield* Fiber.join(archiving)).toEqual({ archived: 2 })
      expect(yield* Fiber.join(reader)).toEqual(before)
      expect((yield* collect(store.readAll())).map((e) => e.streamId)).toEqual(["Order-2"])
    }).pipe(Effect.provide(storeLayer(uniqueSchema("lc_archive_wait"), 6))))

  it.live("subscribers with includeArchived get every event once and in order while 8 writers append and streams are archived", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const received = (includeArchived: boolean) =>
        Effect.gen(function*() {
          const all = yield* Ref.make<ReadonlyArray<RecordedEvent>>([])
          const fiber = yield* Effect.fork(
            Stream.runForEach(
              store.subscribe({ includeArchived, batchSize: 20 }),
              (event) => Ref.update(all, (events) => [...events, event])
            )
          )
          return { all, fiber }
        })
      const withArchive = [yield* received(true), yield* received(true)]
      const hotOnly = yield* received(false)
      const writing = yield* Ref.make(true)
      const archiver = yield* Effect.fork(Effect.gen(function*() {
        while (yield* Ref.get(writing)) {
          yield* store.archiveStream(`Acct-${yield* Random.nextIntBetween(0, 10)}`)
          yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 5)))
        }
      }))
      yield* Effect.forEach(
        range(1, 8),
        (w) =>
          Effect.forEach(
            range(1, 40),
            (i) =>
              Effect.flatMap(Random.nextIntBetween(0, 10), (n) =>
                store.append(`Acct-${n}`, [{ eventType: "Deposited", data: { w, i } }])),
            { discard: true }
          ),
        {
          concurrency: "unbounded",
          discard: true
        }
      )
      yield* Ref.set(writing, false)
      yield* Fiber.join(archiver)
      const expected = yield* collect(store.readAll({ includeArchived: true }))
      expect(expected).toHaveLength(8 * 40)
      for (const { all, fiber } of withArchive) {
        yield* eventually(
          Effect.map(Ref.get(all), (events) => events.length >= expected.length),
          "the subscriber has them all"
        )
        yield* Effect.sleep(Duration.millis(100))
        expect((yield* Ref.get(all)).map((e) => e.eventId)).toEqual(expected.map((e) => e.eventId))
        yield* Fiber.interrupt(fiber)
      }
      // The hot-only subscriber got a subsequence, in order, that includes every event still in the hot log.
      const stillHot = (yield* collect(store.readAll())).map((e) => e.position)
      yield* eventually(
        Effect.map(Ref.get(hotOnly.all), (events) => {
          const seen = new Set(events.map((e) => e.position))
          return stillHot.every((position) => seen.has(position))
        }),
        "the hot-only subscriber has every event still in the hot log"
      )
      const hot = (yield* Ref.get(hotOnly.all)).map((e) => e.position)
      yield* Fiber.interrupt(hotOnly.fiber)
      expect(hot.every((position, i) => i === 0 || (hot[i - 1] ?? position) < position)).toBe(true)
    }).pipe(Effect.provide(storeLayer(uniqueSchema("lc_follow"), 20))))
})
