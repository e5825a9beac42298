/**
 * What running a projection needs is in its type: a `RunnerLock` always, the
 * read model `Generations` exactly when it declares tables. The
 * `@ts-expect-error` lines are the cases: `npm run check` fails if one of
 * them type-checks.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Ref, Schema, Stream, SubscriptionRef } from "effect"
import type * as Scope from "effect/Scope"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import * as EventRegistry from "../../src/events/EventRegistry.js"
import * as EventType from "../../src/events/EventType.js"
import { EventStore } from "../../src/EventStore.js"
import type { Generations } from "../../src/Generations.js"
import { MemoryEventStore } from "../../src/memory/index.js"
import * as Projection from "../../src/Projection.js"
import * as ProjectionSupervisor from "../../src/ProjectionSupervisor.js"
import { RunnerLock } from "../../src/RunnerLock.js"
import { SnapshotStore } from "../../src/SnapshotStore.js"
import { eventually as waitUntil } from "../support/wait.js"

/** Accepts an effect only if it needs nothing beyond `R`. */
const needsAtMost = <R>() => <A, E>(effect: Effect.Effect<A, E, R>) => effect

const plain = Projection.make({ name: "plain", handle: () => Effect.void })
const Placed = EventType.make("Placed", { schema: Schema.Struct({ total: Schema.Number }) })
const tabled = Projection.make({ name: "tabled", tables: { totals: "app.totals" }, handle: () => Effect.void })

describe("the requirements of a projection", () => {
  it("a projection without tables runs on the stores and a runner lock", () => {
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Scope.Scope>()(Projection.start(plain))
    needsAtMost<EventStore | CheckpointStore | RunnerLock>()(Projection.run(plain))
    needsAtMost<EventStore | CheckpointStore>()(Projection.status(plain))
    // @ts-expect-error: no RunnerLock
    needsAtMost<EventStore | CheckpointStore | Scope.Scope>()(Projection.start(plain))
    // @ts-expect-error: no RunnerLock
    needsAtMost<EventStore | CheckpointStore>()(Projection.run(plain))
  })

  it("a projection with tables needs Generations besides: without it, it does not type-check", () => {
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Generations | Scope.Scope>()(Projection.start(tabled))
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Generations>()(Projection.run(tabled))
    needsAtMost<EventStore | CheckpointStore | Generations>()(Projection.status(tabled))
    // @ts-expect-error: no Generations
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Scope.Scope>()(Projection.start(tabled))
    // @ts-expect-error: no Generations
    needsAtMost<EventStore | CheckpointStore | RunnerLock>()(Projection.run(tabled))
    // @ts-expect-error: no Generations
    needsAtMost<EventStore | CheckpointStore>()(Projection.status(tabled))
    const typedTables = Projection.typed(EventRegistry.make(Placed), {
      name: "typed",
      tables: { t: "app.t" },
      handle: () => Effect.void
    })
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Generations>()(Projection.run(typedTables))
    // @ts-expect-error: no Generations
    needsAtMost<EventStore | CheckpointStore | RunnerLock>()(Projection.run(typedTables))
  })

  it("a supervisor needs what its projections need", () => {
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Scope.Scope>()(ProjectionSupervisor.make([plain]))
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Generations | Scope.Scope>()(
      ProjectionSupervisor.make([plain, tabled])
    )
    // @ts-expect-error: no Generations
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Scope.Scope>()(ProjectionSupervisor.make([plain, tabled]))
    // @ts-expect-error: no RunnerLock
    needsAtMost<EventStore | CheckpointStore | Scope.Scope>()(ProjectionSupervisor.make([plain]))
  })
})

describe("MemoryEventStore.layerAll", () => {
  it.live("provides the store, checkpoints, snapshots and a runner lock: a projection runs on it alone", () =>
    Effect.gen(function*() {
      yield* EventStore
      yield* CheckpointStore
      yield* SnapshotStore
      yield* RunnerLock
      const applied = yield* Ref.make(0)
      yield* Effect.flatMap(EventStore, (store) => store.append("Order-1", [{ eventType: "Placed", data: {} }]))
      const runner = yield* Projection.start(
        Projection.make({ name: "counted", handle: () => Ref.update(applied, (n) => n + 1) })
      )
      yield* waitUntil(Effect.map(runner.status, (status) => status.state === "live"), "live")
      expect(yield* Ref.get(applied)).toBe(1)
      expect(yield* Effect.flatMap(CheckpointStore, (checkpoints) => checkpoints.load("counted"))).toEqual(
        Option.some(1n)
      )
    }).pipe(Effect.scoped, Effect.provide(MemoryEventStore.layerAll())))
})

describe("a runner's state", () => {
  it.live("is a read-only view: its state and changes, not the SubscriptionRef the runner writes", () =>
    Effect.gen(function*() {
      const runner = yield* Projection.start(plain)
      expect(SubscriptionRef.SubscriptionRefTypeId in runner.state).toBe(false)
      expect(Ref.RefTypeId in runner.state).toBe(false)
      expect(Object.keys(runner.state).sort()).toEqual(["changes", "get"])
    }).pipe(Effect.scoped, Effect.provide(MemoryEventStore.layerAll())))

  it("a projection has exactly one handler: per event, per batch or a pipeline", () => {
    const batched = Projection.make({
      name: "batched",
      tables: { totals: "app.totals" },
      handleBatch: () => Effect.void
    })
    const piped = Projection.make({ name: "piped", pipeline: (events) => Stream.map(events, () => Effect.void) })
    needsAtMost<EventStore | CheckpointStore | RunnerLock | Generations>()(Projection.run(batched))
    needsAtMost<EventStore | CheckpointStore | RunnerLock>()(Projection.run(piped))
    // @ts-expect-error: two handlers
    Projection.make({ name: "two", handle: () => Effect.void, handleBatch: () => Effect.void })
    // @ts-expect-error: no handler
    Projection.make({ name: "none" })
    Projection.typed(EventRegistry.make(Placed), {
      name: "typed",
      // @ts-expect-error: a typed batch handler gets the decoded events (here `total`, no `amount`)
      handleBatch: (events) => Effect.log(events[0].data.amount)
    })
    expect(batched.handleBatch).toBeDefined()
  })
})
