/**
 * The projection supervisor on every backend: it starts an application's
 * projections together, reports their statuses, and answers a readiness check
 * that a health endpoint can serve.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Layer, Option, Ref, Schedule, Schema } from "effect"
import type { CheckpointStore } from "../../src/CheckpointStore.js"
import { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore } from "../../src/memory/index.js"
import { PgliteEventStore } from "../../src/pglite/index.js"
import { PostgresCheckpointStore } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import * as ProjectionSupervisor from "../../src/ProjectionSupervisor.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"

const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (done) => done }),
    Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => `timed out waiting until ${what}` })
  )

// Each case has its projections and streams in a store the cases of a backend share.
const counting = (name: string, options?: { readonly gate?: Deferred.Deferred<void>; readonly poison?: boolean }) =>
  Effect.map(Ref.make<ReadonlySet<bigint>>(new Set()), (applied) => ({
    applied: Effect.map(Ref.get(applied), (positions) => positions.size),
    projection: Projection.make({
      name,
      filter: { streamIds: [`Order-${name}`] },
      onFailure: { retry: Schedule.recurs(0), then: "stop" },
      // A handler held at the gate keeps no transaction open (PGlite has one connection).
      delivery: options?.gate === undefined ? "exactly-once" : "at-least-once",
      handle: (event: RecordedEvent) =>
        Effect.gen(function*() {
          if (options?.gate !== undefined) yield* Deferred.await(options.gate)
          if (options?.poison === true && event.eventType === "Poison") return yield* Effect.fail(new Error("poisoned"))
          // In memory a failed batch's effects are not undone: idempotent by position.
          yield* Ref.update(applied, (positions) => new Set(positions).add(event.position))
        })
    })
  }))

const append = (name: string, types: ReadonlyArray<string>) =>
  Effect.flatMap(
    EventStore,
    (store) => store.append(`Order-${name}`, types.map((eventType) => ({ eventType, data: {} })))
  )

const readiness = (supervisor: ProjectionSupervisor.ProjectionSupervisor) => supervisor.readiness
const isReady = (supervisor: ProjectionSupervisor.ProjectionSupervisor) =>
  Effect.map(readiness(supervisor), (r) => r.ready)
const reasonsOf = (readiness: ProjectionSupervisor.Readiness, name: string) =>
  readiness.projections.find((projection) => projection.name === name)?.reasons ?? []

const backends: ReadonlyArray<{
  readonly name: string
  readonly available: boolean
  readonly layer: () => Layer.Layer<EventStore | CheckpointStore | RunnerLock.RunnerLock, unknown>
}> = [
  { name: "memory", available: true, layer: () => MemoryEventStore.layerAll() },
  { name: "PGlite", available: true, layer: () => PgliteEventStore.layer() },
  {
    name: "PostgreSQL",
    available: serverAvailable,
    layer: () => {
      const schema = uniqueSchema("supervisor")
      return Layer.merge(PostgresCheckpointStore.layer({ schema }), RunnerLock.layerLocal).pipe(
        Layer.provideMerge(storeLayer(schema, 8))
      )
    }
  }
]

for (const backend of backends) {
  describe.skipIf(!backend.available)(`the projection supervisor on ${backend.name}`, () => {
    layer(backend.layer(), { timeout: 120_000, excludeTestServices: true })((it) => {
      it.effect(
        "starts its projections together, reports their statuses, and is ready when they keep up",
        () =>
          Effect.gen(function*() {
            const orders = yield* counting("sup-orders")
            const invoices = yield* counting("sup-invoices")
            yield* append("sup-orders", ["Placed", "Paid"])
            yield* append("sup-invoices", ["Issued"])
            const supervisor = yield* ProjectionSupervisor.make([orders.projection, invoices.projection])
            yield* waitUntil(
              Effect.map(supervisor.statuses, (statuses) => statuses.every((s) => s.state === "live")),
              "both live"
            )
            expect(yield* orders.applied).toBe(2)
            expect(yield* invoices.applied).toBe(1)
            const statuses = yield* supervisor.statuses
            expect(statuses.map((s) => [s.name, s.state])).toEqual([["sup-orders", "live"], ["sup-invoices", "live"]])
            expect(Option.map(supervisor.runner("sup-invoices"), (runner) => runner.name)).toEqual(
              Option.some("sup-invoices")
            )
            const report = yield* supervisor.readiness
            expect(report.projections.map((p) => [p.name, p.ready, p.reasons])).toEqual([
              ["sup-orders", true, []],
              ["sup-invoices", true, []]
            ])
          }).pipe(Effect.scoped),
        { timeout: 60_000 }
      )

      it.effect(
        "a projection stopped on an event makes it not ready, naming the event; skipping it makes it ready again",
        () =>
          Effect.gen(function*() {
            const healthy = yield* counting("sup-healthy")
            const poisoned = yield* counting("sup-poisoned", { poison: true })
            yield* append("sup-healthy", ["Placed"])
            const { positions } = yield* append("sup-poisoned", ["Placed", "Poison", "Paid"])
            const supervisor = yield* ProjectionSupervisor.make([healthy.projection, poisoned.projection])
            yield* waitUntil(
              Effect.map(readiness(supervisor), (r) => reasonsOf(r, "sup-poisoned").length > 0),
              "the poisoned one is not ready"
            )
            const report = yield* readiness(supervisor)
            expect(report.ready).toBe(false)
            expect(reasonsOf(report, "sup-healthy")).toEqual([])
            expect(reasonsOf(report, "sup-poisoned")[0]).toContain(`failed: Projection "sup-poisoned" failed on Poison`)
            expect(reasonsOf(report, "sup-poisoned")[0]).toContain(`position ${positions[1]}`)

            const runner = Option.getOrThrow(supervisor.runner("sup-poisoned"))
            yield* runner.skip({ position: positions[1] })
            yield* waitUntil(isReady(supervisor), "ready again")
            expect(yield* poisoned.applied).toBe(2)
          }).pipe(Effect.scoped),
        { timeout: 60_000 }
      )

      it.effect(
        "a projection further behind than the bounds is not ready, and ready once it has caught up",
        () =>
          Effect.gen(function*() {
            const gate = yield* Deferred.make<void>()
            const slow = yield* counting("sup-slow", { gate })
            yield* append("sup-slow", ["Placed", "Paid", "Shipped"])
            const supervisor = yield* ProjectionSupervisor.make([slow.projection], {
              readiness: { maxLag: "50 millis", maxLagPositions: 2 }
            })
            yield* waitUntil(
              Effect.map(readiness(supervisor), (r) => reasonsOf(r, "sup-slow").length === 2),
              "behind in time and in positions"
            )
            const [inTime, inPositions] = reasonsOf(yield* readiness(supervisor), "sup-slow")
            expect(inTime).toMatch(/^behind by \d+ ms \(at most 50 ms\)$/)
            expect(inPositions).toMatch(/^behind by \d+ positions \(at most 2\)$/)
            yield* Deferred.succeed(gate, undefined)
            yield* waitUntil(isReady(supervisor), "caught up")
            expect(yield* slow.applied).toBe(3)
          }).pipe(Effect.scoped),
        { timeout: 60_000 }
      )

      it.effect(
        "a runner on standby is ready while the projection keeps up, and not once it has stood by longer than maxStandby",
        () =>
          Effect.gen(function*() {
            const active = yield* counting("sup-shared")
            yield* append("sup-shared", ["Placed"])
            const first = yield* ProjectionSupervisor.make([active.projection])
            yield* waitUntil(isReady(first), "the first is ready")
            // The same projection started again in this process: its runner stands by.
            const relaxed = yield* ProjectionSupervisor.make([active.projection])
            const strict = yield* ProjectionSupervisor.make([active.projection], {
              readiness: { maxStandby: "100 millis" }
            })
            const report = yield* readiness(relaxed)
            expect(report.projections[0]?.status?.state).toBe("standby")
            expect(report.ready).toBe(true)
            yield* waitUntil(Effect.map(isReady(strict), (ready) => !ready), "the strict one is not ready")
            expect(reasonsOf(yield* readiness(strict), "sup-shared")[0]).toMatch(
              /^on standby for \d+ ms \(at most 100 ms\): another process holds the runner lock$/
            )
            // Standby is judged by how the active runner keeps up.
            yield* append("sup-shared", ["Paid"])
            yield* waitUntil(Effect.map(active.applied, (n) => n === 2), "the active runner applies it")
            expect(yield* isReady(relaxed)).toBe(true)
          }).pipe(Effect.scoped),
        { timeout: 60_000 }
      )
    })
  })
}

describe("the projection supervisor", () => {
  const memory = () => MemoryEventStore.layerAll()

  it.effect("refuses two projections with one name", () =>
    Effect.gen(function*() {
      const one = yield* counting("twice")
      const error = yield* Effect.flip(ProjectionSupervisor.make([one.projection, one.projection]))
      expect(error).toMatchObject({ _tag: "InvalidInput", field: "projections" })
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("needs what its projections need", () =>
    Effect.gen(function*() {
      class Prices extends Context.Tag("test/Prices")<Prices, { readonly of: (sku: string) => number }>() {}
      const seen = yield* Ref.make(0)
      const priced = Projection.make({
        name: "priced",
        handle: () => Effect.flatMap(Prices, (prices) => Ref.update(seen, (n) => n + prices.of("book")))
      })
      const plain = Projection.make({ name: "plain", handle: () => Effect.void })
      yield* append("priced", ["Placed"])
      const supervisor = yield* ProjectionSupervisor.make([priced, plain]).pipe(
        Effect.provideService(Prices, { of: () => 12 })
      )
      yield* waitUntil(isReady(supervisor), "ready")
      expect(yield* Ref.get(seen)).toBe(12)
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("serves a readiness endpoint over HTTP: 200 with the report as JSON when ready, 503 when not", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const slow = yield* counting("http", { gate })
      const supervisor = yield* ProjectionSupervisor.make([slow.projection], { readiness: { maxLag: "10 millis" } })
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/ready",
          Effect.gen(function*() {
            const report = yield* supervisor.readiness
            return yield* HttpServerResponse.schemaJson(ProjectionSupervisor.Readiness)(report, {
              status: report.ready ? 200 : 503
            })
          })
        )
      )
      const handler = HttpApp.toWebHandler(app)
      const probe = Effect.promise(() => handler(new Request("http://localhost/ready"))).pipe(
        Effect.flatMap((response) =>
          Effect.map(
            Effect.promise(() => response.json() as Promise<unknown>),
            (body) => ({ status: response.status, body })
          )
        )
      )
      yield* waitUntil(Effect.map(probe, (response) => response.status === 200), "ready")
      const ready = yield* probe
      expect(ready.body).toMatchObject({
        ready: true,
        projections: [{ name: "http", ready: true, status: { state: "live", position: "0" } }]
      })
      // What the endpoint sends decodes back into a report.
      expect((yield* Schema.decodeUnknown(ProjectionSupervisor.Readiness)(ready.body)).ready).toBe(true)

      yield* append("http", ["Placed"])
      yield* waitUntil(Effect.map(probe, (response) => response.status === 503), "not ready")
      expect((yield* probe).body).toMatchObject({ ready: false, projections: [{ name: "http", ready: false }] })
      yield* Deferred.succeed(gate, undefined)
      yield* waitUntil(Effect.map(probe, (response) => response.status === 200), "ready again")
    }).pipe(Effect.scoped, Effect.provide(memory())))
})
