/**
 * Where a driver error becomes a store error, for every SQL backend: the
 * SQLSTATE codes the store acts on, and the one mapping from `SqlError` to
 * `StoreError`, whose message carries the driver's message and the SQLSTATE.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { HotStandby, StoreError } from "../../Errors.js"

/**
 * The SQLSTATE codes the store acts on (PostgreSQL's errcodes appendix).
 *
 * @since 0.1.0
 * @category constants
 */
export const SqlState = {
  /** A unique constraint rejected a row. */
  uniqueViolation: "23505",
  /** REPEATABLE READ / SERIALIZABLE: the transaction saw a concurrent change. */
  serializationFailure: "40001",
  /** The statement was cancelled (`pg_cancel_backend`, `statement_timeout`, an interrupted query). */
  queryCanceled: "57014",
  /** The server ended the session: `pg_terminate_backend` or a fast shutdown. */
  adminShutdown: "57P01",
  /** The server is shutting down or restarting after a crash (`crash_shutdown`). */
  crashShutdown: "57P02",
  /** The server does not accept connections yet (starting up, recovering). */
  cannotConnectNow: "57P03",
  /** `max_connections` reached: the connection was refused. */
  tooManyConnections: "53300",
  /** The database named in the connection does not exist. */
  invalidCatalogName: "3D000",
  /** Class 28: the connection was refused for its role or password. */
  invalidAuthorizationClass: "28"
} as const

const sqlStatePattern = /^[0-9A-Z]{5}$/

const fieldOf = (error: SqlError, field: string): unknown =>
  typeof error.cause === "object" && error.cause !== null && field in error.cause
    ? (error.cause as Record<string, unknown>)[field]
    : undefined

/**
 * The SQLSTATE of the server's answer, if the server answered: node-postgres
 * and PGlite both put it in `cause.code` (where Node's socket errors put
 * `ECONNREFUSED` and the like, which are not SQLSTATEs).
 *
 * @since 0.1.0
 * @category accessors
 */
export const sqlStateOf = (error: SqlError): string | undefined => {
  const code = fieldOf(error, "code")
  return typeof code === "string" && sqlStatePattern.test(code) ? code : undefined
}

/**
 * The constraint the server named in its answer (unique violations).
 *
 * @since 0.1.0
 * @category accessors
 */
export const constraintOf = (error: SqlError): string | undefined => {
  const constraint = fieldOf(error, "constraint")
  return typeof constraint === "string" ? constraint : undefined
}

/**
 * Whether the server answered with an error (severity `ERROR`): the failed
 * statement took no effect, and a transaction it was part of rolled back
 * (never committed). Any other failure — a lost connection, a session the
 * server ended (`FATAL`) — leaves open whether the server had already
 * committed what it was sent.
 *
 * @since 0.1.0
 * @category refinements
 */
export const rejectedByServer = (error: SqlError): boolean => fieldOf(error, "severity") === "ERROR"

/**
 * The failure came while connecting, before any statement reached the server:
 * the server refused the connection, or there was no server to connect to.
 */
const neverConnected = (error: SqlError): boolean => {
  const sqlState = sqlStateOf(error)
  if (sqlState !== undefined) {
    return sqlState === SqlState.cannotConnectNow || sqlState === SqlState.tooManyConnections ||
      sqlState === SqlState.invalidCatalogName || sqlState.startsWith(SqlState.invalidAuthorizationClass)
  }
  return socketNeverConnected(error.cause)
}

// Node's errors of a failed connect (ECONNREFUSED, ENOTFOUND, …) name the
// system call; a failure to reach any of a host's addresses is an AggregateError of them.
const socketNeverConnected = (cause: unknown): boolean =>
  cause instanceof AggregateError
    ? cause.errors.length > 0 && cause.errors.every(socketNeverConnected)
    : typeof cause === "object" && cause !== null && "syscall" in cause &&
      (cause.syscall === "connect" || cause.syscall === "getaddrinfo")

