/**
 * The store when the database misbehaves, on a PostgreSQL server these tests
 * may terminate sessions of, restart, stop and `kill -9` (the cluster of
 * `.ci/fault-server`, see test/support/faultServer.ts; never the shared one).
 *
 * - Every store transaction whose connection is lost, before its COMMIT or at
 *   it, fails with a `StoreError` (never a defect) and leaves the store as if
 *   it had not run; at COMMIT the error says the outcome is unknown.
 * - An append whose outcome is unknown is retried with the same event ids and
 *   stored exactly once.
 * - An exactly-once projection resumes by itself, exactly once, through
 *   terminated sessions, a restart and a `kill -9` of the postmaster.
 * - A subscription resumes by itself where it stood, exactly once, in order;
 *   with `retry: Schedule.stop` it ends with the `StoreError`.
 *
 * One file, so that its tests run one after another: a restart here ends
 * every session on the server.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Clock,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Option,
  Schedule,
  type Scope,
  Stream
} from "effect"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import type { StoreError } from "../../src/Errors.js"
import { EventStore } from "../../src/EventStore.js"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { amountOf, createTables, readBack } from "../processes/readModel.js"
import * as FaultServer from "../support/faultServer.js"

const unique = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`

/**
 * The store and the checkpoints in a fresh schema (dropped at the end), on
 * connections named `applicationName`, so that the test can end exactly them.
 */
const storeLayer = (schema: string, applicationName: string) =>
  Layer.mergeAll(
    PostgresEventStore.layer({ schema }),
    PostgresCheckpointStore.layer({ schema, migrate: false }),
    RunnerLock.layerLocal
  ).pipe(
    Layer.provideMerge(
      Layer.scopedDiscard(
        // The store's sessions go first: a statement of an interrupted fiber may still run on one.
        Effect.addFinalizer(() =>
          FaultServer.terminateBackends(applicationName).pipe(
            Effect.zipRight(FaultServer.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)),
            Effect.retry({ schedule: Schedule.spaced(Duration.millis(200)), times: 5 }),
            Effect.orDie
          )
        )
      )
    ),
    Layer.provideMerge(FaultServer.clientLayer(applicationName))
  )

/** Polls `check` until it holds, for at most `timeout` (generous: the machine may be busy). */
const waitUntil = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  what: string,
  timeout: Duration.DurationInput = Duration.minutes(2)
) =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced(Duration.millis(50)), until: (done) => done }),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out waiting until ${what}`) }),
    Effect.asVoid
  )

/** The failure of `exit`: a typed failure, not a defect, not an interruption. */
const typedFailure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure) || Cause.isDie(exit.cause)) {
    throw new Error(`expected a typed failure, got:\n${Cause.pretty(exit.cause)}`)
  }
  return failure.value
}

/**
 * A session of the test's own (not of the store's pool) that runs
 * `statements` and keeps what they lock until the scope closes.
 */
const holding = (...statements: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.tryPromise(async () => {
      const { default: pg } = await import("pg")
      const client = new pg.Client({
        connectionString: FaultServer.faultDatabaseUrl,
        application_name: "fault-test-holder"
      })
      client.on("error", () => {})
      await client.connect()
      for (const statement of statements) await client.query(statement)
      return client
    }),
    (client) => Effect.promise(() => client.end().catch(() => undefined))
  )

/**
 * Waits until a session of `applicationName` waits for a lock — in its COMMIT
 * (`"commit"`) or in a statement before it — and terminates that session.
 */
const terminateWhenBlocked = (applicationName: string, at: "commit" | "statement") =>
  Effect.gen(function*() {
    let pid: number | undefined
    yield* waitUntil(
      Effect.map(
        FaultServer.query<{ readonly pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'
             AND (query = 'COMMIT') = $2`,
          [applicationName, at === "commit"]
        ),
        (rows) => {
          pid = rows[0]?.pid
          return pid !== undefined
        }
      ),
      `a session of ${applicationName} waits for a lock at ${at}`
    )
    yield* FaultServer.query("SELECT pg_terminate_backend($1)", [pid])
  })

/**
 * Runs `effect` while a session of the test's own holds what `held` locks;
 * once `effect`'s session waits for it (at `at`), terminates that session.
 * Returns how `effect` ended.
 */
