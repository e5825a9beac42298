/**
 * PostgreSQL (a server through `@effect/sql-pg`, or PGlite) as a driver of the
 * core: the append function, keyset reads, the settled horizon, wake-ups from
 * the position sequence, and the lifecycle in the store's own transactions.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { StoreError } from "../../Errors.js"
import type { EventStoreDriver } from "../core/driver.js"
import * as Append from "./append.js"
import * as GlobalOrder from "./globalOrder.js"
import * as GroupCommit from "./groupCommit.js"
import * as Lifecycle from "./lifecycle.js"
import * as Reads from "./reads.js"
import { isTransient } from "./sqlErrors.js"
import * as Tables from "./tables.js"
import * as Wakeups from "./wakeups.js"

export const make = (
  schema: string,
  wakeupOptions: Wakeups.WakeupOptions | undefined,
  options: { readonly groupCommit: boolean }
): Effect.Effect<EventStoreDriver, SqlError | StoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = Tables.make(sql, schema)
    const globalOrder = yield* GlobalOrder.make(schema)
    const wakeups = yield* Wakeups.make(schema, wakeupOptions)
    // `track` wakes the subscribers when an append ends (after its commit, or
    // its failure), so the appends themselves need not.
    const appends = Append.make(sql, tables)
    const append = options.groupCommit ? yield* GroupCommit.make(sql, tables, appends) : appends.alone
    const reads = Reads.make(sql, tables)
    return {
      append: (prepared) => wakeups.track(append(prepared)),
      ...reads,
      readLogRun: (query) =>
        Effect.zipWith(reads.readLogRun(query), wakeups.appending, (run, appending) => ({ ...run, appending })),
      settledHorizon: globalOrder.settledHorizon,
      wakeups: wakeups.register,
      isTransient,
      ...Lifecycle.make(sql, tables)
    }
  })
