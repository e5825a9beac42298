/**
 * How projection runners end, and how a projection stopped by a poison event
 * goes on: every end shows in the runner's state and status and in the log;
 * the failing event can be skipped or parked at run time, from the runner's
 * handle or from any process, exactly once.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import type { Scope } from "effect"
import { Cause, Context, Duration, Effect, Either, HashMap, Layer, Logger, Option, Ref, Schedule, Stream } from "effect"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import { type InvalidInput, StoreError } from "../../src/Errors.js"
import { EventStore } from "../../src/EventStore.js"
import { Generations } from "../../src/Generations.js"
import { MemoryEventStore } from "../../src/memory/index.js"
import { PgliteEventStore } from "../../src/pglite/index.js"
import { PostgresCheckpointStore } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { pgLayer, serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"

const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (done) => done }),
    Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => `timed out waiting until ${what}` })
  )

interface LogEntry {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** A logger that keeps what it is given, beside the default one. */
const capturingLogger = () => {
  const entries: Array<LogEntry> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    entries.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return { entries, layer: Logger.add(logger) }
}

const failureOf = (state: Projection.RunnerState) =>
  state._tag === "Failed" ? Option.getOrUndefined(Cause.failureOption(state.cause)) : undefined

/** A read model that records the positions it applied, and fails on `Poison` events. */
class ReadModel extends Context.Tag("test/ReadModel")<ReadModel, {
  readonly projection: (name: string) => Projection.Projection<Error>
  readonly applied: (name: string) => Effect.Effect<ReadonlyArray<bigint>>
}>() {}

const poisonPolicy = { retry: Schedule.recurs(1), then: "stop" } as const
// Each case has its projection and its stream in a store the cases of a backend share.
const streamOf = (name: string) => `Order-${name}`

/** A projection of the case's stream that applies events with `apply`, and fails on `Poison` ones. */
const poisoned = (name: string, apply: (event: RecordedEvent) => Effect.Effect<void>) =>
  Projection.make({
    name,
    filter: { streamIds: [streamOf(name)] },
    batchSize: 4,
    onFailure: poisonPolicy,
    handle: (event: RecordedEvent) =>
      event.eventType === "Poison" ? Effect.fail(new Error("cannot apply poison")) : apply(event)
  })

// Exactly once on SQL: a second application of a position violates the key.
const sqlReadModel = (schema: string) =>
  Layer.effect(
    ReadModel,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const table = sql(`${schema}.rm_failures`)
      yield* sql`CREATE TABLE ${table} (projection text, position bigint, PRIMARY KEY (projection, position))`
      return {
        projection: (name: string) =>
          poisoned(name, (event) =>
            sql`INSERT INTO ${table} VALUES (${name}, ${event.position.toString()})`.pipe(Effect.asVoid, Effect.orDie)),
        applied: (name: string) =>
          sql<
            { readonly applied: string }
          >`SELECT position::text AS applied FROM ${table} WHERE projection = ${name} ORDER BY position`.pipe(
            Effect.map((rows) =>
              rows.map((row) =>
                BigInt(row.applied)
              )
            ),
            Effect.orDie
          )
      }
    })
  )

const memoryReadModel = Layer.effect(
  ReadModel,
  Effect.gen(function*() {
    const applied = yield* Ref.make<ReadonlyMap<string, ReadonlyArray<bigint>>>(new Map())
    return {
      projection: (name: string) =>
        // In memory a failed batch's effects are not undone: idempotent by position.
        poisoned(name, (event) =>
          Ref.update(applied, (all) => {
            const positions = all.get(name) ?? []
            return positions.includes(event.position) ? all : new Map(all).set(name, [...positions, event.position])
          })),
      applied: (name: string) => Effect.map(Ref.get(applied), (all) => all.get(name) ?? [])
    }
  })
)

interface Backend {
  readonly name: string
  readonly available: boolean
  readonly make: () => {
    readonly layer: Layer.Layer<EventStore | CheckpointStore | RunnerLock.RunnerLock | ReadModel, unknown>
    /** The CheckpointStore of another process on the same store, where the backend has other processes. */
    readonly otherProcess: Option.Option<Layer.Layer<CheckpointStore, unknown>>
  }
}

