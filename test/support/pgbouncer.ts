/**
 * A PgBouncer in transaction mode at `PGBOUNCER_URL` (default
 * `postgres://root@127.0.0.1:6432/test`), in front of the test database, for
 * the tests of what breaks behind a pooler. Started with `.ci/pgbouncer` when
 * it does not answer; without pgbouncer those tests are skipped with a
 * message, except in CI (CI=true), where they must run.
 */
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Redacted } from "effect"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export const pgbouncerUrl = process.env.PGBOUNCER_URL ?? "postgres://root@127.0.0.1:6432/test"

/** Connections through the pooler: each statement outside a transaction may run on another server backend. */
export const pgbouncerLayer = (maxConnections = 4) =>
  PgClient.layer({
    url: Redacted.make(pgbouncerUrl),
    maxConnections,
    applicationName: "effect-event-store-test-pgbouncer"
  })

const probe = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`SELECT 1`
}).pipe(
  Effect.provide(pgbouncerLayer(1)),
  Effect.timeout(Duration.seconds(5)),
  Effect.as(true),
  Effect.catchAllCause(() => Effect.succeed(false))
)

const start = () => {
  const script = fileURLToPath(new URL("../../.ci/pgbouncer", import.meta.url))
  const started = spawnSync(script, { encoding: "utf8" })
  return started.status === 0 ? "" : `${started.stderr}${started.error?.message ?? ""}`.trim()
}

/** Whether the pooler tests run; in CI an unavailable PgBouncer is a failure, not a skip. */
export const pgbouncerAvailable: boolean = await Effect.runPromise(probe).then(async (answered) => {
  if (answered) return true
  const why = start()
  if (why === "" && (await Effect.runPromise(probe))) return true
  if (process.env.CI) throw new Error(`CI is set but no PgBouncer answers at ${pgbouncerUrl}: ${why}`)
  console.warn(`PgBouncer tests SKIPPED: no PgBouncer at ${pgbouncerUrl} (${why || "it did not start"})`)
  return false
})
