/**
 * The store's own transactions on PGlite end in typed errors whatever happens
 * at COMMIT or ROLLBACK: `@effect/sql`'s `withTransaction` would turn a failed
 * COMMIT or ROLLBACK into a defect. PGlite cannot lose a connection, but its
 * COMMIT can fail (a deferred constraint) and the database can be closed under
 * a transaction. (The same on a server with lost connections:
 * test/faults/ConnectionFaults.test.ts.)
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Option, Stream } from "effect"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import { StoreError } from "../../src/Errors.js"
import { EventStore } from "../../src/EventStore.js"
import { PgliteClient, PgliteEventStore } from "../../src/pglite/index.js"

/** The failure of `exit`, which must be a typed failure and not a defect or an interruption. */
const typedFailure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure) || Cause.isDie(exit.cause)) {
    throw new Error(`expected a typed failure, got:\n${Cause.pretty(exit.cause)}`)
  }
  return failure.value
}

class BodyFailed {
  readonly _tag = "BodyFailed"
}

describe("store transactions on PGlite", () => {
  it.live("a deleteStream whose COMMIT the server refuses fails with a StoreError naming the cause, and deletes nothing", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const sql = yield* SqlClient.SqlClient
      yield* store.append("Order-1", [{ eventType: "Placed", data: {} }, { eventType: "Paid", data: {} }])
      // A deferred constraint trigger: it runs at COMMIT, and refuses it.
      yield* sql`CREATE FUNCTION event_store.refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$`
      yield* sql`CREATE CONSTRAINT TRIGGER refuse_commit AFTER UPDATE ON event_store.streams
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION event_store.refuse_commit()`

      const error = typedFailure(yield* Effect.exit(store.deleteStream("Order-1")))
      expect(error).toBeInstanceOf(StoreError)
      expect(error).toMatchObject({
        _tag: "StoreError",
        sqlState: "P0001",
        message:
          `Could not delete stream "Order-1": the commit failed and the transaction rolled back: refused at commit (SQLSTATE P0001)`
      })
      // The server said it rolled back: the outcome is known.
      expect((error as StoreError).outcomeUnknown).toBeUndefined()
      const events = yield* Stream.runCollect(store.readStream("Order-1"))
      expect(Chunk.size(events)).toBe(2)
    }).pipe(Effect.provide(PgliteEventStore.layer())))

  /** A checkpoint transaction whose database is closed under it, after a save; `then` ends its body. */
  const closedUnder = <E>(then: Effect.Effect<void, E>) =>
    Effect.gen(function*() {
      const checkpoints = yield* CheckpointStore
      const { pglite } = yield* PgliteClient.PgliteClient
      return yield* Effect.exit(checkpoints.transaction(Effect.gen(function*() {
        yield* checkpoints.save("reader", 5n)
        yield* Effect.promise(() => pglite.close())
        yield* then
      })))
    })

  it.live("CheckpointStore.transaction returns the body's own failure when the ROLLBACK after it fails too", () =>
    Effect.gen(function*() {
      const exit = yield* closedUnder(Effect.fail(new BodyFailed()))
      expect(typedFailure(exit)).toBeInstanceOf(BodyFailed)
    }).pipe(Effect.provide(PgliteEventStore.layer())))

  it.live("CheckpointStore.transaction whose COMMIT fails for want of the database fails with a StoreError whose outcome is unknown", () =>
    Effect.gen(function*() {
      const error = typedFailure(yield* closedUnder(Effect.void))
      expect(error).toBeInstanceOf(StoreError)
      expect(error).toMatchObject({
        outcomeUnknown: true,
        message:
          "The checkpoint transaction failed: the connection was lost at commit, so whether it committed is unknown: PGlite is closed"
      })
    }).pipe(Effect.provide(PgliteEventStore.layer())))

  it.live("a store transaction inside the caller's transaction is a savepoint: its failure rolls back only its own work", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const sql = yield* SqlClient.SqlClient
      const checkpoints = yield* CheckpointStore
      yield* store.append("Order-2", [{ eventType: "Placed", data: {} }])
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* checkpoints.save("reader", 1n)
        const conflict = yield* Effect.flip(store.deleteStream("Order-2", { expectedVersion: 7 }))
        expect(conflict._tag).toBe("ConcurrencyError")
        yield* store.deleteStream("Order-2", { expectedVersion: 1 })
      }))
      expect(yield* checkpoints.load("reader")).toEqual(Option.some(1n))
      expect(yield* store.streamVersion("Order-2")).toEqual(Option.none())
    }).pipe(Effect.provide(PgliteEventStore.layer())))
})
