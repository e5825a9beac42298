/**
 * Never skip on a standby: on a hot standby `pg_locks` shows none of the
 * primary's appends in flight and the position sequence runs ahead of the
 * positions handed out, so the settled horizon means nothing there. The store
 * refuses to work on one, with a `StoreError` caused by `HotStandby`: when it
 * is opened there, and on every read of the horizon, for a connection can land
 * on a standby at any time (here: behind a load balancer that fails over).
 */
import type * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Layer, Logger, Option, Ref, Schedule, Scope, Stream } from "effect"
import { HotStandby, type StoreError } from "../../src/Errors.js"
import { EventStore } from "../../src/EventStore.js"
import * as Wakeups from "../../src/internal/postgres/wakeups.js"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { caughtUp, clientLayer, loadBalancer, standbyAvailable, standbyUrl } from "../support/standby.js"
import { eventually as waitUntil, patience } from "../support/wait.js"
import { databaseUrl, uniqueSchema } from "./support.js"

/** The `SqlClient` of a new pool on `url`, for the scope. */
const clientOn = (url: string) => Effect.map(Layer.build(clientLayer(url)), Context.get(SqlClient.SqlClient))

const refusedOnStandby = (error: StoreError | Migrator.MigrationError) => {
  expect(error.cause).toBeInstanceOf(HotStandby)
  expect(error.message).toContain("hot standby")
  expect(error.message).toContain("Connect the store to the primary")
}

/** Runs `stream` to its end or failure; what it emitted before failing, and the failure. */
const drain = <A, E>(stream: Stream.Stream<A, E>) =>
  Effect.gen(function*() {
    const emitted = yield* Ref.make<ReadonlyArray<A>>([])
    const error = yield* stream.pipe(Stream.runForEach((a) => Ref.update(emitted, (all) => [...all, a])), Effect.flip)
    return { emitted: yield* Ref.get(emitted), error }
  })

/** A store of its own (schema `schema`) on the primary, with `count` events appended. */
const seed = (primary: SqlClient.SqlClient, schema: string, count: number) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    for (let i = 1; i <= count; i++) yield* store.append(`Order-${i % 3}`, [{ eventType: "Placed", data: { i } }])
  }).pipe(
    Effect.provide(PostgresEventStore.layer({ schema })),
    Effect.provideService(SqlClient.SqlClient, primary)
  )

const dropSchema = (primary: SqlClient.SqlClient, schema: string) =>
  Effect.addFinalizer(() => primary`DROP SCHEMA IF EXISTS ${primary(schema)} CASCADE`.pipe(Effect.orDie))

/**
 * Pools on the primary and on the standby, a load balancer in front of the
 * primary with a pool behind it, and a schema of its own, dropped at the end.
 */
const setup = (prefix: string) =>
  Effect.gen(function*() {
    const primary = yield* clientOn(databaseUrl)
    const standby = yield* clientOn(standbyUrl)
    const balancer = yield* loadBalancer(databaseUrl)
    const schema = uniqueSchema(prefix)
    yield* dropSchema(primary, schema)
    const behind = yield* clientOn(balancer.url)
    return { primary, standby, balancer, behind, schema }
  })

/** The balancer fails over to the standby once it has every event; returns when the pool behind it reaches the standby. */
const failOver = ({ balancer, behind, primary, standby }: Effect.Effect.Success<ReturnType<typeof setup>>) =>
  Effect.gen(function*() {
    yield* caughtUp(primary, standby)
    yield* balancer.switchTo(standbyUrl)
    yield* waitUntil(
      behind<{ readonly standby: boolean }>`SELECT pg_is_in_recovery() AS standby`.pipe(
        Effect.map(([row]) => row?.standby === true),
        Effect.orElseSucceed(() => false)
      ),
      "the pool's connections reach the standby"
    )
  })

