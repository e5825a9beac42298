/**
 * A PostgreSQL server the tests may restart, stop and kill: the cluster that
 * `.ci/fault-server` creates (`pg_createcluster 15 faults -p 5433`), never the
 * shared server on 5432. Without it the fault tests are skipped with a
 * message, except under CI=true, where a missing cluster is a failure.
 *
 * Everything here is for tests that run one at a time against that cluster
 * (they live in one file, test/faults/ConnectionFaults.test.ts): a restart
 * ends every session on it.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Redacted, Schedule } from "effect"
import { execFile } from "node:child_process"
import { readFile } from "node:fs/promises"
import { promisify } from "node:util"
import pg from "pg"

const run = promisify(execFile)

/** The cluster: `FAULT_PG_VERSION` (default the first in /etc/postgresql) and `FAULT_PG_PORT` (default 5433). */
const port = Number(process.env.FAULT_PG_PORT ?? 5433)
export const faultDatabaseUrl = process.env.FAULT_DATABASE_URL ?? `postgres://postgres@127.0.0.1:${port}/test`
const name = "faults"

/** How long a restart or a start after `kill -9` may take on a busy machine. */
const readyTimeout = Duration.minutes(2)

interface Cluster {
  readonly version: string
  readonly dataDirectory: string
}

/** The cluster as `pg_lsclusters` lists it, if it exists. */
const findCluster = async (): Promise<Cluster | undefined> => {
  try {
    const { stdout } = await run("pg_lsclusters", ["--no-header"])
    for (const line of stdout.split("\n")) {
      const [version, cluster, clusterPort, , , dataDirectory] = line.trim().split(/\s+/)
      if (cluster === name && Number(clusterPort) === port && version !== undefined && dataDirectory !== undefined) {
        return { version, dataDirectory }
      }
    }
  } catch {
    // No pg_lsclusters: no cluster either.
  }
  return undefined
}

const ctl = (cluster: Cluster, action: "start" | "stop" | "restart", ...options: Array<string>) =>
  Effect.tryPromise({
    try: () => run("pg_ctlcluster", ["--skip-systemctl-redirect", ...options, cluster.version, name, action]),
    catch: (cause) => new Error(`pg_ctlcluster ${action} failed: ${String(cause)}`)
  })

/** One statement on a connection of its own, closed afterwards. */
export const query = <Row extends object>(text: string, values: ReadonlyArray<unknown> = []) =>
  Effect.acquireUseRelease(
    Effect.tryPromise(async () => {
      const client = new pg.Client({ connectionString: faultDatabaseUrl, application_name: "fault-test-admin" })
      // A session the test keeps open must not bring the test down when the server goes.
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.tryPromise(() => client.query<Row>(text, [...values])).pipe(Effect.map((result) => result.rows)),
    (client) => Effect.promise(() => client.end().catch(() => undefined))
  )

const ready = query("SELECT 1").pipe(
  Effect.retry(Schedule.spaced(Duration.millis(100))),
  Effect.timeoutFail({ duration: readyTimeout, onTimeout: () => new Error("the fault server did not come back") }),
  Effect.asVoid
)

const probe = async (): Promise<Cluster | undefined> => {
  const cluster = await findCluster()
  if (cluster === undefined) return undefined
  // A test that failed halfway may have left it down.
  const up = Effect.catchAll(query("SELECT 1"), () => ctl(cluster, "start").pipe(Effect.ignore, Effect.zipRight(ready)))
  return Effect.runPromise(
    up.pipe(Effect.as(cluster), Effect.timeout(readyTimeout), Effect.orElseSucceed(() => undefined))
  )
}

const cluster: Cluster | undefined = await probe().then((found) => {
  if (found === undefined && process.env.CI) {
    throw new Error(
      `CI is set but the fault-test cluster "${name}" on port ${port} is not there: run .ci/fault-server`
    )
  }
  if (found === undefined) {
    console.warn(
      `PostgreSQL fault tests SKIPPED: no cluster "${name}" on port ${port} that they may restart ` +
        `(create it with .ci/fault-server; they never touch the shared server)`
    )
  }
  return found
})

/** Whether the fault tests run. */
export const faultServerAvailable: boolean = cluster !== undefined

const theCluster = Effect.suspend(() =>
  cluster === undefined ? Effect.dieMessage("the fault server is not available") : Effect.succeed(cluster)
)

/** A client of the fault server whose sessions carry `applicationName`, so that they can be told apart and killed. */
export const clientLayer = (applicationName: string, maxConnections = 8) =>
  PgClient.layer({
    url: Redacted.make(faultDatabaseUrl),
    applicationName,
    maxConnections,
    connectTimeout: Duration.seconds(5)
  })

/** Ends every session of `applicationName` (`pg_terminate_backend`); returns how many. */
export const terminateBackends = (applicationName: string) =>
  query<{ readonly terminated: number }>(
    // Materialized, so that the planner cannot call pg_terminate_backend before
    // the other conditions have picked the sessions.
    `WITH targets AS MATERIALIZED (
       SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()
     )
     SELECT count(*)::int AS terminated FROM targets WHERE pg_terminate_backend(pid)`,
    [applicationName]
  ).pipe(Effect.map(([row]) => row?.terminated ?? 0))

/** A restart (fast shutdown, then start); returns once the server answers again. */
export const restart = Effect.flatMap(theCluster, (c) => ctl(c, "restart", "--mode", "fast")).pipe(
  Effect.zipRight(ready)
)

/** Stops the server (fast shutdown). */
export const stop = Effect.flatMap(theCluster, (c) => ctl(c, "stop", "--mode", "fast")).pipe(Effect.asVoid)

/**
 * Starts the server and waits until it answers. After a `kill -9` the orphaned
 * backends hold the shared memory and the socket lock for a moment: the start
 * is tried again until they are gone.
 */
export const start = Effect.flatMap(theCluster, (c) =>
  ctl(c, "start").pipe(
    Effect.retry(Schedule.spaced(Duration.millis(200))),
    Effect.timeoutFail({ duration: readyTimeout, onTimeout: () => new Error("the fault server did not start") })
  )).pipe(Effect.zipRight(ready))

/** `kill -9` of the postmaster; the server stays down until `start`. */
export const killPostmaster = Effect.gen(function*() {
  const { dataDirectory } = yield* theCluster
  const pidFile = yield* Effect.tryPromise(() => readFile(`${dataDirectory}/postmaster.pid`, "utf8"))
  const pid = Number(pidFile.split("\n")[0])
  yield* Effect.try(() => process.kill(pid, "SIGKILL"))
  return pid
})