const terminatedWhenBlocked = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  applicationName: string,
  at: "commit" | "statement",
  held: ReadonlyArray<string>
) =>
  Effect.scoped(Effect.gen(function*() {
    yield* holding(...held)
    const running = yield* Effect.fork(Effect.exit(effect))
    yield* terminateWhenBlocked(applicationName, at)
    return yield* Fiber.join(running)
  }))

/** Holds the commits of the store in `schema` (see `holdCommits`) while it is held. */
const holdCommit = (schema: string) => `SELECT pg_advisory_lock(hashtext('${schema}'))`

/**
 * A deferred constraint trigger on the tables the store's transactions write:
 * at COMMIT it waits for an advisory lock that the test holds, so that the
 * test can terminate the session in the middle of the COMMIT.
 */
const holdCommits = (schema: string) =>
  Effect.gen(function*() {
    yield* FaultServer.query(`CREATE FUNCTION ${schema}.hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock(hashtext(TG_TABLE_SCHEMA)); RETURN NULL; END $$`)
    for (
      const [table, events] of [["streams", "INSERT OR UPDATE"], ["events", "UPDATE OR DELETE"], [
        "checkpoints",
        "INSERT OR UPDATE"
      ]]
    ) {
      yield* FaultServer.query(`CREATE CONSTRAINT TRIGGER hold_commit AFTER ${events} ON ${schema}.${table}
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${schema}.hold_commit()`)
    }
  })

/**
 * Runs `effect` once the fault is over. The pool may still hand out the
 * session the test ended (node-postgres learns that it is closed a moment
 * after the error that ended the COMMIT), so the first statement can meet it
 * too: a StoreError, retried here as an application would.
 */
const afterFault = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.retry(effect, {
    schedule: Schedule.spaced(Duration.millis(100)),
    times: 3,
    while: (error) => typeof error === "object" && error !== null && "_tag" in error && error._tag === "StoreError"
  })

/** The fields of a StoreError a caller acts on, as a plain object (which vitest can compare and print). */
const fieldsOf = (error: unknown) => {
  const { _tag, message, outcomeUnknown, sqlState } = error as StoreError
  return { _tag, message, outcomeUnknown, sqlState }
}

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const terminated = "terminating connection due to administrator command (SQLSTATE 57P01)"

/** A store operation that runs a transaction of its own, and how to tell whether it took effect. */
interface Operation {
  readonly name: string
  readonly setup: (schema: string) => Effect.Effect<void, unknown, EventStore | CheckpointStore | SqlClient.SqlClient>
  readonly run: (schema: string) => Effect.Effect<unknown, unknown, EventStore | CheckpointStore | SqlClient.SqlClient>
  /** A statement that makes `run` wait before its COMMIT (run in a transaction of the test's own). */
  readonly lock: (schema: string) => string
  /** Checks that `run` took no effect. */
  readonly untouched: (
    schema: string
  ) => Effect.Effect<void, unknown, EventStore | CheckpointStore | SqlClient.SqlClient>
  /** Checks that `run` took effect. */
  readonly done: (schema: string) => Effect.Effect<void, unknown, EventStore | CheckpointStore | SqlClient.SqlClient>
  /** The beginning of the message when the connection is lost before COMMIT, and at COMMIT. */
  readonly before: string
  readonly atCommit: string
}

const streamId = "Doc-1"
const lockStream = (schema: string) => `SELECT 1 FROM ${schema}.streams WHERE stream_id = '${streamId}' FOR UPDATE`
const twoEvents = (_schema: string) =>
  Effect.flatMap(
    EventStore,
    (store) => store.append(streamId, [{ eventType: "A", data: { n: 1 } }, { eventType: "B", data: { n: 2 } }])
  )
const versionIs = (expected: Option.Option<number>) => (_schema: string) =>
  Effect.flatMap(EventStore, (store) => store.streamVersion(streamId)).pipe(
    Effect.map((version) => expect(version).toEqual(expected))
  )
const hotEvents = Effect.flatMap(EventStore, (store) => collect(store.readAll({ filter: { streamIds: [streamId] } })))