const backends: ReadonlyArray<Backend> = [
  {
    name: "memory",
    available: true,
    make: () => ({
      layer: Layer.merge(MemoryEventStore.layerAll(), memoryReadModel),
      otherProcess: Option.none()
    })
  },
  {
    name: "PGlite",
    available: true,
    make: () => ({
      layer: sqlReadModel("event_store").pipe(Layer.provideMerge(PgliteEventStore.layer())),
      otherProcess: Option.none()
    })
  },
  {
    name: "PostgreSQL",
    available: serverAvailable,
    make: () => {
      const schema = uniqueSchema("failures")
      return {
        layer: sqlReadModel(schema).pipe(
          Layer.provideMerge(Layer.merge(PostgresCheckpointStore.layer({ schema }), RunnerLock.layerLocal)),
          Layer.provideMerge(storeLayer(schema, 6))
        ),
        // Its own connection pool and CheckpointStore on the same schema.
        otherProcess: Option.some(
          PostgresCheckpointStore.layer({ schema, migrate: false }).pipe(Layer.provide(pgLayer(2)))
        )
      }
    }
  }
]

const poisonHistory = (stream = "Order-1") =>
  Effect.flatMap(EventStore, (store) =>
    store.append(stream, [
      { eventType: "Placed", data: {} },
      { eventType: "Poison", data: {} },
      { eventType: "Paid", data: {} }
    ]))

for (const backend of backends) {
  const { layer: shared, otherProcess } = backend.make()
  describe.skipIf(!backend.available)(`a poison event on ${backend.name}`, () => {
    layer(shared, { timeout: 120_000, excludeTestServices: true })((it) => {
      const scenario = <A, E>(
        name: string,
        body: (
          context: {
            readonly runner: Projection.ProjectionRunner
            readonly readModel: Context.Tag.Service<ReadModel>
            readonly logs: ReadonlyArray<LogEntry>
            /** The positions of the case's events: applied, poison, applied. */
            readonly at: readonly [bigint, bigint, bigint]
          }
        ) => Effect.Effect<A, E, EventStore | CheckpointStore>
      ) =>
        Effect.gen(function*() {
          const readModel = yield* ReadModel
          const { positions } = yield* poisonHistory(streamOf(name))
          const [first = -1n, poison = -1n, last = -1n] = positions
          const logs = capturingLogger()
          return yield* Effect.gen(function*() {
            const runner = yield* Projection.start(readModel.projection(name))
            yield* waitUntil(Effect.map(runner.state.get, (state) => state._tag === "Failed"), "the projection stops")
            return yield* body({ runner, readModel, logs: logs.entries, at: [first, poison, last] })
          }).pipe(Effect.provide(logs.layer))
        }).pipe(Effect.scoped)

      it.effect(
        "stops the projection: its state, status and await say so, any process sees it, and it is logged with the name and position",
        () =>
          scenario("stopped", ({ at, logs, readModel, runner }) =>
            Effect.gen(function*() {
              expect(failureOf(yield* runner.state.get)).toMatchObject({
                _tag: "ProjectionFailed",
                eventType: "Poison",
                position: at[1]
              })
              const status = yield* runner.status
              expect(status).toMatchObject({
                state: "failed",
                position: at[0],
                failure: { position: at[1], eventType: "Poison" }
              })
              expect(status.error).toContain("cannot apply poison")
              // From another process, with the projection and the stores only.
              expect(yield* Projection.status(readModel.projection("stopped"))).toMatchObject({
                state: "failed",
                failure: { position: at[1], eventType: "Poison", error: "cannot apply poison" }
              })
              expect(Option.map(yield* Projection.failure("stopped"), (f) => [f.position, f.after, f.checkpoint]))
                .toEqual(
                  Option.some([at[1], at[0], "stopped"])
                )
              expect(yield* Effect.flip(runner.await)).toMatchObject({ _tag: "ProjectionFailed", position: at[1] })
              expect(logs.filter((entry) => entry.level === "ERROR").map((entry) => entry.annotations)).toContainEqual({
                projection: "stopped",
                position: at[1].toString()
              })
              expect(yield* readModel.applied("stopped")).toEqual([at[0]])
            })),
        { timeout: 60_000 }
      )

      it.effect(
        "skipping the event through the runner resumes it: what follows is applied once, the skipped event never",
        () =>
          scenario("skipped", ({ at, readModel, runner }) =>
            Effect.gen(function*() {
              expect(yield* runner.skip()).toMatchObject({ position: at[1], eventType: "Poison" })
              yield* waitUntil(
                Effect.map(runner.status, (s) => s.state === "live" && s.position === at[2]),
                "live again"
              )
              const { positions: [next = -1n] } = yield* Effect.flatMap(
                EventStore,
                (store) => store.append(streamOf("skipped"), [{ eventType: "Placed", data: {} }])
              )
              yield* waitUntil(
                Effect.map(readModel.applied("skipped"), (all) => all.length === 3),
                "the next event applied"
              )
              expect(yield* readModel.applied("skipped")).toEqual([at[0], at[2], next])
              expect(yield* (yield* CheckpointStore).parked("skipped")).toEqual([])
              expect(yield* Projection.failure("skipped")).toEqual(Option.none())
              expect((yield* runner.status).failure).toBeUndefined()
            })),
        { timeout: 60_000 }
      )

      it.effect(
        "parking the event through the runner records it with its error and resumes",
        () =>
          scenario("parked", ({ at, readModel, runner }) =>
            Effect.gen(function*() {
              yield* runner.park({ position: at[1] })
              yield* waitUntil(Effect.map(readModel.applied("parked"), (all) => all.length === 2), "the rest applied")
              expect(yield* readModel.applied("parked")).toEqual([at[0], at[2]])
              const parked = yield* (yield* CheckpointStore).parked("parked")
              expect(parked.map((p) => [p.position, p.eventType, p.error])).toEqual([[
                at[1],
                "Poison",
                "cannot apply poison"
              ]])
              yield* waitUntil(Effect.map(runner.status, (s) => s.state === "live"), "live again")
            })),
        { timeout: 60_000 }
      )

      it.effect(
        `skipping or parking without the runner's handle${
          Option.isSome(otherProcess) ? ", from another process," : ""
        } resumes the stopped runner`,
        () =>
          scenario("elsewhere", ({ at, readModel, runner }) =>
            Effect.gen(function*() {
              const park = Projection.park("elsewhere")
              const parked = yield* Option.match(otherProcess, {
                onNone: () => park,
                onSome: (other) => Effect.provide(park, other)
              })
              expect(parked.position).toBe(at[1])
              yield* waitUntil(
                Effect.map(readModel.applied("elsewhere"), (all) => all.length === 2),
                "the rest applied"
              )
              expect(yield* readModel.applied("elsewhere")).toEqual([at[0], at[2]])
              yield* waitUntil(Effect.map(runner.state.get, (state) => state._tag === "Running"), "running again")
              expect((yield* (yield* CheckpointStore).parked("elsewhere")).map((p) => p.position)).toEqual([at[1]])
            })),
        { timeout: 60_000 }
      )

      it.effect(
        "skip refuses when the projection is not stopped, or not on the position given, and changes nothing",
        () =>
          scenario("refused", ({ at, readModel, runner }) =>
            Effect.gen(function*() {
              expect(yield* Effect.flip(Projection.skip("never-started"))).toMatchObject({
                _tag: "ProjectionNotStopped"
              })
              expect(yield* Effect.flip(runner.skip({ position: at[2] }))).toMatchObject({
                _tag: "ProjectionNotStopped",
                position: at[2]
              })
              expect((yield* runner.state.get)._tag).toBe("Failed")
              expect(Option.map(yield* (yield* CheckpointStore).load("refused"), String)).toEqual(
                Option.some(at[0].toString())
              )
              yield* runner.skip({ position: at[1] })
              yield* waitUntil(Effect.map(readModel.applied("refused"), (all) => all.length === 2), "the rest applied")
            })),
        { timeout: 60_000 }
      )

      it.effect(
        "a skip and a park at once: one resolves the event, the other finds nothing to resolve",
        () =>
          scenario("raced", ({ at, readModel, runner }) =>
            Effect.gen(function*() {
              const results = yield* Effect.all(
                [Effect.either(runner.skip()), Effect.either(Projection.park("raced"))],
                {
                  concurrency: 2
                }
              )
              expect(results.filter(Either.isRight)).toHaveLength(1)
              expect(results.filter(Either.isLeft).map((r) => r.left._tag)).toEqual(["ProjectionNotStopped"])
              yield* waitUntil(Effect.map(readModel.applied("raced"), (all) => all.length === 2), "the rest applied")
              expect(yield* readModel.applied("raced")).toEqual([at[0], at[2]])
            })),
        { timeout: 60_000 }
      )
    })
  })
}

