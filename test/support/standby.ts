/**
 * A hot standby of the test server, and a load balancer in front of both, for
 * the tests that the store refuses to work on a standby.
 *
 * The standby is the cluster `.ci/standby` makes (a streaming replica of the
 * local server on port 5434, `STANDBY_DATABASE_URL` to point elsewhere). When
 * none answers, the script is run once to make one (it needs root and
 * postgresql-common). Without a standby the tests are skipped with a message,
 * except in CI (`CI=true`), where that is a failure.
 */
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Redacted, Schedule, type Scope } from "effect"
import { execFile } from "node:child_process"
import * as net from "node:net"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { databaseUrl, serverAvailable } from "../postgres/support.js"
import { patience } from "./wait.js"

/** The standby's URL: `DATABASE_URL` on port 5434 unless `STANDBY_DATABASE_URL` says otherwise. */
export const standbyUrl: string = process.env.STANDBY_DATABASE_URL ?? (() => {
  const url = new URL(databaseUrl)
  url.port = "5434"
  return url.toString()
})()

const script = fileURLToPath(new URL("../../.ci/standby", import.meta.url))

/** A pool on `url`, for tests (few connections, quick to give up on a dead server). */
export const clientLayer = (url: string, maxConnections = 4) =>
  PgClient.layer({
    url: Redacted.make(url),
    maxConnections,
    connectTimeout: Duration.seconds(5),
    applicationName: "effect-event-store standby tests"
  })

const inRecovery = (url: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly standby: boolean }>`SELECT pg_is_in_recovery() AS standby`
    return row?.standby === true
  }).pipe(
    Effect.provide(clientLayer(url, 1)),
    Effect.timeout(Duration.seconds(10)),
    Effect.catchAllCause(() => Effect.succeed(false))
  )

const makeStandby = Effect.tryPromise(() => promisify(execFile)(script, [], { timeout: 180_000 })).pipe(
  Effect.tap(({ stdout }) => Effect.sync(() => console.info(stdout.trim()))),
  Effect.catchAll((error) =>
    Effect.sync(() => console.warn(`.ci/standby could not make a standby: ${String(error.error)}`))
  )
)

const redacted = (url: string) => url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")

/** Whether the standby tests run: a standby answers (made if need be), and so does its primary. */
export const standbyAvailable: boolean = await Effect.runPromise(Effect.gen(function*() {
  if (!serverAvailable) return false
  if (yield* inRecovery(standbyUrl)) return true
  // Only the local server's standby is ours to make.
  if (process.env.STANDBY_DATABASE_URL === undefined && new URL(databaseUrl).hostname === "127.0.0.1") {
    yield* makeStandby
  }
  return yield* inRecovery(standbyUrl)
})).then((available) => {
  if (!available && serverAvailable && process.env.CI) {
    throw new Error(`CI is set but no hot standby answers at ${redacted(standbyUrl)} (run .ci/standby)`)
  }
  if (!available && serverAvailable) {
    console.warn(
      `Hot standby tests SKIPPED: no standby at ${
        redacted(standbyUrl)
      } (run .ci/standby as root, or set STANDBY_DATABASE_URL)`
    )
  }
  return available
})

/**
 * Waits until the standby has replayed everything the primary had written when
 * this started (a bounded wait: replication on a busy machine may lag).
 */
export const caughtUp = (primary: SqlClient.SqlClient, standby: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const [row] = yield* primary<{ readonly lsn: string }>`SELECT pg_current_wal_lsn()::text AS lsn`
    const lsn = row?.lsn ?? "0/0"
    yield* standby<{ readonly replayed: boolean }>`SELECT pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn AS replayed`.pipe(
      Effect.map(([replay]) => replay?.replayed === true),
      Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (replayed) => replayed }),
      Effect.timeoutFail({ duration: patience, onTimeout: () => `the standby did not replay up to ${lsn} in time` })
    )
  })

/**
 * A TCP load balancer on a free local port that forwards every connection to
 * one backend, and can be switched to another: `switchTo` sends new
 * connections there and drops the open ones, as a failover does.
 */
export interface LoadBalancer {
  readonly url: string
  readonly switchTo: (url: string) => Effect.Effect<void>
}

const portOf = (url: string) => Number(new URL(url).port || "5432")

export const loadBalancer = (initial: string): Effect.Effect<LoadBalancer, never, Scope.Scope> =>
  Effect.gen(function*() {
    let target = portOf(initial)
    const open = new Set<net.Socket>()
    const server = net.createServer((client) => {
      const upstream = net.connect(target, "127.0.0.1")
      open.add(client)
      open.add(upstream)
      const close = () => {
        client.destroy()
        upstream.destroy()
        open.delete(client)
        open.delete(upstream)
      }
      client.on("error", close).on("close", close)
      upstream.on("error", close).on("close", close)
      client.pipe(upstream).pipe(client)
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const socket of open) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    const url = new URL(initial)
    url.port = String(port)
    return {
      url: url.toString(),
      switchTo: (next) =>
        Effect.sync(() => {
          target = portOf(next)
          for (const socket of open) socket.destroy()
        })
    }
  })
