/**
 * The three forms of a projection (a handler per event, a batch handler, a
 * `Stream` pipeline) build the same read model over the same log, exactly
 * once across interruptions at random points, and a failing batch or
 * pipeline stops on (or parks) the one event that fails.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  Array as Arr,
  Duration,
  Effect,
  Fiber,
  GroupBy,
  Layer,
  Option,
  Random,
  Ref,
  Schedule,
  Schema,
  Stream
} from "effect"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import * as EventRegistry from "../../src/events/EventRegistry.js"
import * as EventType from "../../src/events/EventType.js"
import { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore } from "../../src/memory/index.js"
import { PgliteClient } from "../../src/pglite/index.js"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"
import { fileClient, startupTimeout } from "../support/postgres.js"
import { eventually as waitUntil } from "../support/wait.js"

const pglite = fileClient(PgliteClient.layer())
beforeAll(() => pglite.start(), startupTimeout)
afterAll(() => pglite.dispose())

// Accounts opened, then deposits; every fifth event an `Opened` that the read
// model leaves out (a filter in the pipeline, a no-op in the handlers).
const appendMany = (count: number, offset = 0) =>
  Effect.flatMap(
    EventStore,
    (store) =>
      Effect.forEach(Arr.range(offset, offset + count - 1), (i) =>
        store.append(`Account-${i % 7}`, [{
          eventType: i % 5 === 0 ? "Opened" : "Deposited",
          data: { amount: i }
        }]), { discard: true })
  )

const allEvents = Effect.flatMap(EventStore, (store) => Stream.runCollect(store.readAll())).pipe(
  Effect.map((chunk) => Array.from(chunk))
)

const amountOf = (event: RecordedEvent): number => (event.data as { readonly amount: number }).amount
const isDeposit = (event: RecordedEvent) => event.eventType === "Deposited"

/** One account's line of the read model. */
interface Account {
  readonly deposits: number
  readonly total: number
  readonly last: bigint
}

/** What a group of one account's deposits adds to its line, in log order. */
const summarize = (deposits: Arr.NonEmptyReadonlyArray<RecordedEvent>) => ({
  deposits: deposits.length,
  total: deposits.reduce((sum, event) => sum + amountOf(event), 0),
  last: Arr.lastNonEmpty(deposits).position
})

const noRetry = { retry: Schedule.recurs(1), then: "stop" } as const

