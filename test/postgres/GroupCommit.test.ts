/**
 * Group commit on the real server: concurrent appends go in batches, and each
 * append still gets exactly the outcome it would have had alone. Many
 * concurrent appends (conflicts, idempotent retries, duplicate ids, soft-deleted
 * and tombstoned streams) are compared, outcome by outcome, with the same
 * appends made one by one without group commit on a fresh schema; callers
 * interrupted while queued or while their batch is in flight never cost
 * another caller its events, nor leave half an append.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Deferred, Effect, Either, Exit, Fiber, Layer, Stream, Tracer } from "effect"
import { EventStore } from "../../src/EventStore.js"
import type * as ExpectedVersion from "../../src/ExpectedVersion.js"
import { PostgresEventStore } from "../../src/postgres/index.js"
import { eventually } from "../support/wait.js"
import { pgLayer, serverAvailable, storeLayer, uniqueSchema } from "./support.js"

interface Op {
  readonly streamId: string
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<{ readonly eventId: string; readonly eventType: string; readonly data: unknown }>
}

const idOf = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`

/**
 * Creates a stream's row in a transaction of its own, committed (and awaited)
 * when the returned effect runs: an append to that stream waits for it
 * meanwhile. (A row another transaction merely holds, group commit does not
 * wait for: it makes that append alone.)
 */
