/**
 * Runner locks at their edges: a standby can always be stopped, an
 * interrupted acquisition leaves no lock behind, a session lock behind a
 * transaction pooler is refused rather than left on a pooled connection, and
 * a runner never reports `Running` without its lock.
 */
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Ref, Schedule, Scope } from "effect"
import { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore } from "../../src/memory/index.js"
import { PgliteEventStore } from "../../src/pglite/index.js"
import { PostgresCheckpointStore, PostgresEventStore, PostgresRunnerLock } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { databaseUrl, pgLayer, serverAvailable, uniqueSchema } from "../postgres/support.js"
import * as HoldingProxy from "../support/HoldingProxy.js"
import { pgbouncerAvailable, pgbouncerLayer } from "../support/pgbouncer.js"

const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (done) => done }),
    Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => `timed out waiting until ${what}` })
  )

const inState = (runner: Projection.ProjectionRunner, tag: Projection.RunnerState["_tag"]) =>
  Effect.map(runner.state.get, (state) => state._tag === tag)

const appendMany = (count: number) =>
  Effect.flatMap(
    EventStore,
    (store) =>
      Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
        store.append(`Order-${i % 3}`, [{ eventType: "ItemAdded", data: { amount: i } }]), { discard: true })
  )

describe("the process-local runner lock", () => {
  it.live("a standby waiting for the lock can be interrupted while the holder lives, and the lock still works after", () =>
    Effect.gen(function*() {
      const lock = yield* RunnerLock.makeLocal
      const holder = yield* Scope.make()
      yield* lock.acquire("held").pipe(Scope.extend(holder))
      const waiting = yield* Effect.fork(Effect.scoped(Effect.flatMap(lock.acquire("held"), () => Effect.never)))
      yield* Effect.sleep(Duration.millis(50))
      const interrupted = yield* Fiber.interrupt(waiting).pipe(Effect.timeoutOption(Duration.seconds(10)))
      expect(Option.isSome(interrupted)).toBe(true)
      yield* Scope.close(holder, Exit.void)
      // The interrupted waiter took nothing: the next one gets the lock.
      const next = yield* Effect.scoped(Effect.as(lock.acquire("held"), "acquired")).pipe(
        Effect.timeoutOption(Duration.seconds(10))
      )
      expect(next).toEqual(Option.some("acquired"))
    }))

  it.live("closing a scope with an active and a standby runner of one projection ends both", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const projection = Projection.make({ name: "pair", handle: () => Effect.void })
      const first = yield* Projection.start(projection).pipe(Scope.extend(scope))
      yield* waitUntil(inState(first, "Running"), "the first runs")
      const second = yield* Projection.start(projection).pipe(Scope.extend(scope))
      yield* Effect.sleep(Duration.millis(50))
      expect((yield* second.state.get)._tag).toBe("Standby")
      const closed = yield* Scope.close(scope, Exit.void).pipe(Effect.timeoutOption(Duration.seconds(10)))
      expect(Option.isSome(closed)).toBe(true)
    }).pipe(Effect.provide(MemoryEventStore.layerAll())))
})

describe("a runner superseded by a rebuild", () => {
  it.live(
    "never reports Running once it has let its lock go: at most one runner says Running at any time",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const readModel = Projection.make({
          name: "totals",
          tables: { totals: "event_store.totals" },
          setup: (tables) => sql`CREATE TABLE ${sql(tables.totals)} (order_id text PRIMARY KEY, total bigint NOT NULL)`,
          handle: (event, tables) =>
            sql`INSERT INTO ${sql(tables.totals)} VALUES (${event.streamId}, ${
              (event.data as { amount: number }).amount
            })
            ON CONFLICT (order_id) DO UPDATE SET total = ${sql(tables.totals)}.total + EXCLUDED.total`
        })
        yield* appendMany(9)
        const first = yield* Projection.start(readModel)
        yield* waitUntil(Effect.map(first.status, (s) => s.state === "live"), "the first is live")
        const second = yield* Projection.start(readModel)
        const bothRunning = yield* Ref.make(0)
        const sampler = yield* Effect.gen(function*() {
          const a = yield* first.state.get
          const b = yield* second.state.get
          if (a._tag === "Running" && b._tag === "Running") yield* Ref.update(bothRunning, (n) => n + 1)
        }).pipe(Effect.repeat(Schedule.spaced("2 millis")), Effect.fork)

        expect(yield* Projection.rebuild(readModel)).toBe(2)
        yield* waitUntil(
          Effect.map(Projection.status(readModel), (s) => s.generation === 2 && s.rebuild === undefined),
          "the rebuild switched over"
        )
        // The runner that switched stood down and one of the two took over.
        yield* waitUntil(
          Effect.zipWith(inState(first, "Running"), inState(second, "Running"), (a, b) => a || b),
          "a runner runs generation 2"
        )
        yield* Effect.sleep(Duration.millis(300))
        yield* Fiber.interrupt(sampler)
        expect(yield* Ref.get(bothRunning)).toBe(0)
      }).pipe(Effect.scoped, Effect.provide(PgliteEventStore.layer())),
    { timeout: 120_000 }
  )
})

