/**
 * Invariant 5 with real processes on PostgreSQL: projection workers (see
 * `projection-worker.ts`) are SIGKILLed at random moments while events are
 * appended. With two workers the standby takes over from the killed one; with
 * one, a restarted worker resumes from the checkpoint. Either way the SQL read
 * model ends complete, with nothing applied twice.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Layer, Option, Random, Schedule, Stream } from "effect"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import { EventStore } from "../../src/EventStore.js"
import { PostgresCheckpointStore } from "../../src/postgres/index.js"
import { databaseUrl, serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"
import { patience, reaches } from "../support/wait.js"
import { amountOf, appliedCount, createTables, type LockKind, projectionName, readBack } from "./readModel.js"
import * as Workers from "./workers.js"

/**
 * A worker needs a few seconds to start (Node, tsx, Effect), and up to a minute
 * on a busy 2-core machine.
 */
const startupTimeout = Duration.seconds(120)

/**
 * A standby notices a dead holder's lock within `retryInterval` (advisory) or
 * once its lease ran out (lease): the measured takeovers are reported, and only
 * a standby that never takes over fails the test.
 */
const takeoverTimeout = patience

/** The test's own connections: the store (migrated into a fresh schema, dropped at the end) and the checkpoints. */
const testLayer = (schema: string) =>
  PostgresCheckpointStore.layer({ schema }).pipe(Layer.provideMerge(storeLayer(schema, 4)))

/**
 * Appends `count` events, each carrying the amount 1, 2, 3 …, in appends of
 * one to five events to six streams, pausing between appends so that the
 * writing goes on while workers are killed.
 */
const write = (count: number, pause: Duration.DurationInput) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    let amount = 0
    while (amount < count) {
      const size = Math.min(yield* Random.nextIntBetween(1, 6), count - amount)
      const events = Array.from({ length: size }, () => ({ eventType: "Deposited", data: { amount: ++amount } }))
      yield* store.append(`Account-${yield* Random.nextIntBetween(0, 6)}`, events)
      yield* Effect.sleep(pause)
    }
  })

const allEvents = Effect.flatMap(EventStore, (store) => Stream.runCollect(store.readAll())).pipe(
  Effect.map((chunk) => Array.from(chunk))
)