const checkpointAndModel = (schema: string, checkpoint: bigint, rows: number) =>
  Effect.gen(function*() {
    const checkpoints = yield* CheckpointStore
    expect(yield* checkpoints.load("reader")).toEqual(Option.some(checkpoint))
    expect(yield* FaultServer.query(`SELECT position FROM ${schema}.model`)).toHaveLength(rows)
  })

/** An operation on the stream `Doc-1`, which it waits for (its row locked) before its COMMIT. */
const onStream = (
  name: string,
  verb: string,
  run: (store: EventStore) => Effect.Effect<unknown, unknown>,
  checks: Pick<Operation, "untouched" | "done"> & Partial<Pick<Operation, "setup">>
): Operation => ({
  name,
  setup: checks.setup ?? twoEvents,
  run: () => Effect.flatMap(EventStore, run),
  lock: lockStream,
  untouched: checks.untouched,
  done: checks.done,
  before: `Could not ${verb} stream "${streamId}"`,
  atCommit: `Could not ${verb} stream "${streamId}"`
})

const operations: ReadonlyArray<Operation> = [
  onStream("deleteStream", "delete", (store) => store.deleteStream(streamId), {
    untouched: versionIs(Option.some(2)),
    done: versionIs(Option.none())
  }),
  onStream("tombstoneStream", "tombstone", (store) => store.tombstoneStream(streamId), {
    untouched: versionIs(Option.some(2)),
    done: () =>
      Effect.flatMap(EventStore, (store) => Effect.flip(store.getStreamMetadata(streamId))).pipe(
        Effect.map((error) => expect(error._tag).toBe("StreamDeleted"))
      )
  }),
  onStream("archiveStream", "archive", (store) => store.archiveStream(streamId), {
    untouched: () => Effect.map(hotEvents, (events) => expect(events.length).toBe(2)),
    done: () => Effect.map(hotEvents, (events) => expect(events.length).toBe(0))
  }),
  onStream("eraseStream", "erase", (store) => store.eraseStream(streamId), {
    untouched: () =>
      Effect.map(hotEvents, (events) => expect(events.map((event) => event.data)).toEqual([{ n: 1 }, { n: 2 }])),
    done: () => Effect.map(hotEvents, (events) => expect(events.map((event) => event.data)).toEqual([null, null]))
  }),
  onStream("scavenge", "scavenge", (store) => store.scavenge(), {
    setup: (schema) =>
      Effect.gen(function*() {
        yield* twoEvents(schema)
        yield* Effect.flatMap(EventStore, (store) => store.setStreamMetadata(streamId, { truncateBefore: 2 }))
      }),
    untouched: () =>
      Effect.map(hotEvents, (events) => expect(events.map((event) => event.streamVersion)).toEqual([1, 2])),
    done: () => Effect.map(hotEvents, (events) => expect(events.map((event) => event.streamVersion)).toEqual([2]))
  }),
  {
    // What an exactly-once projection batch does: lock the checkpoint, write
    // the read model, move the checkpoint, in one transaction.
    name: "CheckpointStore.transaction",
    setup: (schema) =>
      Effect.gen(function*() {
        yield* FaultServer.query(`CREATE TABLE ${schema}.model (position bigint PRIMARY KEY)`)
        yield* Effect.flatMap(CheckpointStore, (checkpoints) => checkpoints.save("reader", 0n))
      }),
    run: (schema) =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        const sql = yield* SqlClient.SqlClient
        yield* checkpoints.transaction(Effect.gen(function*() {
          yield* checkpoints.lock("reader", 0n)
          yield* sql`INSERT INTO ${sql(`${schema}.model`)} (position) VALUES (1)`
          yield* checkpoints.save("reader", 1n, { expected: 0n })
        }))
      }),
    lock: (schema) => `SELECT 1 FROM ${schema}.checkpoints WHERE name = 'reader' FOR UPDATE`,
    untouched: (schema) => checkpointAndModel(schema, 0n, 0),
    done: (schema) => checkpointAndModel(schema, 1n, 1),
    before: `Could not lock checkpoint "reader"`,
    atCommit: "The checkpoint transaction failed"
  }
]

/** Log lines, kept rather than printed: the faults make the store and the runner warn a lot. */
const makeLog = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ message }) => {
    lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
  })
  return {
    layer: Logger.replace(Logger.defaultLogger, logger),
    count: (text: string) => lines.filter((line) => line.includes(text)).length
  }
}

