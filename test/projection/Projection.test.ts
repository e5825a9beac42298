/**
 * Projections on every backend: built from history and live events, exactly
 * once for SQL read models across interruptions, with the failure policies,
 * status and one active runner.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Random, Ref, Schedule, Schema, Scope, Stream } from "effect"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import * as EventRegistry from "../../src/events/EventRegistry.js"
import * as EventType from "../../src/events/EventType.js"
import { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore } from "../../src/memory/index.js"
import { PgliteClient } from "../../src/pglite/index.js"
import { PostgresCheckpointStore, PostgresEventStore, PostgresRunnerLock } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { pgLayer, serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"
import { fileClient, startupTimeout } from "../support/postgres.js"
import { eventually as waitUntil } from "../support/wait.js"

// One embedded database for the file, a schema per test.
const pglite = fileClient(PgliteClient.layer())
beforeAll(() => pglite.start(), startupTimeout)
afterAll(() => pglite.dispose())

const appendMany = (count: number, streams = 7) =>
  Effect.flatMap(
    EventStore,
    (store) =>
      Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
        store.append(`Account-${i % streams}`, [{
          eventType: i % 5 === 0 ? "Opened" : "Deposited",
          data: { amount: i }
        }]), {
        discard: true
      })
  )

const allEvents = Effect.flatMap(EventStore, (store) => Stream.runCollect(store.readAll())).pipe(
  Effect.map((chunk) => Array.from(chunk))
)

// A projection whose filter matches almost nothing: its checkpoint moves past
// the events it does not take, so a restart resumes near the head, and it
// still applies every event it takes exactly once.
const selectiveProjection = Effect.gen(function*() {
  const store = yield* EventStore
  const checkpoints = yield* CheckpointStore
  const name = `selective-${Date.now()}`
  const applied = yield* Ref.make<ReadonlyArray<bigint>>([])
  const projection = Projection.make({
    name,
    batchSize: 10,
    filter: { eventTypes: ["Rare"] },
    handle: (event) => Ref.update(applied, (all) => [...all, event.position])
  })
  const saved = Effect.map(checkpoints.load(name), (position) => Option.getOrElse(position, () => 0n))
  const first = yield* store.append("Rare-1", [{ eventType: "Rare", data: {} }])
  yield* appendMany(120)
  const head = yield* store.headPosition
  yield* Effect.scoped(Effect.gen(function*() {
    const runner = yield* Projection.start(projection)
    yield* waitUntil(Effect.map(saved, (position) => position === head), "the checkpoint at the head")
    yield* waitUntil(
      Effect.map(runner.status, (status) => status.position === head && status.lag.positions === 0n),
      "the status at the head"
    )
  }))
  expect(yield* Ref.get(applied)).toEqual(first.positions)
  // Restarted, it goes on from the head: Rare-1 is not applied again.
  const second = yield* store.append("Rare-2", [{ eventType: "Rare", data: {} }])
  yield* Effect.scoped(Effect.gen(function*() {
    yield* Projection.start(projection)
    yield* waitUntil(Effect.map(Ref.get(applied), (all) => all.length >= 2), "Rare-2 applied")
    yield* waitUntil(Effect.map(saved, (position) => position === second.positions[0]), "the checkpoint at Rare-2")
  }))
  expect(yield* Ref.get(applied)).toEqual([...first.positions, ...second.positions])
})

describe("projections in memory", () => {
  const layer = () => MemoryEventStore.layerAll()

  it.live("a projection applies history and then live events, and saves its checkpoint", () =>
    Effect.gen(function*() {
      const applied = yield* Ref.make<ReadonlyArray<bigint>>([])
      yield* appendMany(25)
      const runner = yield* Projection.start(Projection.make({
        name: "totals",
        batchSize: 4,
        handle: (event) => Ref.update(applied, (all) => [...all, event.position])
      }))
      yield* appendMany(10)
      const events = yield* allEvents
      yield* waitUntil(Effect.map(Ref.get(applied), (all) => all.length === events.length), "all applied")
      expect(yield* Ref.get(applied)).toEqual(events.map((e) => e.position))
      const checkpoints = yield* CheckpointStore
      yield* waitUntil(
        Effect.map(checkpoints.load("totals"), (p) => Option.getOrElse(p, () => 0n) === events.at(-1)?.position),
        "checkpoint saved"
      )
      const status = yield* runner.status
      expect(status).toMatchObject({
        name: "totals",
        state: "live",
        position: events.at(-1)?.position,
        lag: { positions: 0n, millis: 0 }
      })
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a selective projection moves its checkpoint past events it does not take, and resumes from there", () =>
    selectiveProjection.pipe(Effect.provide(layer())))

  it.live("a projection leaves archived streams out, unless it includes archived events", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      yield* appendMany(14)
      yield* store.archiveStream("Account-0")
      const everything = yield* Effect.map(Stream.runCollect(store.readAll({ includeArchived: true })), (c) =>
        Array.from(c))
      const project = (name: string, includeArchived: boolean) =>
        Effect.gen(function*() {
          const applied = yield* Ref.make<ReadonlyArray<string>>([])
          yield* Projection.start(Projection.make({
            name,
            includeArchived,
            handle: (event) =>
              Ref.update(applied, (all) => [...all, event.streamId])
          }))
          const expected = everything.filter((e) => includeArchived || e.streamId !== "Account-0").map((e) =>
            e.streamId
          )
          yield* waitUntil(Effect.map(Ref.get(applied), (all) => all.length === expected.length), `${name} applied`)
          expect(yield* Ref.get(applied)).toEqual(expected)
        })
      yield* project("hot", false)
      yield* project("whole-history", true)
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a typed projection sees every event in its current shape, old versions upcast, other types not at all", () =>
    Effect.gen(function*() {
      const Deposited = EventType.make("Deposited", {
        version: 2,
        schema: Schema.Struct({ cents: Schema.Number }),
        upcasters: { 1: EventType.upcast(Schema.Struct({ euros: Schema.Number }), (v1) => ({ cents: v1.euros * 100 })) }
      })
      const registry = EventRegistry.make(Deposited)
      const store = yield* EventStore
      yield* store.append("Account-1", [
        { eventType: "Deposited", schemaVersion: 1, data: { euros: 2 } },
        { eventType: "Opened", data: {} },
        { eventType: "Deposited", schemaVersion: 2, data: { cents: 50 } }
      ])
      const seen = yield* Ref.make<ReadonlyArray<readonly [string, number]>>([])
      const runner = yield* Projection.start(Projection.typed(registry, {
        name: "typed-deposits",
        handle: (event) => Ref.update(seen, (all) => [...all, [event.type, event.data.cents] as const])
      }))
      yield* waitUntil(Effect.map(Ref.get(seen), (all) => all.length === 2), "both deposits seen")
      expect(yield* Ref.get(seen)).toEqual([["Deposited", 200], ["Deposited", 50]])
      yield* waitUntil(Effect.map(runner.status, (s) => s.state === "live"), "live")
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("a typed projection stops on an event that does not decode, naming it", () =>
    Effect.gen(function*() {
      const Deposited = EventType.make("Deposited", { schema: Schema.Struct({ cents: Schema.Number }) })
      const store = yield* EventStore
      yield* store.append("Account-2", [{ eventType: "Deposited", data: { cents: "lots" } }])
      const error = yield* Projection.run(Projection.typed(EventRegistry.make(Deposited), {
        name: "typed-strict",
        onFailure: { retry: Schedule.recurs(0), then: "stop" },
        handle: () => Effect.void
      })).pipe(Effect.flip)
      expect(error).toMatchObject({
        _tag: "ProjectionFailed",
        streamId: "Account-2",
        eventType: "Deposited",
        position: 1n
      })
    }).pipe(Effect.provide(layer())))

  it.live("a handler that keeps failing stops the projection with an error naming the event, before it", () =>
    Effect.gen(function*() {
      const applied = yield* Ref.make<ReadonlyArray<number>>([])
      const store = yield* EventStore
      yield* store.append("Order-1", [{ eventType: "Placed", data: 1 }, { eventType: "Poison", data: 2 }, {
        eventType: "Paid",
        data: 3
      }])
      const error = yield* Projection.run(Projection.make({
        name: "strict",
        onFailure: { retry: Schedule.recurs(2), then: "stop" },
        handle: (event) =>
          event.eventType === "Poison"
            ? Effect.fail(new Error("cannot handle poison"))
            : Ref.update(applied, (all) => all.includes(Number(event.data)) ? all : [...all, Number(event.data)])
      })).pipe(Effect.flip)
      expect(error._tag).toBe("ProjectionFailed")
      expect(error).toMatchObject({
        projection: "strict",
        eventType: "Poison",
        streamId: "Order-1",
        position: 2n,
        reason: "cannot handle poison"
      })
      expect(yield* Ref.get(applied)).toEqual([1])
      expect(yield* (yield* CheckpointStore).load("strict")).toEqual(Option.some(1n))
    }).pipe(Effect.provide(layer())))

  it.live("a handler that keeps failing parks the event and goes on, when the policy says park", () =>
    Effect.gen(function*() {
      const applied = yield* Ref.make<ReadonlyArray<number>>([])
      const store = yield* EventStore
      yield* store.append("Order-1", [{ eventType: "Placed", data: 1 }, { eventType: "Poison", data: 2 }, {
        eventType: "Paid",
        data: 3
      }])
      const runner = yield* Projection.start(Projection.make({
        name: "lenient",
        onFailure: { retry: Schedule.recurs(1), then: "park" },
        handle: (event) =>
          // In memory a failed batch's earlier effects are not undone: the handler is idempotent.
          event.eventType === "Poison"
            ? Effect.die("boom")
            : Ref.update(applied, (all) => all.includes(Number(event.data)) ? all : [...all, Number(event.data)])
      }))
      yield* waitUntil(Effect.map(Ref.get(applied), (all) => all.length === 2), "the others applied")
      expect(yield* Ref.get(applied)).toEqual([1, 3])
      const checkpoints = yield* CheckpointStore
      const parked = yield* checkpoints.parked("lenient")
      expect(parked.map((p) => [p.position, p.eventType, p.error])).toEqual([[2n, "Poison", "boom"]])
      yield* waitUntil(Effect.map(runner.status, (s) => s.position === 3n && s.state === "live"), "live")
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.live("two runners of one projection in one process: one runs, the other stands by and takes over", () =>
    Effect.gen(function*() {
      const applied = yield* Ref.make<ReadonlyArray<bigint>>([])
      const projection = Projection.make({
        name: "single",
        handle: (event: RecordedEvent) => Ref.update(applied, (all) => [...all, event.position])
      })
      yield* appendMany(5)
      const firstScope = yield* Effect.forkScoped(
        Effect.scoped(Effect.flatMap(Projection.start(projection), (r) =>
          Effect.zipRight(
            waitUntil(Effect.map(r.state.get, (s) => s._tag === "Running"), "first running"),
            Effect.never
          )))
      )
      yield* waitUntil(Effect.map(Ref.get(applied), (all) => all.length === 5), "first applied")
      // Interrupted before its checkpoint is saved, the first's last batch would
      // be delivered again to the second (as it must be).
      const checkpoints = yield* CheckpointStore
      const head = (yield* allEvents).at(-1)?.position
      yield* waitUntil(
        Effect.map(checkpoints.load("single"), (saved) => Option.getOrUndefined(saved) === head),
        "first saved its checkpoint"
      )
      const second = yield* Projection.start(projection)
      yield* Effect.sleep(Duration.millis(50))
      expect((yield* second.state.get)._tag).toBe("Standby")
      yield* Fiber.interrupt(firstScope)
      yield* waitUntil(Effect.map(second.state.get, (s) => s._tag === "Running"), "second takes over")
      yield* appendMany(5)
      yield* waitUntil(Effect.map(Ref.get(applied), (all) => new Set(all).size === 10), "second applied")
      expect(yield* Ref.get(applied)).toEqual((yield* allEvents).map((e) => e.position))
    }).pipe(Effect.scoped, Effect.provide(layer())))
})

const sqlBackends = [
  {
    name: "PGlite",
    available: true,
    layer: () => {
      const schema = uniqueSchema("proj")
      return Layer.merge(PostgresCheckpointStore.layer({ schema }), RunnerLock.layerLocal).pipe(
        Layer.provideMerge(PostgresEventStore.layer({ schema })),
        Layer.provideMerge(pglite.layer)
      )
    }
  },
  {
    name: "PostgreSQL",
    available: serverAvailable,
    layer: () => {
      const schema = uniqueSchema("proj")
      return Layer.merge(PostgresCheckpointStore.layer({ schema }), RunnerLock.layerLocal).pipe(
        Layer.provideMerge(storeLayer(schema, 12))
      )
    }
  }
] as const

for (const backend of sqlBackends) {
  describe.skipIf(!backend.available)(`SQL read models on ${backend.name}`, () => {
    // The read model: one row per applied event (a second application would
    // violate the primary key) and a running total.
    const setup = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE IF NOT EXISTS rm_applied (projection text, position bigint, PRIMARY KEY (projection, position))`
      yield* sql`CREATE TABLE IF NOT EXISTS rm_totals (projection text PRIMARY KEY, total bigint NOT NULL)`
    })
    const readModel = (name: string) =>
      Projection.make({
        name,
        batchSize: 7,
        handle: (event) =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* sql`INSERT INTO rm_applied VALUES (${name}, ${event.position.toString()})`
            yield* sql`INSERT INTO rm_totals VALUES (${name}, ${(event.data as { amount: number }).amount})
              ON CONFLICT (projection) DO UPDATE SET total = rm_totals.total + EXCLUDED.total`
          })
      })
    const readBack = (name: string) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const applied = yield* sql<
          { readonly position: string }
        >`SELECT a.position::text AS position FROM rm_applied a WHERE a.projection = ${name} ORDER BY a.position`
        const [total] = yield* sql<
          { readonly total: string }
        >`SELECT total::text AS total FROM rm_totals WHERE projection = ${name}`
        return { positions: applied.map((row) => BigInt(row.position)), total: Number(total?.total ?? 0) }
      })

    it.live("a projection interrupted at random points and restarted ends with the same read model as one run, nothing applied twice", () =>
      Effect.gen(function*() {
        yield* setup
        const name = `interrupted-${Date.now()}`
        const reference = `reference-${Date.now()}`
        yield* appendMany(150)
        for (let round = 0; round < 12; round++) {
          const fiber = yield* Effect.fork(Projection.run(readModel(name)))
          yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 40)))
          yield* Fiber.interrupt(fiber)
          if (round === 5) yield* appendMany(60)
        }
        const events = yield* allEvents
        const expectedTotal = events.reduce((sum, e) => sum + (e.data as { amount: number }).amount, 0)
        const finish = (projectionName: string) =>
          Effect.scoped(Effect.gen(function*() {
            yield* Projection.start(readModel(projectionName))
            yield* waitUntil(
              Effect.map(readBack(projectionName), (rm) => rm.positions.length === events.length),
              `${projectionName} complete`
            )
            return yield* readBack(projectionName)
          }))
        const resumed = yield* finish(name)
        const inOneGo = yield* finish(reference)
        expect(resumed.positions).toEqual(events.map((e) => e.position))
        expect(resumed).toEqual(inOneGo)
        expect(resumed.total).toBe(expectedTotal)
      }).pipe(Effect.provide(backend.layer())))

    it.live("a selective projection moves its checkpoint past events it does not take, in its transaction, and resumes from there", () =>
      selectiveProjection.pipe(Effect.provide(backend.layer())))

    it.live("a failing handler rolls back its whole batch: what it wrote before failing is not kept", () =>
      Effect.gen(function*() {
        yield* setup
        const sql = yield* SqlClient.SqlClient
        const name = `rollback-${Date.now()}`
        const store = yield* EventStore
        yield* store.append("Order-9", [{ eventType: "Deposited", data: { amount: 5 } }, {
          eventType: "Poison",
          data: { amount: 7 }
        }])
        const error = yield* Projection.run(Projection.make({
          name,
          onFailure: { retry: Schedule.recurs(1), then: "stop" },
          handle: (event) =>
            Effect.gen(function*() {
              yield* sql`INSERT INTO rm_applied VALUES (${name}, ${event.position.toString()})`
              if (event.eventType === "Poison") return yield* Effect.fail("poisoned")
            })
        })).pipe(Effect.flip)
        expect(error).toMatchObject({ _tag: "ProjectionFailed", eventType: "Poison" })
        // The first event was applied in its own transaction once the batch was split; the poison one left nothing.
        const { positions } = yield* readBack(name)
        expect(positions).toHaveLength(1)
      }).pipe(Effect.provide(backend.layer())))
  })
}

describe.skipIf(!serverAvailable)("one runner across store instances on PostgreSQL", () => {
  /** A store instance with its own connection pool, as another process would have; closed with `close`. */
  const startInstance = <E>(
    schema: string,
    lock: "advisory" | "lease",
    projection: Projection.Projection<E, SqlClient.SqlClient>,
    checkInterval: Duration.DurationInput = "50 millis"
  ) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const locks = lock === "advisory"
        ? PostgresRunnerLock.layerAdvisory({ schema, retryInterval: "50 millis", checkInterval })
        // A generous lease: a holder starved of CPU on a busy machine must not lose
        // it by accident. Closing an instance gives its lease back at once.
        : PostgresRunnerLock.layerLease({ schema, retryInterval: "50 millis", ttl: "10 seconds" })
      const context = yield* Layer.buildWithScope(
        Layer.mergeAll(locks, PostgresCheckpointStore.layer({ schema })).pipe(
          Layer.provideMerge(PostgresEventStore.layer({ schema })),
          Layer.provideMerge(pgLayer(3))
        ),
        scope
      )
      const runner = yield* Projection.start(projection).pipe(Effect.provide(context), Scope.extend(scope))
      return { runner, context, close: Scope.close(scope, Exit.void) }
    })

  const isRunning = (runner: Projection.ProjectionRunner) =>
    Effect.map(runner.state.get, (state) => state._tag === "Running")

  for (const lock of ["advisory", "lease"] as const) {
    it.live(`with the ${lock} lock, a second instance stands by and takes over when the first goes away`, () =>
      Effect.gen(function*() {
        const schema = uniqueSchema(`runner_${lock}`)
        const applied = yield* Ref.make<ReadonlyArray<string>>([])
        const projection = Projection.make({
          name: "solo",
          handle: (event: RecordedEvent) => Ref.update(applied, (all) => [...all, event.eventId])
        })
        const first = yield* startInstance(schema, lock, projection)
        yield* waitUntil(isRunning(first.runner), "the first runs")
        const second = yield* startInstance(schema, lock, projection)
        yield* Effect.sleep(Duration.millis(400))
        expect((yield* second.runner.state.get)._tag).toBe("Standby")

        yield* Effect.provide(appendMany(20), first.context)
        yield* waitUntil(Effect.map(Ref.get(applied), (all) => all.length === 20), "the first applied")
        // Its last batch committed: closing it mid-commit would roll the batch
        // back, and the second would apply those events again (in memory here).
        yield* waitUntil(Effect.map(first.runner.status, (s) => s.state === "live"), "the first committed")
        yield* first.close
        yield* waitUntil(isRunning(second.runner), "the second takes over")
        yield* Effect.provide(appendMany(20), second.context)
        yield* waitUntil(Effect.map(Ref.get(applied), (all) => new Set(all).size === 40), "the second applied")
        expect(yield* Ref.get(applied)).toHaveLength(40)
        yield* Effect.provide(
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA ${sql(schema)} CASCADE`),
          second.context
        )
        yield* second.close
      }))
  }

  it.live("a runner whose lock connection is killed stops, and the standby takes over", () =>
    Effect.gen(function*() {
      const schema = uniqueSchema("runner_killed")
      const projection = Projection.make({ name: "fragile", handle: () => Effect.void })
      const first = yield* startInstance(schema, "advisory", projection)
      yield* waitUntil(isRunning(first.runner), "the first runs")
      const second = yield* startInstance(schema, "advisory", projection)
      yield* Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          // Only the backend that holds this runner's lock: other tests' connections are left alone.
          sql`SELECT pg_terminate_backend(l.pid)
            FROM pg_locks l, (SELECT hashtextextended(${`effect-event-store/${schema}/projection/fragile`}, 0) AS k) h
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.classid::bigint = ((h.k >> 32) & 4294967295) AND l.objid::bigint = (h.k & 4294967295)`),
        second.context
      )
      yield* waitUntil(isRunning(second.runner), "the second takes over")
      // The first notices at its next check; until then the compare-and-set
      // checkpoint keeps it from committing anything.
      yield* waitUntil(Effect.map(isRunning(first.runner), (running) => !running), "the first stands down")
      yield* first.close
      yield* Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA ${sql(schema)} CASCADE`),
        second.context
      )
      yield* second.close
    }))

  it.live("a runner that lost its lock and commits late makes the new runner start over, not fail", () =>
    Effect.gen(function*() {
      const schema = uniqueSchema("runner_late")
      const applied = `${schema}.applied`
      // A second application of an event would violate the primary key.
      const projection = Projection.make({
        name: "late",
        batchSize: 5,
        handle: (event: RecordedEvent) =>
          Effect.gen(function*() {
            const client = yield* SqlClient.SqlClient
            yield* client`INSERT INTO ${client(applied)} VALUES (${event.position.toString()})`
            if (event.position === 1n) yield* Effect.sleep(Duration.millis(1500))
          })
      })
      // The first instance checks its lock only every 5 seconds: it will not
      // notice losing it before its slow batch commits.
      const first = yield* startInstance(schema, "advisory", projection, "5 seconds")
      yield* Effect.provide(
        Effect.gen(function*() {
          const client = yield* SqlClient.SqlClient
          yield* client`CREATE TABLE ${client(applied)} (position bigint PRIMARY KEY)`
          yield* appendMany(12)
        }),
        first.context
      )
      yield* waitUntil(isRunning(first.runner), "the first runs")
      const second = yield* startInstance(schema, "advisory", projection)
      yield* Effect.sleep(Duration.millis(300))
      // Mid-batch, the first loses its lock; the second takes over at once.
      yield* Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (client) =>
          client`SELECT pg_terminate_backend(l.pid)
            FROM pg_locks l, (SELECT hashtextextended(${`effect-event-store/${schema}/projection/late`}, 0) AS k) h
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.classid::bigint = ((h.k >> 32) & 4294967295) AND l.objid::bigint = (h.k & 4294967295)`),
        second.context
      )
      const count = Effect.provide(
        Effect.flatMap(
          SqlClient.SqlClient,
          (client) => client<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${client(applied)}`
        ),
        second.context
      ).pipe(Effect.map(([row]) => row?.n ?? 0))
      yield* waitUntil(Effect.map(count, (n) => n === 12), "every event applied once")
      // With the first gone, the second must still be able to carry on: its
      // collision with the first's late batch made it start over, not fail.
      yield* first.close
      yield* Effect.provide(appendMany(3), second.context)
      yield* waitUntil(Effect.map(count, (n) => n === 15), "the second applies what comes next")
      expect((yield* second.runner.state.get)._tag).toBe("Running")
      yield* Effect.provide(
        Effect.flatMap(SqlClient.SqlClient, (client) => client`DROP SCHEMA ${client(schema)} CASCADE`),
        second.context
      )
      yield* second.close
    }))
})
