/**
 * How the SQL backend recognises a hot standby, where it refuses to work: see
 * `HotStandby` in the errors and docs/global-order.md. The checks ride on
 * statements the store runs anyway (`pg_is_in_recovery()` is a column of the
 * horizon query, of the poller's read and of the migration's first statement);
 * a write learns it from its failure.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { HotStandby, StoreError } from "../../Errors.js"
import { sqlStateOf, storeError } from "./sqlErrors.js"

/**
 * The failure of an operation refused on a standby: a `StoreError` that says
 * so, with the `HotStandby` as its cause.
 *
 * @since 0.1.0
 * @category errors
 */
export const refusal = (operation: string): StoreError => {
  const cause = new HotStandby({ operation })
  return new StoreError({ message: cause.message, cause })
}

/**
 * SQLSTATE 25006: a write in a read-only transaction, which is every
 * transaction on a standby.
 *
 * @since 0.1.0
 * @category checks
 */
export const isReadOnlyViolation = (error: SqlError): boolean => sqlStateOf(error) === "25006"

/**
 * The failure of a write the database refused as read-only: the standby's
 * refusal when a probe on the same client finds one, otherwise a `StoreError`
 * that names both possible reasons. Inside a transaction the probe fails (the
 * transaction is aborted), and so does the answer fall back.
 *
 * @since 0.1.0
 * @category errors
 */
export const readOnlyFailure = (
  sql: SqlClient.SqlClient,
  operation: string,
  error: SqlError
): Effect.Effect<never, StoreError> =>
  sql<{ readonly standby: boolean }>`SELECT pg_is_in_recovery() AS standby`.pipe(
    Effect.map(([row]) => row?.standby === true),
    Effect.orElseSucceed(() => false),
    Effect.flatMap((standby) =>
      Effect.fail(
        standby
          ? refusal(operation)
          : storeError(
            `Could not ${operation}: the database is read-only (a read-only transaction, or a hot standby; ` +
              `writes need the primary)`
          )(error)
      )
    )
  )
