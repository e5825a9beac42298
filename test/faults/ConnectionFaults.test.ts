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
import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import {
  Cause,
  Chunk,
  Clock,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Schedule,
  Stream,
  SubscriptionRef
} from "effect"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import type { StoreError } from "../../src/Errors.js"
import { EventStore } from "../../src/EventStore.js"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import * as FaultServer from "../support/faultServer.js"
import { amountOf, appliedCount, createTables, readBack } from "../processes/readModel.js"

const unique = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`

/**
 * The store and the checkpoints in a fresh schema (dropped at the end), on
 * connections named `applicationName`, so that the test can end exactly them.
 */
const storeLayer = (schema: string, applicationName: string) =>
  Layer.mergeAll(PostgresEventStore.layer({ schema }), PostgresCheckpointStore.layer({ schema, migrate: false })).pipe(
    Layer.provideMerge(
      Layer.scopedDiscard(
        Effect.addFinalizer(() =>
          FaultServer.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).pipe(Effect.orDie)
        )
      )
    ),
    Layer.provideMerge(FaultServer.clientLayer(applicationName))
  )

/** Polls `check` until it holds, for at most `timeout` (generous: the machine may be busy). */
const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, timeout: Duration.DurationInput = Duration.minutes(2)) =>
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
      const client = new pg.Client({ connectionString: FaultServer.faultDatabaseUrl, application_name: "fault-test-holder" })
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
 * A deferred constraint trigger on the tables the store's transactions write:
 * at COMMIT it waits for an advisory lock that the test holds, so that the
 * test can terminate the session in the middle of the COMMIT.
 */
const holdCommits = (schema: string) =>
  Effect.gen(function*() {
    yield* FaultServer.query(`CREATE FUNCTION ${schema}.hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock(hashtext(TG_TABLE_SCHEMA)); RETURN NULL; END $$`)
    for (const [table, events] of [["streams", "INSERT OR UPDATE"], ["events", "UPDATE OR DELETE"], ["checkpoints", "INSERT OR UPDATE"]]) {
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

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const terminated = "terminating connection due to administrator command (SQLSTATE 57P01)"

/** A store operation that runs a transaction of its own, and how to tell whether it took effect. */
interface Operation {
  readonly name: string
  readonly setup: (schema: string) => Effect.Effect<void, unknown, EventStore | CheckpointStore | SqlClient.SqlClient>
  readonly run: (schema: string) => Effect.Effect<unknown, unknown, EventStore | CheckpointStore | SqlClient.SqlClient>
  /** A statement that makes `run` wait before its COMMIT (run in a transaction of the test's own). */
  readonly lock: (schema: string) => string
  /** Checks that `run` took no effect. */
  readonly untouched: (schema: string) => Effect.Effect<void, unknown, EventStore | CheckpointStore | SqlClient.SqlClient>
  /** Checks that `run` took effect. */
  readonly done: (schema: string) => Effect.Effect<void, unknown, EventStore | CheckpointStore | SqlClient.SqlClient>
  /** The beginning of the message when the connection is lost before COMMIT, and at COMMIT. */
  readonly before: string
  readonly atCommit: string
}

const streamId = "Doc-1"
const lockStream = (schema: string) => `SELECT 1 FROM ${schema}.streams WHERE stream_id = '${streamId}' FOR UPDATE`
const twoEvents = (_schema: string) =>
  Effect.flatMap(EventStore, (store) => store.append(streamId, [{ eventType: "A", data: { n: 1 } }, { eventType: "B", data: { n: 2 } }]))
const versionIs = (expected: Option.Option<number>) => (_schema: string) =>
  Effect.flatMap(EventStore, (store) => store.streamVersion(streamId)).pipe(Effect.map((version) => expect(version).toEqual(expected)))
const hotEvents = Effect.flatMap(EventStore, (store) => collect(store.readAll({ filter: { streamIds: [streamId] } })))

const checkpointAndModel = (schema: string, checkpoint: bigint, rows: number) =>
  Effect.gen(function*() {
    const checkpoints = yield* CheckpointStore
    expect(yield* checkpoints.load("reader")).toEqual(Option.some(checkpoint))
    expect(yield* FaultServer.query(`SELECT position FROM ${schema}.model`)).toHaveLength(rows)
  })

const operations: ReadonlyArray<Operation> = [
  {
    name: "deleteStream",
    setup: twoEvents,
    run: () => Effect.flatMap(EventStore, (store) => store.deleteStream(streamId)),
    lock: lockStream,
    untouched: versionIs(Option.some(2)),
    done: versionIs(Option.none()),
    before: `Could not delete stream "${streamId}"`,
    atCommit: `Could not delete stream "${streamId}"`
  },
  {
    name: "tombstoneStream",
    setup: twoEvents,
    run: () => Effect.flatMap(EventStore, (store) => store.tombstoneStream(streamId)),
    lock: lockStream,
    untouched: versionIs(Option.some(2)),
    done: () =>
      Effect.flatMap(EventStore, (store) => Effect.flip(store.streamVersion(streamId).pipe(Effect.zipRight(store.getStreamMetadata(streamId))))).pipe(
        Effect.map((error) => expect(error._tag).toBe("StreamDeleted"))
      ),
    before: `Could not tombstone stream "${streamId}"`,
    atCommit: `Could not tombstone stream "${streamId}"`
  },
  {
    name: "archiveStream",
    setup: twoEvents,
    run: () => Effect.flatMap(EventStore, (store) => store.archiveStream(streamId)),
    lock: lockStream,
    untouched: () => Effect.map(hotEvents, (events) => expect(events.length).toBe(2)),
    done: () => Effect.map(hotEvents, (events) => expect(events.length).toBe(0)),
    before: `Could not archive stream "${streamId}"`,
    atCommit: `Could not archive stream "${streamId}"`
  },
  {
    name: "eraseStream",
    setup: twoEvents,
    run: () => Effect.flatMap(EventStore, (store) => store.eraseStream(streamId)),
    lock: lockStream,
    untouched: () => Effect.map(hotEvents, (events) => expect(events.map((event) => event.data)).toEqual([{ n: 1 }, { n: 2 }])),
    done: () => Effect.map(hotEvents, (events) => expect(events.map((event) => event.data)).toEqual([null, null])),
    before: `Could not erase stream "${streamId}"`,
    atCommit: `Could not erase stream "${streamId}"`
  },
  {
    name: "scavenge",
    setup: (schema) =>
      Effect.gen(function*() {
        yield* twoEvents(schema)
        yield* Effect.flatMap(EventStore, (store) => store.setStreamMetadata(streamId, { truncateBefore: 2 }))
      }),
    run: () => Effect.flatMap(EventStore, (store) => store.scavenge()),
    lock: lockStream,
    untouched: () => Effect.map(hotEvents, (events) => expect(events.map((event) => event.streamVersion)).toEqual([1, 2])),
    done: () => Effect.map(hotEvents, (events) => expect(events.map((event) => event.streamVersion)).toEqual([2])),
    before: `Could not scavenge stream "${streamId}"`,
    atCommit: `Could not scavenge stream "${streamId}"`
  },
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

describe.skipIf(!FaultServer.faultServerAvailable)("the store under connection faults (PostgreSQL)", () => {
  for (const operation of operations) {
    it.live(`${operation.name} whose connection is terminated before its COMMIT fails with a StoreError and takes no effect`, () => {
      const schema = unique("faults")
      const applicationName = unique("eesf")
      return Effect.gen(function*() {
        yield* operation.setup(schema)
        const exit = yield* Effect.scoped(Effect.gen(function*() {
          yield* holding("BEGIN", operation.lock(schema))
          const running = yield* Effect.fork(Effect.exit(operation.run(schema)))
          yield* terminateWhenBlocked(applicationName, "statement")
          return yield* Fiber.join(running)
        }))
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
      }).pipe(Effect.provide(storeLayer(schema, applicationName)))
    }, 120_000)

    it.live(`${operation.name} whose connection is terminated in its COMMIT fails with a StoreError whose outcome is unknown`, () => {
      const schema = unique("faults")
      const applicationName = unique("eesf")
      return Effect.gen(function*() {
        yield* operation.setup(schema)
        yield* holdCommits(schema)
        const exit = yield* Effect.scoped(Effect.gen(function*() {
          yield* holding(`SELECT pg_advisory_lock(hashtext('${schema}'))`)
          const running = yield* Effect.fork(Effect.exit(operation.run(schema)))
          yield* terminateWhenBlocked(applicationName, "commit")
          return yield* Fiber.join(running)
        }))
        expect(fieldsOf(typedFailure(exit))).toEqual({
          _tag: "StoreError",
          sqlState: "57P01",
          outcomeUnknown: true,
          message: `${operation.atCommit}: the connection was lost at commit, so whether it committed is unknown: ${terminated}`
        })
        // Here the server was still in the commit's deferred triggers: it rolled back.
        yield* afterFault(operation.untouched(schema))
        yield* afterFault(operation.run(schema))
        yield* operation.done(schema)
      }).pipe(Effect.provide(storeLayer(schema, applicationName)))
    }, 120_000)
  }
})