const creating = (schema: string, streamId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const created = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO ${sql(`${schema}.streams`)} (stream_id, category, version) VALUES (${streamId}, 'Hold', 0)`
      yield* Deferred.succeed(created, undefined)
      yield* Deferred.await(release)
    })))
    yield* Deferred.await(created)
    return Deferred.succeed(release, undefined).pipe(Effect.zipRight(Fiber.join(fiber)))
  })

// A small seeded generator (mulberry32), so that a failure can be replayed.
const random = (seed: number) => {
  let state = seed >>> 0
  return (below: number): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * below)
  }
}

const liveStreams = ["Live-0", "Live-1", "Live-2", "Live-3"]
const streams = [...liveStreams, "Gone", "Dead", "New-0", "New-1"]
const expectations: ReadonlyArray<ExpectedVersion.ExpectedVersion> = [
  "any",
  "no_stream",
  "stream_exists",
  1,
  2,
  3,
  4,
  5
]

// The same history in every schema: two events in each live stream, "Gone"
// soft-deleted at version 2, "Dead" tombstoned.
const setupIds = Array.from({ length: 11 }, (_, i) => idOf(i + 1))
const setup = Effect.gen(function*() {
  const store = yield* EventStore
  let next = 0
  const take = () => ({ eventId: setupIds[next++] ?? "", eventType: "Setup", data: { next } })
  for (const streamId of [...liveStreams, "Gone"]) yield* store.append(streamId, [take(), take()])
  yield* store.deleteStream("Gone")
  yield* store.append("Dead", [take()])
  yield* store.tombstoneStream("Dead")
})

const scenario = (seed: number, count: number): ReadonlyArray<Op> => {
  const pick = random(seed)
  let nextId = 1000
  const ops: Array<Op> = []
  for (let i = 0; i < count; i++) {
    const earlier = ops[pick(Math.max(ops.length, 1))]
    if (earlier !== undefined && pick(5) === 0) {
      ops.push(earlier) // a retry: the same stream, expected version and event ids
      continue
    }
    const size = 1 + pick(3)
    const events = Array.from({ length: size }, (_, k) => ({
      // Now and then an id the setup stored (in another stream, or this one).
      eventId: pick(20) === 0 ? (setupIds[pick(setupIds.length)] ?? "") : idOf(nextId++),
      eventType: "Op",
      data: { i, k }
    }))
    ops.push({
      streamId: streams[pick(streams.length)] ?? "Live-0",
      expectedVersion: expectations[pick(expectations.length)] ?? "any",
      events
    })
  }
  return ops
}

/** What an outcome says, with positions replaced by the event ids stored there. */
const describeOutcome = (
  outcome: Either.Either<
    { readonly streamVersion: number; readonly positions: ReadonlyArray<bigint> },
    { readonly _tag: string }
  >,
  idAt: ReadonlyMap<bigint, string>
): unknown => {
  if (Either.isRight(outcome)) {
    return { streamVersion: outcome.right.streamVersion, events: outcome.right.positions.map((p) => idAt.get(p)) }
  }
  const error = outcome.left as unknown as Record<string, unknown>
  const { _tag, actual, eventId, existingStreamId, existingVersion, expected, streamId } = error
  return { _tag, actual, eventId, existingStreamId, existingVersion, expected, streamId }
}

/** Every stream's events (ids and versions), or its error, and every event's position. */
const finalState = Effect.gen(function*() {
  const store = yield* EventStore
  const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
  const idAt = new Map(all.map((event) => [event.position, event.eventId]))
  const perStream: Record<string, unknown> = {}
  for (const streamId of streams) {
    perStream[streamId] = yield* Stream.runCollect(store.readStream(streamId)).pipe(
      Effect.map((events) => Chunk.toReadonlyArray(events).map((event) => [event.streamVersion, event.eventId])),
      Effect.catchAll((error) => Effect.succeed(error._tag))
    )
  }
  return { idAt, perStream }
})

/** A tracer that counts the batches sent (spans named EventStore.appendBatch). */
const batchCounter = Effect.map(Effect.tracer, (base) => {
  const batches = { count: 0 }
  const tracer = Tracer.make({
    span: (...args) => {
      if (args[0] === "EventStore.appendBatch") batches.count++
      return base.span(...args)
    },
    context: base.context
  })
  return { batches, tracer }
})

describe.skipIf(!serverAvailable)("group commit on PostgreSQL", () => {
  it.live(
    "concurrent appends (conflicts, retries, duplicate ids, deleted and tombstoned streams) each get the outcome they get one by one",
    () =>
      Effect.gen(function*() {
        for (const seed of [11, 29, 47]) {
          const ops = scenario(seed, 160)
          const waves = 4
          const perWave = ops.length / waves
          const { batches, tracer } = yield* batchCounter

          const grouped = yield* Effect.gen(function*() {
            const store = yield* EventStore
            yield* setup
            const outcomes: Array<
              Either.Either<{ streamVersion: number; positions: ReadonlyArray<bigint> }, { readonly _tag: string }>
            > = []
            for (let w = 0; w < waves; w++) {
              // Forked in order: they queue in that order behind the first, which goes alone.
              const wave = yield* Effect.forEach(
                ops.slice(w * perWave, (w + 1) * perWave),
                (op) => Effect.either(store.append(op.streamId, op.events, { expectedVersion: op.expectedVersion })),
                { concurrency: "unbounded" }
              )
              outcomes.push(...wave)
            }
            return { outcomes, ...(yield* finalState) }
          }).pipe(Effect.withTracer(tracer), Effect.provide(storeLayer(uniqueSchema("gc_grouped"), 6)))

          const alone = yield* Effect.gen(function*() {
            const store = yield* EventStore
            yield* setup
            const outcomes: Array<
              Either.Either<{ streamVersion: number; positions: ReadonlyArray<bigint> }, { readonly _tag: string }>
            > = []
            for (const op of ops) {
              outcomes.push(
                yield* Effect.either(store.append(op.streamId, op.events, { expectedVersion: op.expectedVersion }))
              )
            }
            return { outcomes, ...(yield* finalState) }
          }).pipe(Effect.provide(storeLayer(uniqueSchema("gc_alone"), 2, { groupCommit: false })))

          // Batches were really sent, and every kind of outcome came up.
          expect(batches.count).toBeGreaterThanOrEqual(waves)
          const tags = new Set(alone.outcomes.map((outcome) => Either.isRight(outcome) ? "ok" : outcome.left._tag))
          expect([...tags].sort()).toEqual(["ConcurrencyError", "DuplicateEventId", "StreamDeleted", "ok"])

          expect(
            grouped.outcomes.map((outcome, i) => ({ i, ...ops[i], outcome: describeOutcome(outcome, grouped.idAt) }))
          ).toEqual(
            alone.outcomes.map((outcome, i) => ({ i, ...ops[i], outcome: describeOutcome(outcome, alone.idAt) }))
          )
          expect(grouped.perStream).toEqual(alone.perStream)
        }
      }),
    240_000
  )

  it.live(
    "callers interrupted while queued or while their batch is in flight cost no one else anything, and no append is half-stored",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        const hold = (streamId: string) => creating(interruptSchema, streamId)
        const waitingOn = (fn: string) =>
          eventually(
            sql<{ readonly waiting: number }>`SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE ${`%${fn}%`} AND datname = current_database()`.pipe(
              Effect.map(([row]) => (row?.waiting ?? 0) > 0)
            ),
            `an append is waiting in ${fn}`
          )

        const append = (streamId: string, tag: string) => {
          const events = [{ eventType: "E", data: { tag } }, { eventType: "E", data: { tag, second: true } }]
          return store.append(streamId, events)
        }

        const release1 = yield* hold("Hold-1")
        const release2 = yield* hold("Hold-2")
        // A lone append, in flight and waiting for Hold-1.
        const lone = yield* Effect.fork(append("Hold-1", "lone"))
        yield* waitingOn("append_unless_busy")

        // The first batch queues behind it; one of them will wait for Hold-2.
        const first = yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => i),
          (i) => Effect.fork(append(i === 0 ? "Hold-2" : `Free-${i % 7}`, `first-${i}`)),
          { concurrency: "unbounded" }
        )
        yield* Effect.yieldNow()
        const queuedAway = first.filter((_, i) => i % 5 === 1)
        yield* Fiber.interruptAll(queuedAway)

        yield* release1
        yield* Fiber.await(lone)
        // The first batch is in flight, waiting for Hold-2.
        yield* waitingOn("append_batch")
        const second = yield* Effect.forEach(
          Array.from({ length: 10 }, (_, i) => i),
          (i) => Effect.fork(append(`Free-${i % 3}`, `second-${i}`)),
          { concurrency: "unbounded" }
        )
        yield* Effect.yieldNow()
        const inFlightAway = first.filter((_, i) => i % 5 === 2)
        const secondAway = second.filter((_, i) => i % 2 === 0)
        yield* Fiber.interruptAll([...inFlightAway, ...secondAway])
        yield* release2

        const kept = [
          { tag: "lone", fiber: lone },
          ...first.flatMap((fiber, i) => i % 5 === 1 || i % 5 === 2 ? [] : [{ tag: `first-${i}`, fiber }]),
          ...second.flatMap((fiber, i) => i % 2 === 0 ? [] : [{ tag: `second-${i}`, fiber }])
        ]
        const results = yield* Effect.forEach(kept, ({ fiber, tag }) =>
          Effect.map(Fiber.await(fiber), (exit) => ({ tag, exit })))
        for (const { exit } of results) {
          expect(Exit.isSuccess(exit)).toBe(true)
        }

        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
        const tagsOf = (tag: string) =>
          all.filter((event) => (event.data as { tag?: string }).tag === tag)
        // Whoever was not interrupted got exactly its events, at the positions it was told.
        for (const { exit, tag } of results) {
          if (Exit.isSuccess(exit)) expect(exit.value.positions).toEqual(tagsOf(tag).map((event) => event.position))
        }
        // Interrupted while queued: never sent. Interrupted in flight: the batch went on, whole.
        for (let i = 0; i < 30; i++) {
          expect(tagsOf(`first-${i}`).length).toBe(i % 5 === 1 ? 0 : 2)
        }
        for (let i = 0; i < 10; i++) {
          expect(tagsOf(`second-${i}`).length).toBe(i % 2 === 0 ? 0 : 2)
        }
        // Every stream's versions run 1, 2, 3 … without gaps.
        for (const streamId of new Set(all.map((event) => event.streamId))) {
          const versions = all.filter((event) => event.streamId === streamId).map((event) => event.streamVersion).sort((
            a,
            b
          ) => a - b)
          expect(versions).toEqual(versions.map((_, i) => i + 1))
        }
      }).pipe(Effect.provide(storeLayer(interruptSchema, 8))),
    120_000
  )

  it.live(
    "an id that a racing transaction holds uncommitted fails only its own append, after that transaction commits",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        yield* store.append("Mine-2", [{ eventType: "Setup", data: 1 }, { eventType: "Setup", data: 2 }])
        const [taken, takenToo] = [idOf(7001), idOf(7002)]

        // Another writer appends those ids to "Other" and has not committed yet.
        const stored = yield* Deferred.make<void>()
        const commit = yield* Deferred.make<void>()
        const racer = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* store.append("Other", [{ eventId: taken, eventType: "E", data: 1 }, {
            eventId: takenToo,
            eventType: "E",
            data: 2
          }])
          yield* Deferred.succeed(stored, undefined)
          yield* Deferred.await(commit)
        })))
        yield* Deferred.await(stored)

        // A lone append waits for a stream being created, so that the others go together after it.
        const holdLocked = yield* Deferred.make<void>()
        const releaseHold = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO ${
            sql(`${racingSchema}.streams`)
          } (stream_id, category, version) VALUES ('Hold', 'Hold', 0)`
          yield* Deferred.succeed(holdLocked, undefined)
          yield* Deferred.await(releaseHold)
        })))
        yield* Deferred.await(holdLocked)
        const lone = yield* Effect.fork(store.append("Hold", [{ eventType: "E", data: "lone" }]))
        const batch = yield* Effect.forEach([
          store.append("Free-1", [{ eventType: "E", data: "a" }]),
          // A new stream: its row is created, then taken back with the events.
          store.append("Mine", [{ eventType: "E", data: "b" }, { eventId: taken, eventType: "E", data: "c" }], {
            expectedVersion: "no_stream"
          }),
          store.append("Mine", [{ eventType: "E", data: "d" }], { expectedVersion: "no_stream" }),
          // An existing stream: the next append of the batch finds it as it was.
          store.append("Mine-2", [{ eventId: takenToo, eventType: "E", data: "e" }], { expectedVersion: 2 }),
          store.append("Mine-2", [{ eventType: "E", data: "f" }], { expectedVersion: 2 }),
          store.append("Free-2", [{ eventType: "E", data: "g" }])
        ], (append) => Effect.fork(Effect.either(append)))
        yield* Effect.yieldNow()
        yield* Deferred.succeed(releaseHold, undefined)
        yield* Fiber.join(holder)
        yield* Fiber.join(lone)
        yield* eventually(
          sql<{ readonly waiting: number }>`SELECT count(*)::int AS waiting FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE ${"%append_batch%"} AND datname = current_database()`.pipe(
            Effect.map(([row]) => (row?.waiting ?? 0) > 0)
          ),
          "the batch waits for the racing transaction"
        )
        yield* Deferred.succeed(commit, undefined)
        yield* Fiber.join(racer)
        const outcomes = yield* Fiber.joinAll(batch)

        const summary = outcomes.map((outcome) =>
          Either.isRight(outcome)
            ? { streamVersion: outcome.right.streamVersion }
            : {
              _tag: outcome.left._tag,
              ...("existingStreamId" in outcome.left ? { existingStreamId: outcome.left.existingStreamId } : {})
            }
        )
        expect(summary).toEqual([
          { streamVersion: 1 },
          { _tag: "DuplicateEventId", existingStreamId: "Other" },
          { streamVersion: 1 },
          { _tag: "DuplicateEventId", existingStreamId: "Other" },
          { streamVersion: 3 },
          { streamVersion: 1 }
        ])
        const dataOf = (streamId: string) =>
          Stream.runCollect(store.readStream(streamId)).pipe(
            Effect.map((events) => Chunk.toReadonlyArray(events).map((event) => event.data))
          )
        expect(yield* dataOf("Mine")).toEqual(["d"])
        expect(yield* dataOf("Mine-2")).toEqual([1, 2, "f"])
        expect(yield* dataOf("Other")).toEqual([1, 2])
      }).pipe(Effect.provide(storeLayer(racingSchema, 8))),
    120_000
  )

  it.live(
    "a batch the server refuses as a whole is made again append by append: only the refused one fails",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        // The server refuses any event of type "Refused" (a trigger of this test's own).
        yield* sql.unsafe(`CREATE FUNCTION ${refusedSchema}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.event_type = 'Refused' THEN RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'P0001'; END IF; RETURN NEW; END $$`)
        yield* sql.unsafe(
          `CREATE TRIGGER refuse BEFORE INSERT ON ${refusedSchema}.events FOR EACH ROW EXECUTE FUNCTION ${refusedSchema}.refuse()`
        )

        const holdLocked = yield* Deferred.make<void>()
        const releaseHold = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          // Creating "Hold", uncommitted: the lone append waits for it, the others queue.
          yield* sql`INSERT INTO ${
            sql(`${refusedSchema}.streams`)
          } (stream_id, category, version) VALUES ('Hold', 'Hold', 0)`
          yield* Deferred.succeed(holdLocked, undefined)
          yield* Deferred.await(releaseHold)
        })))
        yield* Deferred.await(holdLocked)
        const { batches, tracer } = yield* batchCounter
        // The batch is sent by the fiber that finishes the lone append: the tracer goes with it.
        const lone = yield* Effect.fork(store.append("Hold", [{ eventType: "E", data: "lone" }])).pipe(
          Effect.withTracer(tracer)
        )
        const batch = yield* Effect.forEach(
          ["A", "B", "C", "D"],
          (streamId) =>
            Effect.fork(
              Effect.either(store.append(streamId, [{ eventType: streamId === "C" ? "Refused" : "E", data: streamId }]))
            ),
          { concurrency: "unbounded" }
        ).pipe(Effect.withTracer(tracer))
        yield* Effect.yieldNow()
        yield* Deferred.succeed(releaseHold, undefined)
        yield* Fiber.join(holder)
        yield* Fiber.join(lone)
        const outcomes = yield* Fiber.joinAll(batch)

        expect(batches.count).toBe(1)
        expect(outcomes.map((outcome) => Either.isRight(outcome) ? outcome.right.streamVersion : outcome.left._tag))
          .toEqual([1, 1, "StoreError", 1])
        const refused = outcomes[2]
        if (refused !== undefined && Either.isLeft(refused) && refused.left._tag === "StoreError") {
          // The server answered: nothing was stored, and that is known.
          expect(refused.left.outcomeUnknown).toBeUndefined()
          expect(refused.left.sqlState).toBe("P0001")
        }
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
        expect(all.map((event) => event.data).filter((data) => typeof data === "string").sort()).toEqual([
          "A",
          "B",
          "D",
          "lone"
        ])
      }).pipe(Effect.provide(storeLayer(refusedSchema, 8))),
    120_000
  )

  it.live(
    "a batch whose connection is lost fails every append in it with outcomeUnknown; retried with the same ids, each is stored once",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        const hold = (streamId: string) => creating(lostSchema, streamId)
        const release1 = yield* hold("Hold")
        const release2 = yield* hold("Hold-2")
        const lone = yield* Effect.fork(store.append("Hold", [{ eventType: "E", data: "lone" }]))
        const appends = ["Hold-2", "A", "B", "C"].map((streamId) => ({
          streamId,
          events: [{ eventId: crypto.randomUUID(), eventType: "E", data: streamId }, {
            eventId: crypto.randomUUID(),
            eventType: "E",
            data: streamId
          }]
        }))
        const batch = yield* Effect.forEach(appends, ({ events, streamId }) =>
          Effect.fork(Effect.either(store.append(streamId, events))))
        yield* Effect.yieldNow()
        yield* release1
        yield* Fiber.join(lone)
        // The batch waits for Hold-2: end its session.
        const waiting = sql<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND query LIKE ${"%append_batch%"} AND datname = current_database()`
        yield* eventually(
          Effect.map(waiting, (rows) =>
            rows.length > 0),
          "the batch waits for Hold-2"
        )
        const [backend] = yield* waiting
        yield* sql`SELECT pg_terminate_backend(${backend?.pid ?? 0})`
        const outcomes = yield* Fiber.joinAll(batch)
        yield* release2

        for (const outcome of outcomes) {
          expect(Either.isLeft(outcome) && outcome.left._tag === "StoreError" && outcome.left.outcomeUnknown === true)
            .toBe(true)
        }
        // What a caller does with outcomeUnknown: append again with the same ids.
        const retried = yield* Effect.forEach(appends, ({ events, streamId }) => store.append(streamId, events), {
          concurrency: "unbounded"
        })
        expect(retried.map((result) => result.streamVersion)).toEqual([2, 2, 2, 2])
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
        for (const { events } of appends) {
          expect(events.map((event) => all.filter((stored) => stored.eventId === event.eventId).length)).toEqual([1, 1])
        }
      }).pipe(Effect.provide(storeLayer(lostSchema, 8))),
    120_000
  )

  it.live(
    "a stream row held by an open transaction holds back only the appends to that stream, never the batch nor what queues behind it",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        yield* store.append("Held", [{ eventType: "Setup", data: 0 }])
        // The application appends to "Held" in a transaction it keeps open.
        const appended = yield* Deferred.make<void>()
        const commit = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* store.append("Held", [{ eventType: "InTransaction", data: 1 }], { expectedVersion: 1 })
          yield* Deferred.succeed(appended, undefined)
          yield* Deferred.await(commit)
        })))
        yield* Deferred.await(appended)

        // Appends to "Held" first (the lone one and some in batches), then to free streams.
        const held = yield* Effect.forEach(
          Array.from({ length: 3 }, (_, i) => store.append("Held", [{ eventType: "Waiting", data: i }])),
          (append) => Effect.fork(append)
        )
        yield* Effect.yieldNow()
        const free = yield* Effect.forEach(
          Array.from({ length: 24 }, (_, i) => store.append(`Free-${i % 6}`, [{ eventType: "E", data: i }])),
          (append) => append,
          { concurrency: 8 }
        )
        // Every free append is answered while the transaction is still open.
        expect(free.length).toBe(24)
        for (const fiber of held) expect(fiber.unsafePoll()).toBeNull()
        // And an append from inside the open transaction's own fiber-side work is not stuck behind them.
        const inTheMeantime = yield* store.append("Free-other", [{ eventType: "E", data: "x" }])
        expect(inTheMeantime.streamVersion).toBe(1)

        yield* Deferred.succeed(commit, undefined)
        yield* Fiber.join(holder)
        const versions = (yield* Fiber.joinAll(held)).map((result) => result.streamVersion).sort((a, b) => a - b)
        expect(versions).toEqual([3, 4, 5])
        const types = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream("Held"))).map((event) =>
          event.eventType
        )
        expect(types).toEqual(["Setup", "InTransaction", "Waiting", "Waiting", "Waiting"])
      }).pipe(Effect.provide(storeLayer(heldSchema, 8))),
    120_000
  )

  it.live(
    "two store instances batching into the same streams at once (and retrying each other's appends) lose nothing and agree",
    () =>
      Effect.gen(function*() {
        const first = yield* EventStore
        const second = Context.get(
          yield* Layer.build(
            PostgresEventStore.layer({ schema: twoSchema, migrate: false }).pipe(Layer.provide(pgLayer(8)))
          ),
          EventStore
        )
        const shared = Array.from({ length: 6 }, (_, i) => `Shared-${i}`)
        const pick = random(7)
        const work = Array.from({ length: 2 * 8 * 25 }, (_, i) => ({
          store: i % 2 === 0 ? first : second,
          other: i % 2 === 0 ? second : first,
          streamId: shared[pick(shared.length)] ?? "Shared-0",
          events: Array.from(
            { length: 1 + pick(2) },
            (_, k) => ({ eventId: crypto.randomUUID(), eventType: "E", data: { i, k } })
          ),
          retried: pick(4) === 0
        }))
        const results = yield* Effect.forEach(work, ({ events, other, retried, store, streamId }) =>
          retried
            // The same append sent by both instances at once: both succeed, with the same result.
            ? Effect.all([store.append(streamId, events), other.append(streamId, events)], { concurrency: 2 }).pipe(
              Effect.tap(([a, b]) => Effect.sync(() => expect(b).toEqual(a))),
              Effect.map(([a]) => a)
            )
            : store.append(streamId, events), { concurrency: 16 })

        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(first.readAll()))
        expect(all.length).toBe(work.reduce((sum, { events }) => sum + events.length, 0))
        work.forEach(({ events, streamId }, i) => {
          const stored = results[i]?.positions.map((position) => all.find((event) => event.position === position))
          expect(stored?.map((event) => [event?.streamId, event?.eventId])).toEqual(
            events.map((event) => [streamId, event.eventId])
          )
        })
        for (const streamId of shared) {
          const versions = all.filter((event) => event.streamId === streamId).map((event) => event.streamVersion).sort((
            a,
            b
          ) => a - b)
          expect(versions).toEqual(versions.map((_, i) => i + 1))
        }
      }).pipe(Effect.scoped, Effect.provide(storeLayer(twoSchema, 8))),
    120_000
  )
})

const interruptSchema = uniqueSchema("gc_interrupt")
const racingSchema = uniqueSchema("gc_racing")
const refusedSchema = uniqueSchema("gc_refused")
const lostSchema = uniqueSchema("gc_lost")
const twoSchema = uniqueSchema("gc_two")
const heldSchema = uniqueSchema("gc_held")