describe.skipIf(!serverAvailable)("the advisory lock on PostgreSQL", () => {
  const target = new URL(databaseUrl)
  const withSchema = (schema: string) => <A, E, R>(test: Effect.Effect<A, E, R>) =>
    Effect.zipRight(
      appendMany(12).pipe(Effect.provide(PostgresEventStore.layer({ schema }).pipe(Layer.provide(pgLayer(2))))),
      test
    ).pipe(
      Effect.ensuring(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`).pipe(
          Effect.provide(pgLayer(1)),
          Effect.orDie
        )
      )
    )
  const keyOf = (schema: string, name: string) => `effect-event-store/${schema}/projection/${name}`
  // How many sessions hold the runner lock of `name`, seen from a connection of its own.
  const holders = (schema: string, name: string) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql<{ readonly n: number }>`SELECT count(*)::int AS n
        FROM pg_locks l, (SELECT hashtextextended(${keyOf(schema, name)}, 0) AS k) h
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.classid::bigint = ((h.k >> 32) & 4294967295) AND l.objid::bigint = (h.k & 4294967295)`).pipe(
        Effect.map(([row]) => row?.n ?? -1),
        Effect.provide(pgLayer(1))
      )

  it.live(
    "an acquisition interrupted while its lock statement is in flight leaves no lock on the pooled connection",
    () =>
      Effect.gen(function*() {
        const schema = uniqueSchema("advisory_interrupt")
        const proxy = yield* HoldingProxy.make(
          { host: target.hostname, port: Number(target.port || 5432) },
          "pg_try_advisory_lock"
        )
        const proxied = new URL(databaseUrl)
        proxied.port = String(proxy.port)
        // A long idle timeout: a leaked lock would stay on the idle connection for the whole test.
        const client = PgClient.layer({
          url: Redacted.make(proxied.toString()),
          maxConnections: 3,
          idleTimeout: Duration.minutes(5)
        })
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          PostgresRunnerLock.layerAdvisory({ schema, retryInterval: "50 millis" }).pipe(Layer.provideMerge(client)),
          scope
        )
        const lock = Context.get(context, RunnerLock.RunnerLock)
        const acquiring = yield* Effect.fork(
          Effect.scoped(Effect.flatMap(lock.acquire("interrupted"), () => Effect.never))
        )
        // The server has taken the lock; its answer is held back.
        yield* proxy.held.pipe(
          Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => "the lock statement never ran" })
        )
        const interrupting = yield* Effect.fork(Fiber.interrupt(acquiring))
        yield* Effect.sleep(Duration.millis(200))
        yield* proxy.release
        yield* Fiber.join(interrupting)
        expect(yield* holders(schema, "interrupted")).toBe(0)
        yield* Scope.close(scope, Exit.void)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  describe.skipIf(!pgbouncerAvailable)("behind PgBouncer in transaction mode", () => {
    const instance = (schema: string, lock: "advisory" | "lease", client: Layer.Layer<SqlClient.SqlClient, unknown>) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const applied = yield* Ref.make(0)
        const locks = lock === "advisory"
          ? PostgresRunnerLock.layerAdvisory({ schema, retryInterval: "50 millis", checkInterval: "50 millis" })
          : PostgresRunnerLock.layerLease({ schema, retryInterval: "50 millis", ttl: "3 seconds" })
        const context = yield* Layer.buildWithScope(
          Layer.mergeAll(locks, PostgresCheckpointStore.layer({ schema, migrate: false })).pipe(
            Layer.provideMerge(PostgresEventStore.layer({ schema, migrate: false })),
            Layer.provideMerge(client)
          ),
          scope
        )
        const runner = yield* Projection.start(Projection.make({
          name: "pooled",
          handle: (_: RecordedEvent) => Ref.update(applied, (n) => n + 1)
        })).pipe(Effect.provide(context), Scope.extend(scope))
        return { runner, applied: Ref.get(applied), close: Scope.close(scope, Exit.void) }
      })

    const failedWith = (runner: Projection.ProjectionRunner) =>
      Effect.map(
        runner.state.get,
        (state) => state._tag === "Failed" ? Option.getOrUndefined(Cause.failureOption(state.cause))?._tag : undefined
      )

    it.live(
      "the advisory lock refuses with LockUnsupported, leaves no lock behind, and a directly connected runner then runs",
      () => {
        const schema = uniqueSchema("pooled_advisory")
        return Effect.gen(function*() {
          const first = yield* instance(schema, "advisory", pgbouncerLayer(4))
          const second = yield* instance(schema, "advisory", pgbouncerLayer(4))
          yield* waitUntil(
            Effect.map(failedWith(first.runner), (tag) => tag === "LockUnsupported"),
            "the first refuses"
          )
          yield* waitUntil(
            Effect.map(failedWith(second.runner), (tag) => tag === "LockUnsupported"),
            "the second refuses"
          )
          const { reason } = (yield* first.runner.state.get) as Extract<Projection.RunnerState, { _tag: "Failed" }>
          expect(reason).toContain("layerLease")
          expect((yield* first.runner.status).state).toBe("failed")
          expect(yield* holders(schema, "pooled")).toBe(0)
          // Nothing stray blocks a runner whose connections are direct. (A runner
          // behind the pooler may have applied events before it noticed.)
          const direct = yield* instance(schema, "advisory", pgLayer(3))
          yield* waitUntil(
            Effect.map(direct.runner.status, (s) => s.state === "live" && s.position === s.head),
            "the direct runner is live"
          )
          yield* Effect.all([first.close, second.close, direct.close])
        }).pipe(withSchema(schema))
      },
      { timeout: 90_000 }
    )

    it.live("the lease lock works there: one runner applies every event once, the other stands by", () => {
      const schema = uniqueSchema("pooled_lease")
      return Effect.gen(function*() {
        const first = yield* instance(schema, "lease", pgbouncerLayer(4))
        const second = yield* instance(schema, "lease", pgbouncerLayer(4))
        yield* waitUntil(
          Effect.map(Effect.all([first.applied, second.applied]), ([a, b]) => a + b === 12),
          "every event applied"
        )
        const states = [(yield* first.runner.state.get)._tag, (yield* second.runner.state.get)._tag].sort()
        expect(states).toEqual(["Running", "Standby"])
        yield* Effect.all([first.close, second.close])
      }).pipe(withSchema(schema))
    }, { timeout: 90_000 })
  })
})