const messageOf = (cause: unknown): string | undefined => {
  // Node reports a failed connection to every address of a host as an
  // AggregateError with an empty message.
  if (cause instanceof AggregateError && cause.errors.length > 0) {
    const messages = cause.errors.map(messageOf).filter((message) => message !== undefined)
    if (messages.length > 0) return Array.from(new Set(messages)).join("; ")
  }
  if (cause instanceof Error && cause.message !== "") return cause.message
  if (
    typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string" &&
    cause.message !== ""
  ) {
    return cause.message
  }
  return typeof cause === "string" && cause !== "" ? cause : undefined
}

/**
 * The driver's message with its SQLSTATE:
 * `terminating connection due to administrator command (SQLSTATE 57P01)`.
 */
const describe = (error: SqlError): string => {
  const message = messageOf(error.cause) ?? error.message
  const sqlState = sqlStateOf(error)
  return sqlState === undefined ? message : `${message} (SQLSTATE ${sqlState})`
}

/**
 * `what` failed because of `error`: a `StoreError` whose message is `what`,
 * then the driver's message and SQLSTATE. With `outcomeUnknown`, the failure
 * leaves open whether the write took effect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const storeError =
  (what: string, options?: { readonly outcomeUnknown?: boolean | undefined }) => (error: SqlError): StoreError =>
    new StoreError({
      message: `${what}: ${describe(error)}`,
      sqlState: sqlStateOf(error),
      ...(options?.outcomeUnknown === true ? { outcomeUnknown: true } : {}),
      cause: error
    })

/**
 * Whether a failed read is worth retrying: the database failed (a
 * `StoreError` made from a `SqlError` here), or the connection landed on a
 * hot standby, as it does for a while during a failover. Not a refusal of the
 * store's own that would only come again (reading the log under the wrong
 * isolation level). A store that opens on a standby fails at once instead.
 */
export const isTransient = (error: StoreError): boolean =>
  error.cause instanceof SqlError || error.cause instanceof HotStandby

/**
 * The `SqlError` in `cause` (failed or died with, also inside a `StoreError`)
 * that is not the server's answer to a statement: the connection was lost or
 * could not be made. A handler that fails with one did not fail on its event.
 *
 * @since 0.1.0
 * @category refinements
 */
export const lostConnectionIn = (cause: Cause.Cause<unknown>): SqlError | undefined => {
  const lost = (value: unknown): Option.Option<SqlError> => {
    const error = value instanceof StoreError ? value.cause : value
    return error instanceof SqlError && !rejectedByServer(error) ? Option.some(error) : Option.none()
  }
  return Option.getOrUndefined(
    Cause.find(
      cause,
      (reason) =>
        Cause.isFailType(reason) ? lost(reason.error) : Cause.isDieType(reason) ? lost(reason.defect) : Option.none()
    )
  )
}

/**
 * A write of one statement (in its own implicit transaction) failed: unless
 * the server answered with an error or the connection was never made, it may
 * have committed before the answer was lost, and the `StoreError` says so.
 * Inside a caller's transaction the caller's COMMIT decides, so there the
 * outcome is not this write's to tell.
 *
 * @since 0.1.0
 * @category constructors
 */
export const writeFailed = (what: string) => (error: SqlError): Effect.Effect<never, StoreError> =>
  Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
    Effect.fail(
      storeError(what, {
        outcomeUnknown: Option.isNone(transaction) && !rejectedByServer(error) && !neverConnected(error)
      })(error)
    ))

/**
 * COMMIT failed. If the server answered with an error (a deferred constraint,
 * a serialization failure), the transaction rolled back. Otherwise the
 * connection was lost while the COMMIT was on its way or in progress, and
 * nobody can tell whether it committed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const commitFailed = (what: string, error: SqlError): StoreError =>
  rejectedByServer(error)
    ? storeError(`${what}: the commit failed and the transaction rolled back`)(error)
    : storeError(`${what}: the connection was lost at commit, so whether it committed is unknown`, {
      outcomeUnknown: true
    })(error)