/** Polls `check` until it holds; fails after `timeout` instead of hanging. */
const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, timeout: Duration.DurationInput, what: string) =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced(Duration.millis(50)), until: (done) => done }),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out waiting until ${what}`) })
  )

/**
 * Waits until the read model has every event of the log, then checks it
 * against the log: every event applied once, the total its sum, and every
 * committed delivery committed once.
 */
const expectCompleteReadModel = (schema: string) =>
  Effect.gen(function*() {
    const events = yield* allEvents
    yield* reaches(appliedCount(schema), events.length, `the read model holds all ${events.length} events`)
    const model = yield* readBack(schema)
    const deliveredTwice = model.deliveries.filter((position, i) => model.deliveries[i - 1] === position)
    expect(deliveredTwice, "positions with more than one committed delivery").toEqual([])
    expect(model.applied).toEqual(events.map((event) => [event.position, event.eventId]))
    expect(model.deliveries).toEqual(events.map((event) => event.position))
    expect(model.total).toBe(events.reduce((sum, event) => sum + amountOf(event.data), 0))
    const checkpoint = yield* Effect.flatMap(CheckpointStore, (checkpoints) => checkpoints.load(projectionName))
    expect(checkpoint).toEqual(Option.some(events.at(-1)?.position))
    return events.length
  })

/**
 * How many of the killed workers died with a batch in flight: they had started
 * on an event that none of their committed deliveries reached. Not asserted
 * (it depends on timing), only reported, to show where the kills landed.
 */
const killedMidBatch = (schema: string, killed: ReadonlyArray<Workers.Worker>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly worker: string; readonly last: string }>`
      SELECT d.worker, max(d.position)::text AS last FROM ${sql(`${schema}.deliveries`)} d GROUP BY d.worker`
    const committed = new Map(rows.map((row) => [row.worker, BigInt(row.last)]))
    return killed.filter((worker) =>
      worker.lastHandled !== undefined && worker.lastHandled > (committed.get(worker.name) ?? 0n)
    ).length
  })

/**
 * Waits until one of the two workers is active and the other stands by, and
 * returns them in that order. (A lease holder starved of CPU for longer than
 * its lease may for a moment overlap with the worker that took the lease over,
 * until it fails to renew; the roles may swap then.)
 */
const roles = (pair: ReadonlyArray<Workers.Worker>, timeout: Duration.DurationInput) => {
  const inState = (state: Workers.WorkerState) => pair.find((worker) => worker.state === state)
  const settled = Effect.suspend(() => {
    const gone = pair.find((worker) => !worker.alive)
    return gone !== undefined
      ? Effect.fail(new Error(`worker ${gone.name} exited`))
      : Effect.succeed(inState("ACTIVE") !== undefined && inState("STANDBY") !== undefined)
  })
  return waitUntil(settled, timeout, `one worker is active and the other stands by`).pipe(
    Effect.flatMap(() => {
      const active = inState("ACTIVE")
      const standby = inState("STANDBY")
      return active !== undefined && standby !== undefined
        ? Effect.succeed([active, standby] as const)
        : Effect.fail(new Error("the roles changed while they were read"))
    }),
    Effect.mapError((error) => new Error(`${error.message}\n${pair.map((worker) => worker.describe()).join("\n")}`))
  )
}

/**
 * The committed work came from one runner at a time: in position order, the
 * deliveries change hands at most once per time a worker became active.
 */
const expectOneRunnerAtATime = (schema: string, workers: ReadonlyArray<Workers.Worker>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly worker: string }>`
      SELECT d.worker FROM ${sql(`${schema}.deliveries`)} d ORDER BY d.position`
    const handovers = rows.filter((row, i) => i > 0 && rows[i - 1]?.worker !== row.worker).length
    const activations = workers.reduce((sum, worker) => sum + worker.activations, 0)
    expect(handovers).toBeLessThan(activations)
  })

/** Every worker exited only because the test killed it, and kept to the protocol. */
const expectNoCrashes = (workers: ReadonlyArray<Workers.Worker>) => {
  expect(workers.filter((worker) => !worker.alive && !worker.killed).map((worker) => worker.describe())).toEqual([])
  expect(workers.flatMap((worker) => worker.protocolErrors)).toEqual([])
}

/** Starts workers (w1, w2, …) for the scope, and keeps them all for the checks at the end. */
const workerPool = (schema: string, lock: LockKind) => {
  const all: Array<Workers.Worker> = []
  const start = Effect.suspend(() =>
    Workers.start({ name: `w${all.length + 1}`, schema, lock, databaseUrl, millisPerEvent: 2 })
  ).pipe(Effect.tap((worker) => all.push(worker)))
  return { all, start }
}

/**
 * Once the writer is done: the read model is complete and exactly once, the
 * work came from one runner at a time, and no worker died but by a kill.
 * Returns a summary for the log.
 */
const expectSoundEnd = (schema: string, workers: ReadonlyArray<Workers.Worker>) =>
  Effect.gen(function*() {
    const events = yield* expectCompleteReadModel(schema)
    yield* expectOneRunnerAtATime(schema, workers)
    expectNoCrashes(workers)
    const killed = workers.filter((worker) => worker.killed)
    return `${events} events, ${killed.length} kills, ${yield* killedMidBatch(
      schema,
      killed
    )} of them with a batch in flight`
  })

afterEach(() => Workers.killAll())

describe.skipIf(!serverAvailable)("projection workers SIGKILLed on PostgreSQL", () => {
  for (const lock of ["advisory", "lease"] as const) {
    it.live(
      `with the ${lock} lock, the standby takes over from the active worker SIGKILLed mid-stream, and the read model ends complete with nothing applied twice`,
      () => {
        const schema = uniqueSchema(`proc_${lock}`)
        return Effect.gen(function*() {
          yield* createTables(schema)
          const workers = workerPool(schema, lock)
          const takeovers: Array<number> = []
          let pair = [yield* workers.start, yield* workers.start]
          const writing = yield* Effect.fork(write(1500, Duration.millis(15)))
          for (let round = 0; round < 3; round++) {
            yield* roles(pair, startupTimeout)
            yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(200, 1000)))
            const [active, standby] = yield* roles(pair, patience)
            const killedAt = yield* Clock.currentTimeMillis
            yield* active.kill
            yield* standby.awaitState("ACTIVE", takeoverTimeout)
            takeovers.push((yield* Clock.currentTimeMillis) - killedAt)
            pair = [standby, yield* workers.start]
          }
          yield* Fiber.join(writing)
          const summary = yield* expectSoundEnd(schema, workers.all)
          console.info(`${lock} lock: ${summary}; takeovers in ${takeovers.join(", ")} ms`)
        }).pipe(Effect.scoped, Effect.provide(testLayer(schema)))
      },
      { timeout: 600_000 }
    )
  }

  it.live(
    "a single worker SIGKILLed at random points and restarted, again and again, ends with the read model that the log gives in one go",
    () => {
      const schema = uniqueSchema("proc_restart")
      return Effect.gen(function*() {
        yield* createTables(schema)
        const workers = workerPool(schema, "advisory")
        const writing = yield* Effect.fork(write(1200, Duration.millis(20)))
        for (let round = 0; round < 8; round++) {
          const worker = yield* workers.start
          yield* worker.awaitState("ACTIVE", startupTimeout)
          yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(50, 400)))
          yield* worker.kill
        }
        yield* workers.start
        yield* Fiber.join(writing)
        console.info(`one worker, restarted: ${yield* expectSoundEnd(schema, workers.all)}`)
      }).pipe(Effect.scoped, Effect.provide(testLayer(schema)))
    },
    { timeout: 600_000 }
  )
})
