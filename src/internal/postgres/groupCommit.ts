/**
 * Group commit: the appends of one store that are not inside a caller's
 * transaction queue while the previous batch is in flight, and go together as
 * one call of the batch function (migrations/0008_group_commit.sql): one round
 * trip and one commit for all of them, each append checked on its own and
 * answered with its own outcome. Natural batching only: an append that finds
 * nothing in flight goes at once, alone, as it would without group commit.
 * docs/group-commit.md explains the mechanism and its limits.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { type ConcurrencyError, type DuplicateEventId, StoreError } from "../../Errors.js"
import type { AppendAttempt, EventStoreDriver } from "../core/driver.js"
import type * as Validation from "../validation/index.js"
import * as Append from "./append.js"
import * as SqlErrors from "./sqlErrors.js"
import type { Tables } from "./tables.js"

type Failure = ConcurrencyError | DuplicateEventId | StoreError

/** An append waiting for its batch, and where its outcome goes. */
interface Pending {
  readonly append: Validation.PreparedAppend
  /** Its entry of the batch function's argument. */
  readonly entry: string
  readonly outcome: Deferred.Deferred<AppendAttempt, Failure>
}

/** A row of the batch function: one per append. */
interface BatchRow {
  readonly append_index: number
  readonly head: string
  readonly positions: string | null
  /** `busy`: another transaction held the stream's row; the batch did not wait for it. */
  readonly rejection: Append.Rejection | "busy" | null
}

// A batch stops growing at whichever limit it reaches first: the rest waits
// for the next round trip. Events of up to 1 MiB each make the size matter.
const maxAppends = 512
const maxChars = 8 * 1024 * 1024

// Batches in flight at once: while they are, new appends queue for the next.
const maxInFlight = 1

// Once a batch is answered, its callers are woken, and those that append again
// at once (a loop of appends, a command handler's next command) do so within
// the same turn of the event loop. Waiting for the end of that turn before
// sending the next batch (setImmediate: no timer, no fixed delay) lets their
// appends join it; sent at the first append, the batches would alternate
// between one append and all the others. An append that finds nothing in
// flight is still sent at once.
const endOfTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const done = () => resume(Effect.void)
  if (typeof setImmediate === "function") {
    const handle = setImmediate(done)
    return Effect.sync(() => clearImmediate(handle))
  }
  const handle = setTimeout(done, 0)
  return Effect.sync(() => clearTimeout(handle))
})

const couldNotAppend = (append: Validation.PreparedAppend) => `Could not append to "${append.streamId}"`

/**
 * The driver's append with group commit. `appends.alone` is the path of an
 * append inside a transaction, of an append whose stream row another
 * transaction held ("busy"), and of every append of a batch the server
 * refused as a whole; `appends.unlessBusy` that of a lone append.
 */
