/**
 * How a driver error becomes a StoreError: the message names what failed, then
 * the driver's message and the SQLSTATE, and the fields tell a caller whether
 * a failed write may have taken effect.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import type { StoreError } from "../../src/Errors.js"
import * as SqlErrors from "../../src/internal/postgres/sqlErrors.js"
import { PgliteClient } from "../../src/pglite/index.js"

const fieldsOf = ({ _tag, message, outcomeUnknown, sqlState }: StoreError) => ({
  _tag,
  message,
  outcomeUnknown,
  sqlState
})

/** A session the server ended: node-postgres's error, with no SQLSTATE. */
const lostConnection = new SqlError({
  cause: new Error("Connection terminated unexpectedly"),
  message: "Failed to execute statement"
})

describe("SqlError to StoreError", () => {
  it.effect("a statement the server refused: its message and SQLSTATE; a refused write took no effect", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const error = yield* Effect.flip(sql`SELECT 1 / 0`)
      expect(fieldsOf(SqlErrors.storeError("Could not divide")(error))).toEqual({
        _tag: "StoreError",
        message: "Could not divide: division by zero (SQLSTATE 22012)",
        sqlState: "22012",
        outcomeUnknown: undefined
      })
      const written = yield* Effect.flip(SqlErrors.writeFailed("Could not write")(error))
      expect(written.outcomeUnknown).toBeUndefined()
    }).pipe(Effect.provide(PgliteClient.layer())))

  it.effect("a connection refused: the driver's message, no SQLSTATE, and a write that was never sent is not of unknown outcome", () =>
    Effect.gen(function*() {
      // Nothing listens on port 1.
      const error = yield* Effect.flip(Effect.scoped(Layer.build(
        PgClient.layer({ url: Redacted.make("postgres://nobody@127.0.0.1:1/none"), connectTimeout: "5 seconds" })
      )))
      const mapped = SqlErrors.storeError("Could not append to \"Order-1\"")(error)
      expect(mapped.message).toMatch(/^Could not append to "Order-1": connect ECONNREFUSED 127\.0\.0\.1:1$/)
      expect(mapped.sqlState).toBeUndefined()
      const written = yield* Effect.flip(SqlErrors.writeFailed("Could not append to \"Order-1\"")(error))
      expect(written.outcomeUnknown).toBeUndefined()
    }))

  it.effect("a write whose connection was lost may have committed: outcomeUnknown, except inside the caller's transaction", () =>
    Effect.gen(function*() {
      const alone = yield* Effect.flip(SqlErrors.writeFailed("Could not save checkpoint \"c\"")(lostConnection))
      expect(fieldsOf(alone)).toEqual({
        _tag: "StoreError",
        message: "Could not save checkpoint \"c\": Connection terminated unexpectedly",
        sqlState: undefined,
        outcomeUnknown: true
      })
      const sql = yield* SqlClient.SqlClient
      const inside = yield* sql.withTransaction(
        Effect.flip(SqlErrors.writeFailed("Could not save checkpoint \"c\"")(lostConnection))
      )
      expect(inside.outcomeUnknown).toBeUndefined()
    }).pipe(Effect.provide(PgliteClient.layer())))

  it("a commit the server refused rolled back; a commit whose connection was lost has an unknown outcome", () => {
    const refused = new SqlError({
      cause: Object.assign(new Error("could not serialize access due to read/write dependencies among transactions"), {
        code: "40001",
        severity: "ERROR"
      }),
      message: "Failed to execute statement"
    })
    expect(fieldsOf(SqlErrors.commitFailed("Could not delete stream \"s\"", refused))).toEqual({
      _tag: "StoreError",
      message: "Could not delete stream \"s\": the commit failed and the transaction rolled back: " +
        "could not serialize access due to read/write dependencies among transactions (SQLSTATE 40001)",
      sqlState: "40001",
      outcomeUnknown: undefined
    })
    expect(fieldsOf(SqlErrors.commitFailed("Could not delete stream \"s\"", lostConnection))).toEqual({
      _tag: "StoreError",
      message:
        "Could not delete stream \"s\": the connection was lost at commit, so whether it committed is unknown: " +
        "Connection terminated unexpectedly",
      sqlState: undefined,
      outcomeUnknown: true
    })
  })
})