describe("projection forms in memory", () => {
  // The in-memory read model: a line per account, in a Ref.
  const forms = (model: Ref.Ref<ReadonlyMap<string, Account>>) => {
    const add = (streamId: string, added: Account) =>
      Ref.update(model, (accounts) => {
        const before = accounts.get(streamId) ?? { deposits: 0, total: 0, last: 0n }
        return new Map(accounts).set(streamId, {
          deposits: before.deposits + added.deposits,
          total: before.total + added.total,
          last: added.last
        })
      })
    const projections: Record<"perEvent" | "batch" | "pipeline", (name: string) => Projection.Projection> = {
      perEvent: (name: string) =>
        Projection.make({
          name,
          batchSize: 9,
          handle: (event) => isDeposit(event) ? add(event.streamId, summarize([event])) : Effect.void
        }),
      batch: (name: string) =>
        Projection.make({
          name,
          batchSize: 9,
          handleBatch: (events) =>
            Effect.forEach(
              Object.entries(Arr.groupBy(events.filter(isDeposit), (event) => event.streamId)),
              ([streamId, deposits]) => add(streamId, summarize(deposits as Arr.NonEmptyReadonlyArray<RecordedEvent>)),
              { discard: true }
            )
        }),
      pipeline: (name: string) =>
        Projection.make({
          name,
          batchSize: 9,
          pipeline: (events) =>
            events.pipe(
              Stream.filter(isDeposit),
              Stream.groupByKey((event) => event.streamId),
              GroupBy.evaluate((streamId, deposits) =>
                deposits.pipe(
                  Stream.groupedWithin(3, Duration.millis(5)),
                  // A lookup per group, four at a time, the order kept.
                  Stream.mapEffect((group) =>
                    Effect.as(
                      Effect.sleep(Duration.millis(1)),
                      add(streamId, summarize(Arr.fromIterable(group) as Arr.NonEmptyArray<RecordedEvent>))
                    ), { concurrency: 4 })
                )
              )
            )
        })
    }
    return projections
  }

  it.live("the three forms build the same read model as the log is appended", () =>
    Effect.gen(function*() {
      yield* appendMany(40)
      const built = (form: "perEvent" | "batch" | "pipeline") =>
        Effect.gen(function*() {
          const model = yield* Ref.make<ReadonlyMap<string, Account>>(new Map())
          yield* Projection.start(forms(model)[form](`forms-${form}`))
          return model
        })
      const models = yield* Effect.forEach(["perEvent", "batch", "pipeline"] as const, built)
      yield* appendMany(30, 40)
      const events = yield* allEvents
      const deposits = events.filter(isDeposit)
      const expected = new Map(
        Object.entries(Arr.groupBy(deposits, (event) => event.streamId)).map(([streamId, group]) => [
          streamId,
          summarize(group as Arr.NonEmptyReadonlyArray<RecordedEvent>)
        ])
      )
      const checkpoints = yield* CheckpointStore
      for (const form of ["perEvent", "batch", "pipeline"] as const) {
        yield* waitUntil(
          Effect.map(
            checkpoints.load(`forms-${form}`),
            (p) => Option.getOrElse(p, () => 0n) === events.at(-1)?.position
          ),
          `${form} caught up`
        )
      }
      for (const model of models) expect(yield* Ref.get(model)).toEqual(expected)
    }).pipe(Effect.scoped, Effect.provide(MemoryEventStore.layerAll())))

  it.live("typed batch and pipeline projections get the events decoded, other types left out", () =>
    Effect.gen(function*() {
      const Deposited = EventType.make("Deposited", { schema: Schema.Struct({ amount: Schema.Number }) })
      const registry = EventRegistry.make(Deposited)
      yield* appendMany(12)
      const fromBatches = yield* Ref.make<ReadonlyArray<number>>([])
      const fromPipeline = yield* Ref.make<ReadonlyArray<number>>([])
      yield* Projection.start(Projection.typed(registry, {
        name: "typed-batch",
        batchSize: 5,
        handleBatch: (events) => Ref.update(fromBatches, (all) => [...all, ...events.map((e) => e.data.amount)])
      }))
      yield* Projection.start(Projection.typed(registry, {
        name: "typed-pipeline",
        batchSize: 5,
        pipeline: (events) =>
          Stream.map(events, (event) => Ref.update(fromPipeline, (all) => [...all, event.data.amount]))
      }))
      const expected = (yield* allEvents).filter(isDeposit).map(amountOf)
      yield* waitUntil(Effect.map(Ref.get(fromBatches), (all) => all.length === expected.length), "batches applied")
      yield* waitUntil(Effect.map(Ref.get(fromPipeline), (all) => all.length === expected.length), "pipeline applied")
      expect(yield* Ref.get(fromBatches)).toEqual(expected)
      expect(yield* Ref.get(fromPipeline)).toEqual(expected)
    }).pipe(Effect.scoped, Effect.provide(MemoryEventStore.layerAll())))

  // Poison at position 6, in the middle of the first batch of 10.
  const poisoned = Effect.gen(function*() {
    const store = yield* EventStore
    yield* appendMany(5)
    yield* store.append("Account-9", [{ eventType: "Poison", data: { amount: 0 } }])
    yield* appendMany(6, 5)
  })

  for (const delivery of ["exactly-once", "at-least-once"] as const) {
    for (const form of ["batch", "pipeline"] as const) {
      const projection = (
        name: string,
        then: "stop" | "park",
        applied: Ref.Ref<ReadonlyArray<bigint>>
      ): Projection.Projection<Error> => {
        // In memory a failed batch's effects are not undone: the model keeps a set.
        const record = (events: ReadonlyArray<RecordedEvent>) =>
          events.some((event) => event.eventType === "Poison")
            ? Effect.fail(new Error("cannot handle poison"))
            : Ref.update(applied, (all) => Array.from(new Set([...all, ...events.map((event) => event.position)])))
        const options = { name, delivery, batchSize: 10, onFailure: { ...noRetry, then } }
        return form === "batch"
          ? Projection.make({ ...options, handleBatch: record })
          : Projection.make({
            ...options,
            pipeline: (events) => events.pipe(Stream.grouped(4), Stream.map((group) => record(Arr.fromIterable(group))))
          })
      }

      it.live(`${form}, ${delivery}: a failing batch stops on the one event that fails, all before it applied`, () =>
        Effect.gen(function*() {
          yield* poisoned
          const applied = yield* Ref.make<ReadonlyArray<bigint>>([])
          const error = yield* Projection.run(projection("stops", "stop", applied)).pipe(Effect.flip)
          expect(error).toMatchObject({
            _tag: "ProjectionFailed",
            position: 6n,
            eventType: "Poison",
            streamId: "Account-9",
            reason: "cannot handle poison"
          })
          expect(yield* Ref.get(applied)).toEqual([1n, 2n, 3n, 4n, 5n])
          const checkpoint = yield* (yield* CheckpointStore).load("stops")
          // At least once, the checkpoint is saved after the batch: it stays where the batch began.
          expect(Option.getOrElse(checkpoint, () => 0n)).toBe(delivery === "exactly-once" ? 5n : 0n)
          expect(Option.getOrThrow(yield* Projection.failure("stops")).position).toBe(6n)
        }).pipe(Effect.provide(MemoryEventStore.layerAll())))

      it.live(`${form}, ${delivery}: a failing batch parks the one event that fails and applies the others`, () =>
        Effect.gen(function*() {
          yield* poisoned
          const applied = yield* Ref.make<ReadonlyArray<bigint>>([])
          const runner = yield* Projection.start(projection("parks", "park", applied))
          yield* waitUntil(Effect.map(runner.status, (s) => s.position === 12n && s.state === "live"), "live")
          expect([...(yield* Ref.get(applied))].sort((a, b) => Number(a - b))).toEqual(
            [1n, 2n, 3n, 4n, 5n, 7n, 8n, 9n, 10n, 11n, 12n]
          )
          const parked = yield* (yield* CheckpointStore).parked("parks")
          expect(parked.map((p) => [p.position, p.eventType])).toEqual([[6n, "Poison"]])
        }).pipe(Effect.scoped, Effect.provide(MemoryEventStore.layerAll())))
    }
  }
})