export const make = (
  sql: SqlClient.SqlClient,
  tables: Tables,
  appends: Append.Appends
): Effect.Effect<EventStoreDriver["append"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make()
    let queue: Array<Pending> = []
    let inFlight = 0

    // Appends still queued when the store closes were never sent.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const left = queue
        queue = []
        return Effect.forEach(left, (pending) => Deferred.interrupt(pending.outcome), { discard: true })
      })
    )

    const take = (): Array<Pending> => {
      let count = 0
      let chars = 0
      while (count < queue.length && count < maxAppends) {
        chars += queue[count]?.entry.length ?? 0
        if (count > 0 && chars > maxChars) break
        count++
      }
      return queue.splice(0, count)
    }

    const settle = (pending: Pending, exit: Exit.Exit<AppendAttempt, Failure>) => Deferred.done(pending.outcome, exit)

    // The append made alone, outside the round trip in flight (where it may
    // wait for a stream row without anything queueing behind it), answered
    // to its caller.
    const aloneOutside = (pending: Pending) =>
      FiberSet.run(
        fibers,
        appends.alone(pending.append).pipe(
          Effect.exit,
          Effect.flatMap((exit) => settle(pending, exit)),
          Effect.onInterrupt(() => Deferred.interrupt(pending.outcome))
        )
      )

    // What a batch falls back to when the server refused it as a whole (a
    // deadlock with another transaction, a value one append carries that the
    // server will not store, a read-only standby): nothing of it was
    // committed, and each append gets the outcome it would have had alone.
    const eachAlone = (batch: ReadonlyArray<Pending>) => Effect.forEach(batch, aloneOutside, { discard: true })

    const failed = (batch: ReadonlyArray<Pending>, cause: Cause.Cause<SqlError>) => {
      const error = Option.getOrUndefined(Cause.failureOption(cause))
      if (error !== undefined && SqlErrors.rejectedByServer(error)) {
        return eachAlone(batch)
      }
      return Effect.forEach(batch, (pending) => {
        const what = couldNotAppend(pending.append)
        return error === undefined
          ? Deferred.failCause(pending.outcome, Cause.map(cause, SqlErrors.storeError(what)))
          // The connection was lost: the batch may have committed or not.
          : Effect.flatMap(Effect.exit(SqlErrors.writeFailed(what)(error)), (exit) => settle(pending, exit))
      }, { discard: true })
    }

    const answered = (batch: ReadonlyArray<Pending>, rows: ReadonlyArray<BatchRow>) =>
      Effect.gen(function*() {
        const byIndex = new Map(rows.map((row) => [row.append_index, row]))
        const lookups: Array<Effect.Effect<void>> = []
        for (let i = 0; i < batch.length; i++) {
          const pending = batch[i] as Pending
          const row = byIndex.get(i)
          if (row === undefined) {
            yield* Deferred.fail(
              pending.outcome,
              new StoreError({ message: `${couldNotAppend(pending.append)}: the batch returned no outcome for it` })
            )
          } else if (row.rejection === null) {
            yield* Deferred.succeed(pending.outcome, {
              _tag: "Appended",
              streamVersion: Number(row.head),
              positions: (row.positions ?? "").split(",").map(BigInt)
            })
          } else if (row.rejection === "busy") {
            // It waits for the row on a connection of its own, while the next batch goes.
            yield* aloneOutside(pending)
          } else if (row.rejection === "stored_ids") {
            // Which append stored those ids, after the commit: only this one waits for it.
            lookups.push(
              appends.rejected(pending.append, row.rejection, Number(row.head)).pipe(
                Effect.catchTag(
                  "SqlError",
                  (error) => Effect.fail(SqlErrors.storeError(couldNotAppend(pending.append))(error))
                ),
                Effect.exit,
                Effect.flatMap((exit) => settle(pending, exit)),
                Effect.onInterrupt(() => Deferred.interrupt(pending.outcome))
              )
            )
          } else {
            yield* Deferred.succeed(pending.outcome, {
              _tag: "Rejected",
              reason: row.rejection === "tombstoned" ? "tombstoned" : "conflict",
              actual: Number(row.head),
              stored: []
            })
          }
        }
        for (const lookup of lookups) yield* FiberSet.run(fibers, lookup)
      })

    const send = (batch: ReadonlyArray<Pending>): Effect.Effect<void> =>
      sql<BatchRow>`
        SELECT b.append_index, b.head::text AS head, b.positions, b.rejection
        FROM ${tables.appendBatch}(${"[" + batch.map((pending) => pending.entry).join(",") + "]"}::jsonb) b`.pipe(
        Effect.matchCauseEffect({
          onFailure: (cause) => failed(batch, cause),
          onSuccess: (rows) => answered(batch, rows)
        }),
        // A batch is no one caller's: its own trace, not a child of whichever caller sent it.
        Effect.withSpan("EventStore.appendBatch", {
          attributes: { appends: batch.length },
          root: true,
          captureStackTrace: false
        })
      )

    // Sends what is queued unless a batch is in flight; the batch, once
    // answered, sends what queued meanwhile. Whatever ends a batch (the store
    // closing too), every append in it gets an outcome.
    const pump: Effect.Effect<void> = Effect.suspend(() => {
      if (inFlight >= maxInFlight || queue.length === 0) return Effect.void
      inFlight++
      const batch = take()
      return FiberSet.run(
        fibers,
        Effect.interruptible(send(batch)).pipe(
          Effect.onExit((exit) =>
            Exit.isSuccess(exit)
              ? Effect.void
              : Effect.forEach(batch, (pending) => Deferred.interrupt(pending.outcome), { discard: true })
          ),
          Effect.ensuring(endOfTurn.pipe(
            Effect.zipRight(Effect.suspend(() => {
              inFlight--
              return pump
            }))
          ))
        )
      ).pipe(Effect.asVoid)
    })

    return (append) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) => {
        if (Option.isSome(transaction)) return appends.alone(append)
        return Effect.uninterruptibleMask((restore) =>
          Effect.suspend(() => {
            if (inFlight < maxInFlight && queue.length === 0) {
              // Nothing in flight: this append goes at once, alone, on the
              // caller's own fiber; what queues meanwhile goes when it is
              // answered. It does not wait for a stream row another
              // transaction holds ("busy"): made again alone, it waits for it
              // outside, where nothing queues behind it.
              inFlight++
              return restore(appends.unlessBusy(append)).pipe(
                Effect.ensuring(Effect.suspend(() => {
                  inFlight--
                  return pump
                })),
                Effect.flatMap((attempt) =>
                  attempt === "busy" ? restore(appends.alone(append)) : Effect.succeed(attempt)
                )
              )
            }
            return Effect.gen(function*() {
              const pending: Pending = {
                append,
                entry: Append.batchEntryOf(append),
                outcome: yield* Deferred.make<AppendAttempt, Failure>()
              }
              queue.push(pending)
              yield* pump
              return yield* restore(Deferred.await(pending.outcome)).pipe(
                // Interrupted before its batch was sent: it never will be. Once
                // sent, its batch goes on, for the others in it.
                Effect.onInterrupt(() =>
                  Effect.sync(() => {
                    const at = queue.indexOf(pending)
                    if (at >= 0) queue.splice(at, 1)
                  })
                )
              )
            })
          })
        )
      })
  })