describe.skipIf(!standbyAvailable)(`on a hot standby (${standbyUrl.replace(/:[^:@/]*@/, ":***@")})`, () => {
  it.live("the store does not open on a standby, migrating or not; on the primary it does", () =>
    Effect.gen(function*() {
      const { primary, schema, standby } = yield* setup("standby_open")
      yield* seed(primary, schema, 3)
      yield* caughtUp(primary, standby)

      const open = (options: PostgresEventStore.PostgresEventStoreOptions) =>
        Effect.scoped(Layer.build(PostgresEventStore.layer(options))).pipe(
          Effect.provideService(SqlClient.SqlClient, standby)
        )
      const migrating = yield* Effect.flip(open({ schema }))
      expect(migrating._tag).toBe("MigrationError")
      if (migrating._tag === "MigrationError") refusedOnStandby(migrating)
      const notMigrating = yield* Effect.flip(open({ schema, migrate: false }))
      expect(notMigrating._tag).toBe("StoreError")
      if (notMigrating._tag === "StoreError") refusedOnStandby(notMigrating)

      const events = yield* Effect.flatMap(EventStore, (store) => Stream.runCollect(store.readAll())).pipe(
        Effect.provide(PostgresEventStore.layer({ schema })),
        Effect.provideService(SqlClient.SqlClient, primary)
      )
      expect(events.length).toBe(3)
    }).pipe(Effect.scoped))

  it.live("once its connections land on a standby, every read of the global log fails and emits nothing; appends fail too", () =>
    Effect.gen(function*() {
      const servers = yield* setup("standby_reads")
      const { behind, schema } = servers
      const store = yield* Layer.build(PostgresEventStore.layer({ schema })).pipe(
        Effect.map(Context.get(EventStore)),
        Effect.provideService(SqlClient.SqlClient, behind)
      )

      // On the primary: everything.
      for (let i = 1; i <= 5; i++) yield* store.append(`Order-${i % 2}`, [{ eventType: "Placed", data: { i } }])
      const all = Array.from(yield* Stream.runCollect(store.readAll()))
      expect(all.map((event) => event.streamVersion)).toEqual([1, 1, 2, 2, 3])
      const head = yield* store.headPosition
      expect(head).toBe(all[4]?.position)
      expect((yield* Stream.runCollect(store.subscribe().pipe(Stream.take(5)))).length).toBe(5)

      // The balancer fails over to the standby, which has every event.
      yield* failOver(servers)

      const read = yield* drain(store.readAll())
      expect(read.emitted).toEqual([])
      refusedOnStandby(read.error as StoreError)
      const followed = yield* drain(store.subscribe({ from: 0n, retry: Schedule.stop }))
      expect(followed.emitted).toEqual([])
      refusedOnStandby(followed.error as StoreError)
      refusedOnStandby(yield* Effect.flip(store.headPosition))

      const append = yield* Effect.flip(store.append("Order-9", [{ eventType: "Placed", data: {} }]))
      expect(append._tag).toBe("StoreError")
      if (append._tag === "StoreError") refusedOnStandby(append)
      // Inside a transaction the store cannot ask the server what it is: the message names both reasons.
      const inTransaction = yield* Effect.flip(
        behind.withTransaction(store.append("Order-9", [{ eventType: "Placed", data: {} }]))
      )
      expect(inTransaction._tag).toBe("StoreError")
      expect(inTransaction.message).toContain("SQLSTATE 25006")
      expect(inTransaction.message).toContain("hot standby")
    }).pipe(Effect.scoped))

  it.live("a projection stands still on a standby, showing why, and resumes exactly once on the primary", () =>
    Effect.gen(function*() {
      const servers = yield* setup("standby_projection")
      const { balancer, behind, primary, schema } = servers
      yield* seed(primary, schema, 4)
      const services = yield* Layer.build(
        Layer.mergeAll(
          PostgresEventStore.layer({ schema }),
          PostgresCheckpointStore.layer({ schema }),
          RunnerLock.layerLocal
        )
      ).pipe(Effect.provideService(SqlClient.SqlClient, behind))

      const applied = yield* Ref.make<ReadonlyArray<bigint>>([])
      const projection = Projection.make({
        name: "orders",
        handle: (event) => Ref.update(applied, (all) => [...all, event.position])
      })
      const runner = yield* Projection.start(projection).pipe(Effect.provide(services))
      yield* waitUntil(Effect.map(Ref.get(applied), (all) => all.length === 4), "the projection applied the history")

      yield* failOver(servers)
      const restarting = yield* runner.state.changes.pipe(
        Stream.filter((state) => state._tag === "Restarting" && state.reason.includes("hot standby")),
        Stream.runHead,
        Effect.timeoutFail({ duration: patience, onTimeout: () => "the runner never reported the standby" })
      )
      expect(Option.isSome(restarting)).toBe(true)
      const statusError = yield* Effect.flip(runner.status)
      expect(statusError._tag).toBe("StoreError")
      if (statusError._tag === "StoreError") refusedOnStandby(statusError)

      // Back on the primary (a failover the other way): the projection resumes by itself.
      const [appended] = yield* Effect.flatMap(
        EventStore,
        (store) => store.append("Order-7", [{ eventType: "Placed", data: {} }])
      ).pipe(
        Effect.provide(PostgresEventStore.layer({ schema, migrate: false })),
        Effect.provideService(SqlClient.SqlClient, primary),
        Effect.map((result) => result.positions)
      )
      yield* balancer.switchTo(databaseUrl)
      yield* waitUntil(Effect.map(Ref.get(applied), (all) => all.length === 5), "the projection applied the new event")
      const positions = yield* Ref.get(applied)
      expect(new Set(positions).size).toBe(5)
      expect(positions.at(-1)).toBe(appended)
      expect((yield* runner.state.get)._tag).toBe("Running")
    }).pipe(Effect.scoped))

  it.live("a subscription rides out a failover to a standby: it delivers nothing there and, back on the primary, every event once", () =>
    Effect.gen(function*() {
      const servers = yield* setup("standby_subscribe")
      const { balancer, behind, primary, schema } = servers
      yield* seed(primary, schema, 4)
      const store = yield* Layer.build(PostgresEventStore.layer({ schema, migrate: false })).pipe(
        Effect.map(Context.get(EventStore)),
        Effect.provideService(SqlClient.SqlClient, behind)
      )
      const received = yield* Ref.make<ReadonlyArray<bigint>>([])
      yield* store.subscribe({ from: 0n }).pipe(
        Stream.runForEach((event) => Ref.update(received, (all) => [...all, event.position])),
        Effect.forkScoped
      )
      yield* waitUntil(Effect.map(Ref.get(received), (all) => all.length === 4), "the subscriber caught up")

      yield* failOver(servers)
      const [appended] = yield* Effect.flatMap(
        EventStore,
        (primaryStore) => primaryStore.append("Order-7", [{ eventType: "Placed", data: {} }])
      ).pipe(
        Effect.provide(PostgresEventStore.layer({ schema, migrate: false })),
        Effect.provideService(SqlClient.SqlClient, primary),
        Effect.map((result) => result.positions)
      )
      // On the standby the new event is replayed, but the subscriber must not take it from there.
      yield* Effect.sleep(Duration.millis(500))
      expect((yield* Ref.get(received)).length).toBe(4)

      yield* balancer.switchTo(databaseUrl)
      yield* waitUntil(Effect.map(Ref.get(received), (all) => all.length === 5), "the subscriber got the new event")
      const positions = yield* Ref.get(received)
      expect(new Set(positions).size).toBe(5)
      expect(positions.at(-1)).toBe(appended)
    }).pipe(Effect.scoped))

  it.live("the wake-up poller reads nothing on a standby: it reports the refusal once", () =>
    Effect.gen(function*() {
      const { primary, schema, standby } = yield* setup("standby_poll")
      yield* seed(primary, schema, 1)
      yield* caughtUp(primary, standby)

      const warnings = yield* Ref.make<ReadonlyArray<string>>([])
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") Effect.runSync(Ref.update(warnings, (all) => [...all, String(message)]))
      })
      const scope = yield* Scope.make()
      const wakeups = yield* Wakeups.make(schema, { pollInterval: "5 millis" }).pipe(
        Effect.provideService(SqlClient.SqlClient, standby),
        Scope.extend(scope),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      const next = yield* Scope.extend(wakeups.register, scope)
      yield* next
      yield* waitUntil(Effect.map(Ref.get(warnings), (all) => all.length > 0), "the poller reported the standby")
      yield* Effect.sleep(Duration.millis(100))
      yield* Scope.close(scope, Exit.void)
      const reported = yield* Ref.get(warnings)
      expect(reported.length).toBe(1)
      expect(reported[0]).toContain("Cannot follow the global log on a hot standby")
    }).pipe(Effect.scoped))
})