/** The SQL read model of test/processes/readModel.ts, applied exactly once per event. */
const readModelProjection = (schema: string, handlerFailures: { count: number }) =>
  Projection.make({
    name: "totals",
    delivery: "exactly-once",
    batchSize: 10,
    handle: (event) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const position = event.position.toString()
        yield* sql`INSERT INTO ${sql(`${schema}.deliveries`)} (worker, position) VALUES ('in-process', ${position})`
        yield* sql`INSERT INTO ${sql(`${schema}.applied`)} (position, event_id) VALUES (${position}, ${event.eventId})`
        yield* sql`UPDATE ${sql(`${schema}.totals`)} SET total = total + ${amountOf(event.data)}`
        // Batches long enough to be caught in flight.
        yield* Effect.sleep(Duration.millis(1))
      }).pipe(Effect.tapErrorCause(() => Effect.sync(() => handlerFailures.count++)))
  })

/** Counted on a session of the test's own, which the faults do not touch. */
const count = (sql: string) => Effect.map(FaultServer.query<{ readonly n: number }>(sql), ([row]) => row?.n ?? 0)
const appliedEvents = (schema: string) => count(`SELECT count(*)::int AS n FROM ${schema}.applied`)
const storedEvents = (schema: string) => count(`SELECT count(*)::int AS n FROM ${schema}.events`)

/** A batch of the projection's is in flight: only its transactions stay open between statements. */
const batchInFlight = (applicationName: string) =>
  Effect.map(
    FaultServer.query<{ readonly n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'`,
      [applicationName]
    ),
    ([row]) => (row?.n ?? 0) > 0
  )

/**
 * Runs `fault`, then waits until the read model grows again; returns the
 * milliseconds from the fault to then.
 */
const resumed = <E>(schema: string, fault: Effect.Effect<unknown, E> = Effect.void) =>
  Effect.gen(function*() {
    const before = yield* appliedEvents(schema)
    const start = yield* Clock.currentTimeMillis
    yield* fault
    yield* waitUntil(
      Effect.map(Effect.either(appliedEvents(schema)), (n) => n._tag === "Right" && n.right > before),
      "the projection applies events again"
    )
    return (yield* Clock.currentTimeMillis) - start
  })

/**
 * Writers that append one to three events at a time, each carrying the amount
 * 1, until stopped. A failed append is retried with the same event ids, which
 * is safe whatever became of it; an event counts as acknowledged once an
 * append of it succeeded.
 */
const startWriters = (writers: number) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const acknowledged: Array<string> = []
    let appendFailures = 0
    let unknownOutcomes = 0
    const write = (writer: number) =>
      Effect.gen(function*() {
        for (let round = 0;; round++) {
          const events = Array.from({ length: 1 + (round % 3) }, () => ({
            eventId: crypto.randomUUID(),
            eventType: "Deposited",
            data: { amount: 1 }
          }))
          yield* store.append(`Account-${writer}-${round % 5}`, events).pipe(
            Effect.tapError((error) =>
              Effect.sync(() => {
                appendFailures++
                if (error._tag === "StoreError" && error.outcomeUnknown === true) unknownOutcomes++
              })
            ),
            Effect.retry({
              schedule: Schedule.spaced(Duration.millis(50)),
              while: (error) => error._tag === "StoreError"
            })
          )
          acknowledged.push(...events.map((event) => event.eventId))
          yield* Effect.sleep(Duration.millis(50))
        }
      })
    const fibers = yield* Effect.forEach(Array.from({ length: writers }, (_, i) => i), (i) => Effect.fork(write(i)))
    return {
      stop: Effect.as(Fiber.interruptAll(fibers), undefined).pipe(
        Effect.map(() => ({ acknowledged, appendFailures, unknownOutcomes }))
      )
    }
  })

/**
 * Runs a test on a store of its own (schema, sessions named after it, log
 * kept), in a scope that closes before the store does.
 */
