/**
 * The store's own transactions. `@effect/sql`'s `withTransaction` turns a
 * failed COMMIT or ROLLBACK into a defect, and that defect replaces the body's
 * typed failure; a lost connection (server restart, failover,
 * `pg_terminate_backend`) would end a store operation with a defect. Here every
 * way the connection can fail ends in a typed error instead.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { StoreError } from "../../Errors.js"
import * as SqlErrors from "./sqlErrors.js"

/** The first `SqlError` in a cause, failed or died with. */
const sqlErrorIn = (cause: Cause.Cause<unknown>): SqlError | undefined =>
  Option.getOrUndefined(Cause.find(cause, (reason) =>
    Cause.isFailType(reason) && reason.error instanceof SqlError
      ? Option.some(reason.error)
      : Cause.isDieType(reason) && reason.defect instanceof SqlError
      ? Option.some(reason.defect)
      : Option.none()))

/**
 * Runs `effect` in a transaction of `sql` (a savepoint inside the caller's
 * transaction, as `withTransaction` does), `what` naming the operation in
 * errors:
 * - the body's failures come back as they are, also when the ROLLBACK after
 *   them fails: the server rolls back a transaction whose connection is gone;
 * - when BEGIN (or getting a connection) fails, a `StoreError`;
 * - when COMMIT fails, a `StoreError`, with `outcomeUnknown` unless the server
 *   answered that it rolled back.
 *
 * Interruption works as in `withTransaction`: the body is interruptible, BEGIN,
 * COMMIT and ROLLBACK are not.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withTransaction =
  (sql: SqlClient.SqlClient, what: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
    Effect.suspend(() => {
      // How the body ended, once it has run: tells a failure of the body from one
      // of BEGIN (body never ran) and one of COMMIT (body succeeded).
      let body: Exit.Exit<A, E> | undefined = undefined
      return sql.withTransaction(Effect.onExit(effect, (exit) => Effect.sync(() => body = exit))).pipe(
        Effect.catchAllCause((cause): Effect.Effect<never, E | StoreError> => {
          const ran: Exit.Exit<A, E> | undefined = body
          if (ran !== undefined && Exit.isFailure(ran)) return Effect.failCause(ran.cause)
          const error = sqlErrorIn(cause)
          if (error !== undefined) {
            return Effect.fail(
              ran === undefined ? SqlErrors.storeError(what)(error) : SqlErrors.commitFailed(what, error)
            )
          }
          // An interruption before the body ran, or a defect that is not the
          // database's: as it came (no failure in it can be the body's).
          return Effect.failCause(
            Cause.map(cause, (failure) => failure instanceof SqlError ? SqlErrors.storeError(what)(failure) : failure)
          )
        })
      )
    })