describe("other ends of a runner (in memory)", () => {
  const memory = () => MemoryEventStore.layerAll()

  /** The memory CheckpointStore, with `load` replaced for the checkpoint `name`. */
  const withLoad = (
    name: string,
    load: (
      original: Effect.Effect<Option.Option<bigint>, InvalidInput | StoreError>
    ) => Effect.Effect<Option.Option<bigint>, InvalidInput | StoreError>
  ) =>
    Layer.effect(
      CheckpointStore,
      Effect.map(CheckpointStore, (checkpoints) => ({
        ...checkpoints,
        load: (checkpoint: string) =>
          checkpoint === name ? load(checkpoints.load(checkpoint)) : checkpoints.load(checkpoint)
      }))
    ).pipe(Layer.provideMerge(memory()))

  const expectStoppedAndLogged = (
    runner: Projection.ProjectionRunner,
    logs: ReadonlyArray<LogEntry>,
    name: string,
    reason: string
  ) =>
    Effect.gen(function*() {
      yield* waitUntil(Effect.map(runner.state.get, (state) => state._tag === "Failed"), "the runner fails")
      const status = yield* runner.status
      expect(status.state).toBe("failed")
      expect(status.error).toContain(reason)
      expect(
        logs.filter((entry) => entry.level === "ERROR" && entry.message.includes(reason)).map((entry) =>
          entry.annotations
        )
      )
        .toContainEqual({ projection: name, position: "0" })
    })

  // Never called: the runner refuses the options before it uses the service.
  const unusedGenerations = Layer.succeed(
    Generations,
    Generations.of({
      current: () => Effect.dieMessage("unused"),
      requestRebuild: () => Effect.dieMessage("unused"),
      guard: () => Effect.dieMessage("unused"),
      trySwitch: () => Effect.dieMessage("unused"),
      publish: () => Effect.dieMessage("unused"),
      drop: () => Effect.dieMessage("unused")
    })
  )

  it.live("tables without the Generations service stop the runner at once (when the types are bypassed): failed with InvalidInput in state, status and await, and logged", () =>
    Effect.gen(function*() {
      const logs = capturingLogger()
      yield* poisonHistory()
      yield* Effect.gen(function*() {
        const tabled = Projection.make({ name: "tabled", tables: { t: "t" }, handle: () => Effect.void })
        // The types require Generations for a projection with tables (see Requirements.test.ts); the runner checks too.
        const runner = yield* (Projection.start(tabled) as Effect.Effect<
          Projection.ProjectionRunner,
          never,
          Projection.RunnerRequirements<never> | Scope.Scope
        >)
        yield* expectStoppedAndLogged(runner, logs.entries, "tabled", "tables need the Generations service")
        expect(yield* Effect.flip(runner.await)).toMatchObject({ _tag: "InvalidInput", field: "tables" })
      }).pipe(Effect.provide(logs.layer))
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("tables with at-least-once delivery stop the runner: InvalidInput on the delivery", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Projection.run(Projection.make({
        name: "tabled-twice",
        tables: { t: "t" },
        delivery: "at-least-once",
        handle: () => Effect.void
      })))
      expect(error).toMatchObject({ _tag: "InvalidInput", field: "delivery" })
    }).pipe(Effect.provide(Layer.merge(memory(), unusedGenerations))))

  it.live("a defect in the runner, outside any handler, stops it: failed with the defect in state and status, logged, and await dies with it", () =>
    Effect.gen(function*() {
      // The runner's first load dies; the status's loads after it work.
      const loads = yield* Ref.make(0)
      const buggy = (original: Effect.Effect<Option.Option<bigint>, InvalidInput | StoreError>) =>
        Effect.flatMap(
          Ref.getAndUpdate(loads, (n) => n + 1),
          (n) => n === 0 ? Effect.die(new Error("a bug in load")) : original
        )
      const logs = capturingLogger()
      yield* Effect.gen(function*() {
        const runner = yield* Projection.start(Projection.make({ name: "doomed", handle: () => Effect.void }))
        yield* expectStoppedAndLogged(runner, logs.entries, "doomed", "a bug in load")
        const exit = yield* Effect.exit(runner.await)
        expect(exit._tag === "Failure" && Cause.isDie(exit.cause)).toBe(true)
      }).pipe(Effect.scoped, Effect.provide(logs.layer), Effect.provide(withLoad("doomed", buggy)))
    }))

  it.live("store errors restart the runner with a backoff, shown as restarting, and then it runs and applies everything", () =>
    Effect.gen(function*() {
      const failures = yield* Ref.make(3)
      const flaky = (original: Effect.Effect<Option.Option<bigint>, InvalidInput | StoreError>) =>
        Effect.flatMap(
          Ref.getAndUpdate(failures, (n) => n - 1),
          (left) => left > 0 ? Effect.fail(new StoreError({ message: "the database is restarting" })) : original
        )
      yield* Effect.gen(function*() {
        yield* poisonHistory()
        const applied = yield* Ref.make(0)
        const runner = yield* Projection.start(
          Projection.make({ name: "flaky", handle: () => Ref.update(applied, (n) => n + 1) })
        )
        const states = yield* Ref.make<ReadonlyArray<string>>([])
        yield* Effect.forkScoped(
          Stream.runForEach(runner.state.changes, (state) => Ref.update(states, (all) => [...all, state._tag]))
        )
        yield* waitUntil(Effect.map(Ref.get(applied), (n) => n === 3), "every event applied")
        expect((yield* runner.state.get)._tag).toBe("Running")
        expect(yield* Ref.get(states)).toContain("Restarting")
      }).pipe(Effect.scoped, Effect.provide(withLoad("flaky", flaky)))
    }))
})