const onFaultServer = <A, E>(
  body: (
    fixture: { readonly schema: string; readonly applicationName: string; readonly log: ReturnType<typeof makeLog> }
  ) => Effect.Effect<
    A,
    E,
    EventStore | CheckpointStore | RunnerLock.RunnerLock | SqlClient.SqlClient | Scope.Scope
  >
) => {
  const schema = unique("faults")
  const applicationName = unique("eesf")
  const log = makeLog()
  return Effect.scoped(body({ schema, applicationName, log })).pipe(
    Effect.provide(storeLayer(schema, applicationName)),
    Effect.provide(log.layer)
  )
}

describe.skipIf(!FaultServer.faultServerAvailable)("the store under connection faults (PostgreSQL)", () => {
  for (const operation of operations) {
    it.live(
      `${operation.name} whose connection is terminated before its COMMIT fails with a StoreError and takes no effect`,
      () =>
        onFaultServer(({ applicationName, schema }) =>
          Effect.gen(function*() {
            yield* operation.setup(schema)
            const exit = yield* terminatedWhenBlocked(operation.run(schema), applicationName, "statement", [
              "BEGIN",
              operation.lock(schema)
            ])
            expect(fieldsOf(typedFailure(exit))).toEqual({
              _tag: "StoreError",
              sqlState: "57P01",
              message: `${operation.before}: ${terminated}`,
              outcomeUnknown: undefined
            })
            yield* afterFault(operation.untouched(schema))
            // The store is consistent: the operation goes through when run again.
            yield* afterFault(operation.run(schema))
            yield* operation.done(schema)
          })
        ),
      120_000
    )

    it.live(
      `${operation.name} whose connection is terminated in its COMMIT fails with a StoreError whose outcome is unknown`,
      () =>
        onFaultServer(({ applicationName, schema }) =>
          Effect.gen(function*() {
            yield* operation.setup(schema)
            yield* holdCommits(schema)
            const exit = yield* terminatedWhenBlocked(operation.run(schema), applicationName, "commit", [
              holdCommit(schema)
            ])
            expect(fieldsOf(typedFailure(exit))).toEqual({
              _tag: "StoreError",
              sqlState: "57P01",
              outcomeUnknown: true,
              message:
                `${operation.atCommit}: the connection was lost at commit, so whether it committed is unknown: ${terminated}`
            })
            // Here the server was still in the commit's deferred triggers: it rolled back.
            yield* afterFault(operation.untouched(schema))
            yield* afterFault(operation.run(schema))
            yield* operation.done(schema)
          })
        ),
      120_000
    )
  }

  it.live(
    "an append whose connection is lost at its commit fails with outcomeUnknown; retried with the same event ids it is stored exactly once",
    () =>
      onFaultServer(({ applicationName, schema }) =>
        Effect.gen(function*() {
          const store = yield* EventStore
          yield* holdCommits(schema)
          const events = [
            { eventId: crypto.randomUUID(), eventType: "Paid", data: { amount: 5 } },
            { eventId: crypto.randomUUID(), eventType: "Shipped", data: {} }
          ]
          const append = store.append("Order-7", events, { expectedVersion: "no_stream" })
          // An append is one statement: its commit is the end of that statement.
          const exit = yield* terminatedWhenBlocked(append, applicationName, "statement", [holdCommit(schema)])
          expect(fieldsOf(typedFailure(exit))).toEqual({
            _tag: "StoreError",
            sqlState: "57P01",
            outcomeUnknown: true,
            message: `Could not append to "Order-7": ${terminated}`
          })
          const first = yield* afterFault(append)
          // Again, as after an answer lost once the append had committed: the same result, nothing stored twice.
          const again = yield* append
          expect(again).toEqual(first)
          const stored = yield* collect(store.readStream("Order-7"))
          expect(stored.map((event) => event.eventId)).toEqual(events.map((event) => event.eventId))
        })
      ),
    120_000
  )

  it.live(
    "an exactly-once projection resumes by itself, each event applied once, through terminated sessions, a restart and kill -9 of the postmaster mid-batch",
    () =>
      onFaultServer(({ applicationName, log, schema }) =>
        Effect.gen(function*() {
          yield* createTables(schema)
          const handlerFailures = { count: 0 }
          const runner = yield* Projection.start(readModelProjection(schema, handlerFailures))
          const writing = yield* startWriters(2)
          const figures: Record<string, number | string> = {}
          const started = yield* Clock.currentTimeMillis

          // 1. The store's sessions terminated again and again while it works.
          yield* waitUntil(Effect.map(appliedEvents(schema), (n) => n > 0), "the projection applied something")
          let terminations = 0
          const rounds = 20
          for (let round = 0; round < rounds; round++) {
            yield* Effect.sleep(Duration.millis(250))
            terminations += yield* FaultServer.terminateBackends(applicationName)
          }
          figures.terminationRounds = rounds
          figures.sessionsTerminated = terminations
          figures.resumeAfterTerminationsMs = yield* resumed(schema)

          // 2. A restart while a batch is in flight.
          yield* waitUntil(batchInFlight(applicationName), "a batch is in flight")
          figures.resumeAfterRestartMs = yield* resumed(schema, FaultServer.restart)

          // 3. kill -9 of the postmaster while a batch is in flight, then a start.
          yield* waitUntil(batchInFlight(applicationName), "a batch is in flight")
          figures.resumeAfterKill9Ms = yield* resumed(
            schema,
            FaultServer.killPostmaster.pipe(Effect.zipRight(FaultServer.start))
          )

          // The writers stop; the runner must end live, by itself, with everything applied once.
          const { acknowledged, appendFailures, unknownOutcomes } = yield* writing.stop
          yield* waitUntil(
            Effect.gen(function*() {
              const state = yield* runner.state.get
              if (state._tag === "Failed") return yield* Effect.fail(new Error(`the runner failed: ${state.reason}`))
              const status = yield* Effect.either(runner.status)
              const stored = yield* storedEvents(schema)
              return state._tag === "Running" && status._tag === "Right" && status.right.state === "live" &&
                (yield* appliedEvents(schema)) === stored
            }),
            "the runner is live again with every event applied"
          )
          const events = yield* afterFault(collect(Stream.unwrap(Effect.map(EventStore, (store) => store.readAll()))))
          const model = yield* afterFault(readBack(schema))
          expect(model.applied).toEqual(events.map((event) => [event.position, event.eventId]))
          expect(model.deliveries).toEqual(events.map((event) => event.position))
          expect(model.total).toBe(events.reduce((sum, event) => sum + amountOf(event.data), 0))
          const stored = new Set(events.map((event) => event.eventId))
          expect(acknowledged.filter((id) => !stored.has(id))).toEqual([])

          figures.events = events.length
          figures.acknowledgedEvents = acknowledged.length
          figures.appendFailures = appendFailures
          figures.appendOutcomesUnknown = unknownOutcomes
          figures.handlerFailures = handlerFailures.count
          figures.runnerRestarts = log.count("restarts after a store error")
          figures.subscriptionRetries = log.count("Subscription read failed")
          figures.totalMs = (yield* Clock.currentTimeMillis) - started
          console.log(`exactly-once projection under faults: ${JSON.stringify(figures)}`)
        })
      ),
    600_000
  )

  it.live(
    "a projection whose handler loses its database restarts from its checkpoint, rather than retrying, parking or stopping on the event",
    () =>
      onFaultServer(({ schema }) =>
        Effect.gen(function*() {
          const store = yield* EventStore
          yield* createTables(schema)
          const reached = yield* Deferred.make<void>()
          const gate = yield* Deferred.make<void>()
          // At least once: the handler's statements run on their own, outside the checkpoint's transaction.
          const runner = yield* Projection.start(Projection.make({
            name: "totals",
            delivery: "at-least-once",
            handle: (event) =>
              Effect.gen(function*() {
                const sql = yield* SqlClient.SqlClient
                if (event.eventType === "Gate") {
                  yield* Deferred.succeed(reached, undefined)
                  yield* Deferred.await(gate)
                }
                yield* sql`INSERT INTO ${
                  sql(`${schema}.applied`)
                } (position, event_id) VALUES (${event.position.toString()}, ${event.eventId})
              ON CONFLICT DO NOTHING`
              })
          }))
          yield* store.append("Account-1", [{ eventType: "Deposited", data: { amount: 1 } }, {
            eventType: "Gate",
            data: { amount: 0 }
          }])
          yield* Deferred.await(reached)
          // The server goes away while the handler holds the event; the handler's statement finds no server.
          yield* FaultServer.stop.pipe(
            Effect.zipRight(Deferred.succeed(gate, undefined)),
            Effect.zipRight(waitUntil(
              Effect.flatMap(runner.state.get, (state) =>
                state._tag === "Failed"
                  ? Effect.fail(new Error(`the runner stopped: ${state.reason}`))
                  : Effect.succeed(state._tag === "Restarting")),
              "the runner restarts"
            )),
            Effect.ensuring(Effect.orDie(FaultServer.start))
          )
          yield* store.append("Account-1", [{ eventType: "Deposited", data: { amount: 1 } }]).pipe(afterFault)
          yield* waitUntil(
            Effect.gen(function*() {
              const state = yield* runner.state.get
              const status = yield* Effect.either(runner.status)
              return state._tag === "Running" && status._tag === "Right" && status.right.state === "live" &&
                (yield* appliedEvents(schema)) === 3
            }),
            "the runner is live again with every event applied"
          )
          expect(yield* Effect.flatMap(CheckpointStore, (checkpoints) => checkpoints.parked("totals"))).toEqual([])
        })
      ),
    300_000
  )

  it.live(
    "a subscription delivers every event once, in order, through a stop and start of the server and a restart",
    () =>
      onFaultServer(({ log, schema }) =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const received: Array<RecordedEvent> = []
          const consumer = yield* Effect.fork(
            Stream.runForEach(store.subscribe({ batchSize: 20 }), (event) => Effect.sync(() => received.push(event)))
          )
          const writing = yield* startWriters(1)
          const receivedMore = (than: number) =>
            waitUntil(Effect.sync(() => received.length > than), `the subscription delivered more than ${than} events`)
          yield* receivedMore(20)

          yield* FaultServer.stop.pipe(
            Effect.zipRight(waitUntil(
              Effect.sync(() => log.count("Subscription read failed") > 0),
              "a read of the subscription failed"
            )),
            Effect.ensuring(Effect.orDie(FaultServer.start))
          )
          yield* receivedMore(received.length)
          yield* FaultServer.restart
          yield* receivedMore(received.length)

          const { acknowledged } = yield* writing.stop
          const stored = yield* storedEvents(schema)
          yield* waitUntil(
            Effect.sync(() => received.length >= stored),
            `the subscription delivered all ${stored} events`
          )
          expect(yield* Fiber.poll(consumer)).toEqual(Option.none())
          const events = yield* afterFault(collect(store.readAll()))
          const ids = (list: ReadonlyArray<RecordedEvent>) => list.map((event) => [event.position, event.eventId])
          expect(ids(received)).toEqual(ids(events))
          const delivered = new Set(received.map((event) => event.eventId))
          expect(acknowledged.filter((id) => !delivered.has(id))).toEqual([])
          console.log(`subscription under faults: ${
            JSON.stringify({
              events: events.length,
              failedReadsRetried: log.count("Subscription read failed")
            })
          }`)
        })
      ),
    300_000
  )

  it.live(
    "with retry: Schedule.stop a subscription ends at the first failed read, with a StoreError carrying the driver's message",
    () =>
      onFaultServer(() =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const received: Array<RecordedEvent> = []
          const consumer = yield* Effect.fork(Effect.exit(
            Stream.runForEach(store.subscribe({ retry: Schedule.stop }), (event) =>
              Effect.sync(() => received.push(event)))
          ))
          yield* store.append("Order-1", [{ eventType: "Placed", data: {} }])
          yield* waitUntil(
            Effect.sync(() =>
              received.length === 1
            ),
            "the subscription delivered the first event"
          )
          const exit = yield* FaultServer.stop.pipe(
            Effect.zipRight(Fiber.join(consumer)),
            Effect.timeoutFail({
              duration: Duration.minutes(2),
              onTimeout: () => new Error("the subscription did not end")
            }),
            Effect.ensuring(Effect.orDie(FaultServer.start))
          )
          const error = fieldsOf(typedFailure(exit))
          expect(error._tag).toBe("StoreError")
          // Refused, reset or ended by the shutdown, depending on the moment: the driver says which.
          expect(error.message).toMatch(
            /^Could not read the global log(?:'s horizon)?: .*(ECONNREFUSED|ECONNRESET|EPIPE|terminat|[Cc]onnection)/
          )
        })
      ),
    300_000
  )
})