const sqlBackends = [
  {
    name: "PGlite",
    available: true,
    layer: (schema: string) =>
      Layer.merge(PostgresCheckpointStore.layer({ schema }), RunnerLock.layerLocal).pipe(
        Layer.provideMerge(PostgresEventStore.layer({ schema })),
        Layer.provideMerge(pglite.layer)
      )
  },
  {
    name: "PostgreSQL",
    available: serverAvailable,
    layer: (schema: string) =>
      Layer.merge(PostgresCheckpointStore.layer({ schema }), RunnerLock.layerLocal).pipe(
        Layer.provideMerge(storeLayer(schema, 8))
      )
  }
] as const

for (const backend of sqlBackends) {
  describe.skipIf(!backend.available)(`projection forms over a SQL read model on ${backend.name}`, () => {
    // The read model: a row per deposit applied (a second application would
    // violate the primary key) and a line per account.
    const model = (schema: string) => {
      const deposits = `${schema}.rm_deposits`
      const accounts = `${schema}.rm_accounts`
      const setup = Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.zipRight(
          sql`CREATE TABLE ${sql(deposits)} (projection text, position bigint, PRIMARY KEY (projection, position))`,
          sql`CREATE TABLE ${
            sql(accounts)
          } (projection text, stream_id text, deposits int NOT NULL, total bigint NOT NULL, last_position bigint NOT NULL, PRIMARY KEY (projection, stream_id))`
        ))
      // One statement for the deposits and one for the accounts, whatever the number of events.
      const write = (name: string, events: ReadonlyArray<RecordedEvent>) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const applied = events.filter(isDeposit)
          if (applied.length === 0) return
          yield* sql`INSERT INTO ${sql(deposits)} ${
            sql.insert(applied.map((event) => ({ projection: name, position: event.position.toString() })))
          }`
          const lines = Object.entries(Arr.groupBy(applied, (event) => event.streamId)).map(([streamId, group]) => {
            const line = summarize(group as Arr.NonEmptyReadonlyArray<RecordedEvent>)
            return {
              projection: name,
              stream_id: streamId,
              deposits: line.deposits,
              total: line.total,
              last_position: line.last.toString()
            }
          })
          yield* sql`INSERT INTO ${sql(accounts)} AS t ${sql.insert(lines)}
            ON CONFLICT (projection, stream_id) DO UPDATE SET deposits = t.deposits + EXCLUDED.deposits,
              total = t.total + EXCLUDED.total, last_position = EXCLUDED.last_position`
        })
      const forms = {
        perEvent: (name: string) => Projection.make({ name, batchSize: 7, handle: (event) => write(name, [event]) }),
        batch: (name: string) => Projection.make({ name, batchSize: 7, handleBatch: (events) => write(name, events) }),
        pipeline: (name: string) =>
          Projection.make({
            name,
            batchSize: 7,
            pipeline: (events) =>
              events.pipe(
                Stream.filter(isDeposit),
                Stream.groupByKey((event) => event.streamId),
                GroupBy.evaluate((_, deposits) =>
                  deposits.pipe(
                    Stream.groupedWithin(2, Duration.millis(5)),
                    Stream.mapEffect(
                      (group) => Effect.as(Effect.sleep(Duration.millis(1)), write(name, Arr.fromIterable(group))),
                      {
                        concurrency: 3
                      }
                    )
                  )
                )
              )
          })
      }
      const readBack = (name: string) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const positions = yield* sql<{ readonly position: string }>`SELECT position::text AS position FROM ${
            sql(deposits)
          } WHERE projection = ${name}`
          const lines = yield* sql<
            { readonly stream_id: string; readonly deposits: number; readonly total: string; readonly last: string }
          >`SELECT stream_id, deposits, total::text AS total, last_position::text AS last FROM ${
            sql(accounts)
          } WHERE projection = ${name} ORDER BY stream_id`
          return {
            positions: positions.map((row) => BigInt(row.position)).sort((a, b) => a < b ? -1 : a > b ? 1 : 0),
            lines
          }
        })
      return { setup, write, forms, readBack }
    }

    const finish = (
      schema: string,
      projection: Projection.Projection<unknown, SqlClient.SqlClient>,
      expected: number
    ) =>
      Effect.scoped(Effect.gen(function*() {
        yield* Projection.start(projection)
        const { readBack } = model(schema)
        yield* waitUntil(
          Effect.map(readBack(projection.name), (rm) => rm.positions.length === expected),
          `${projection.name} complete`
        )
        yield* waitUntil(
          Effect.flatMap(
            Effect.zip(CheckpointStore, EventStore),
            ([checkpoints, store]) =>
              Effect.zipWith(
                checkpoints.load(projection.name),
                store.headPosition,
                (saved, head) => Option.getOrElse(saved, () => 0n) === head
              )
          ),
          `${projection.name} checkpoint at the head`
        )
        return yield* readBack(projection.name)
      }))

    it.live("the batch and pipeline forms build the read model of the per-event form", () => {
      const schema = uniqueSchema("forms")
      return Effect.gen(function*() {
        const { forms, setup } = model(schema)
        yield* setup
        yield* appendMany(60)
        const events = yield* allEvents
        const deposits = events.filter(isDeposit).length
        const perEvent = yield* finish(schema, forms.perEvent("per-event"), deposits)
        const batch = yield* finish(schema, forms.batch("batch"), deposits)
        const pipeline = yield* finish(schema, forms.pipeline("pipeline"), deposits)
        expect(perEvent.positions).toEqual(events.filter(isDeposit).map((event) => event.position))
        expect(batch).toEqual(perEvent)
        expect(pipeline).toEqual(perEvent)
      }).pipe(Effect.provide(backend.layer(schema)))
    })

    for (const form of ["batch", "pipeline"] as const) {
      it.live(`the ${form} form interrupted at random points and restarted ends as the per-event form in one go`, () => {
        const schema = uniqueSchema("forms")
        return Effect.gen(function*() {
          const { forms, setup } = model(schema)
          yield* setup
          yield* appendMany(150)
          for (let round = 0; round < 12; round++) {
            const fiber = yield* Effect.fork(Projection.run(forms[form]("interrupted")))
            yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 40)))
            yield* Fiber.interrupt(fiber)
            if (round === 5) yield* appendMany(60, 150)
          }
          const events = yield* allEvents
          const deposits = events.filter(isDeposit).length
          const resumed = yield* finish(schema, forms[form]("interrupted"), deposits)
          const inOneGo = yield* finish(schema, forms.perEvent("reference"), deposits)
          expect(resumed.positions).toEqual(events.filter(isDeposit).map((event) => event.position))
          expect(resumed).toEqual(inOneGo)
        }).pipe(Effect.provide(backend.layer(schema)))
      })

      it.live(`the ${form} form: a failing batch leaves nothing of itself, then stops on the one event that fails`, () => {
        const schema = uniqueSchema("forms")
        return Effect.gen(function*() {
          const { readBack, setup, write } = model(schema)
          yield* setup
          const store = yield* EventStore
          yield* appendMany(5)
          yield* store.append("Account-9", [{ eventType: "Poison", data: { amount: 0 } }])
          yield* appendMany(6, 5)
          const failOnPoison = (events: ReadonlyArray<RecordedEvent>) =>
            events.some((event) => event.eventType === "Poison")
              ? Effect.fail(new Error("cannot handle poison"))
              : Effect.void
          // The batch's writes come first: a batch that fails must roll them back.
          const poisoned = form === "batch"
            ? Projection.make({
              name: "poisoned",
              batchSize: 10,
              onFailure: noRetry,
              handleBatch: (events) => Effect.zipRight(write("poisoned", events), failOnPoison(events))
            })
            : Projection.make({
              name: "poisoned",
              batchSize: 10,
              onFailure: noRetry,
              pipeline: (events) =>
                events.pipe(
                  Stream.grouped(4),
                  Stream.map((chunk) => Arr.fromIterable(chunk)),
                  Stream.map((group) => Effect.zipRight(write("poisoned", group), failOnPoison(group)))
                )
            })
          const error = yield* Projection.run(poisoned).pipe(Effect.flip)
          expect(error).toMatchObject({ _tag: "ProjectionFailed", position: 6n, eventType: "Poison" })
          const events = yield* allEvents
          // Positions 1 to 5, one by one once the batch was split; nothing of the failed batch beyond them.
          expect((yield* readBack("poisoned")).positions).toEqual(
            events.filter((event) => isDeposit(event) && event.position < 6n).map((event) => event.position)
          )
          expect(yield* (yield* CheckpointStore).load("poisoned")).toEqual(Option.some(5n))
          // Skipped, the projection goes on with the rest, each applied once.
          yield* Projection.skip("poisoned", { position: 6n })
          const rest = yield* finish(schema, poisoned, events.filter(isDeposit).length)
          expect(rest.positions).toEqual(events.filter(isDeposit).map((event) => event.position))
        }).pipe(Effect.provide(backend.layer(schema)))
      })
    }
  })
}
