/**
 * One active runner per projection across processes, on PostgreSQL: a session
 * advisory lock on a dedicated connection, or a lease row for deployments
 * behind a transaction-mode pooler, where session locks do not work.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as os from "node:os"
import type { InvalidInput, StoreError } from "../Errors.js"
import { schemaOf } from "../internal/postgres/schema.js"
import { storeError } from "../internal/postgres/sqlErrors.js"
import { LockLost, LockUnsupported, RunnerLock } from "../RunnerLock.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RunnerLockOptions {
  /** The schema of the event store (default `event_store`); locks are per schema. */
  readonly schema?: string | undefined
  /** How often a standby tries to take over (default 1 second). */
  readonly retryInterval?: Duration.DurationInput | undefined
  /** How often the holder checks that it still holds the lock (default 1 second). */
  readonly checkInterval?: Duration.DurationInput | undefined
}

// The runner lock of key $1 held by the backend `pid` (an SQL expression).
const heldBy = (pid: string) =>
  `EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = ${pid}
    AND l.classid::bigint = ((hashtextextended($1, 0) >> 32) & 4294967295)
    AND l.objid::bigint = (hashtextextended($1, 0) & 4294967295))`

const tryLock = "SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked, pg_backend_pid() AS pid"
const check = `SELECT pg_backend_pid() AS pid, ${heldBy("pg_backend_pid()")} AS held`
// Releases the lock only where this session holds it: no warning otherwise.
const unlockIfHeld = `SELECT pg_advisory_unlock(hashtextextended($1, 0)) WHERE ${heldBy("pg_backend_pid()")}`
// Releases the lock if this statement runs on backend $2 and that backend holds it.
const unlockOn = `SELECT pg_backend_pid() AS pid,
  CASE WHEN pg_backend_pid() = $2::int AND ${
  heldBy("pg_backend_pid()")
} THEN pg_advisory_unlock(hashtextextended($1, 0)) END AS released`
const heldByBackend = `SELECT ${heldBy("$2::int")} AS held`
const terminateIdleHolder = `SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
  WHERE a.pid = $2::int AND a.state = 'idle' AND ${heldBy("a.pid")}`

interface Row {
  readonly [column: string]: unknown
}

const pooled = (pid: number, seen: string) =>
  `the advisory lock taken on server backend ${pid} is not held across statements (${seen}): a transaction-mode ` +
  `pooler (such as PgBouncer with pool_mode = transaction) sits in front of PostgreSQL. Use PostgresRunnerLock.layerLease() there`

/**
 * A session-level advisory lock, taken on a connection reserved for it. If the
 * process dies, PostgreSQL ends the session and frees the lock, and a standby
 * takes over within `retryInterval`. The holder checks the lock on its
 * connection every `checkInterval`: a lost connection stops the runner.
 *
 * Needs session state, so not behind a transaction-mode pooler (use `lease`).
 * It notices one, as soon as it has the lock and at every check: a session
 * lock is held by one server backend, so when a statement of another
 * connection runs on the backend that took the lock, or a later statement of
 * this connection runs on another backend, there is a pooler in between. Then
 * it releases the lock on that backend and fails with `LockUnsupported`,
 * rather than leave a stray lock on a pooled connection that would block every
 * runner after it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeAdvisory = (
  options?: RunnerLockOptions
): Effect.Effect<RunnerLock, InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* schemaOf(options)
    const retryInterval = options?.retryInterval ?? Duration.seconds(1)
    const checkInterval = options?.checkInterval ?? Duration.seconds(1)

    const acquire = (name: string) =>
      Effect.gen(function*() {
        const key = `effect-event-store/${schema}/projection/${name}`
        const connection = yield* sql.reserve.pipe(
          Effect.mapError(storeError(`Could not reserve a connection for "${name}"`))
        )
        const onConnection = (statement: string, params: ReadonlyArray<unknown>) =>
          Effect.map(connection.execute(statement, params, undefined), (rows) => rows as ReadonlyArray<Row>)
        const onPool = (statement: string, params: ReadonlyArray<unknown>) =>
          sql.unsafe<Row>(statement, params).pipe(Effect.timeout(Duration.seconds(5)))

        // Registered before the first try: an interruption at any point, even
        // with the try in flight, must not return the connection to the pool
        // with the lock held. The release waits for the try on the connection.
        yield* Effect.addFinalizer(() => onConnection(unlockIfHeld, [key]).pipe(Effect.ignore))
        const tryUntilLocked: Effect.Effect<number, StoreError> = onConnection(tryLock, [key]).pipe(
          Effect.mapError(storeError(`Could not try the runner lock of "${name}"`)),
          Effect.flatMap(([row]) =>
            row?.locked === true
              ? Effect.succeed(Number(row.pid))
              : Effect.delay(Effect.suspend(() => tryUntilLocked), retryInterval)
          )
        )
        const pid = yield* tryUntilLocked

        // Behind a transaction pooler, the backend that took the lock is let go
        // at once; best effort, the lock is released there and nowhere else.
        const release = Effect.gen(function*() {
          for (let attempt = 0; attempt < 50; attempt++) {
            yield* Effect.ignore(onConnection(unlockOn, [key, pid]))
            yield* Effect.ignore(onPool(unlockOn, [key, pid]))
            const [row] = yield* onPool(heldByBackend, [key, pid])
            if (row?.held !== true) return
            yield* Effect.sleep(Duration.millis(20))
          }
          yield* onPool(terminateIdleHolder, [key, pid])
          yield* Effect.logWarning(
            `Runner lock of "${name}": ended backend ${pid}, which held the lock on a pooled connection`
          )
        }).pipe(
          Effect.catchAllCause((cause) =>
            Effect.logError(`Runner lock of "${name}": could not release the lock on backend ${pid}`, cause)
          )
        )
        const refuse = (seen: string) =>
          Effect.zipRight(release, Effect.fail(new LockUnsupported({ name, reason: pooled(pid, seen) })))

        // Another connection can only run on the lock's backend through a pooler;
        // in a quiet pooler it does (the backend this session just let go is
        // reused first), and then this very statement releases the lock there.
        // Inconclusive when the pool has no connection to spare.
        const sharedBackend = onPool(unlockOn, [key, pid]).pipe(
          Effect.map(([row]) => Number(row?.pid) === pid),
          Effect.orElseSucceed(() => false)
        )
        const verify: Effect.Effect<void, LockLost | LockUnsupported> = Effect.gen(function*() {
          const [row] = yield* onConnection(check, [key]).pipe(
            Effect.mapError((cause) => new LockLost({ name, reason: `its connection failed: ${cause.message}` }))
          )
          const backend = Number(row?.pid)
          if (backend !== pid) return yield* refuse(`the next statement of its session ran on backend ${backend}`)
          if (row?.held !== true) return yield* new LockLost({ name, reason: "the advisory lock is no longer held" })
          if (yield* sharedBackend) return yield* refuse("a statement of another connection ran on it")
        })
        yield* verify
        return Effect.forever(Effect.delay(verify, checkInterval))
      })

    return RunnerLock.of({ acquire })
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface LeaseOptions extends RunnerLockOptions {
  /** How long a lease lasts without renewal (default 10 seconds); renewed every third of it. */
  readonly ttl?: Duration.DurationInput | undefined
}

/**
 * A lease row in `projection_leases`, taken and renewed with single
 * statements, so it works behind PgBouncer in transaction mode. A dead
 * holder's lease expires after `ttl`, and a standby takes over then. A holder
 * that fails to renew stops at once, well before its lease runs out.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLease = (options?: LeaseOptions): Effect.Effect<RunnerLock, InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* schemaOf(options)
    const leases = sql(`${schema}.projection_leases`)
    const ttl = Duration.decode(options?.ttl ?? Duration.seconds(10))
    const seconds = Duration.toMillis(ttl) / 1000
    const retry = Schedule.spaced(options?.retryInterval ?? Duration.seconds(1))

    const acquire = (name: string) =>
      Effect.gen(function*() {
        const owner = `${os.hostname()}/${process.pid}/${crypto.randomUUID()}`
        // Before the claim, so that an interruption right after it leaves no lease behind.
        yield* Effect.addFinalizer(() =>
          sql`DELETE FROM ${leases} WHERE name = ${name} AND owner = ${owner}`.pipe(Effect.ignore)
        )
        yield* sql`INSERT INTO ${leases} AS l (name, owner, expires_at)
            VALUES (${name}, ${owner}, clock_timestamp() + make_interval(secs => ${seconds}))
            ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
              WHERE l.expires_at < clock_timestamp() OR l.owner = EXCLUDED.owner
            RETURNING owner`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(storeError(`Could not claim the lease of "${name}"`)),
          Effect.repeat({ schedule: retry, until: (claimed) => claimed })
        )
        const renew = sql`UPDATE ${leases} SET expires_at = clock_timestamp() + make_interval(secs => ${seconds})
            WHERE name = ${name} AND owner = ${owner} RETURNING owner`.pipe(Effect.map((rows) => rows.length > 0))
        return renew.pipe(
          Effect.mapError((cause) =>
            new LockLost({ name, reason: `the lease could not be renewed: ${cause.message}` })
          ),
          Effect.repeat({
            schedule: Schedule.spaced(Duration.millis(Duration.toMillis(ttl) / 3)),
            while: (renewed) => renewed
          }),
          Effect.zipRight(new LockLost({ name, reason: "the lease was taken over" }))
        )
      })

    return RunnerLock.of({ acquire })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerAdvisory = (
  options?: RunnerLockOptions
): Layer.Layer<RunnerLock, InvalidInput, SqlClient.SqlClient> => Layer.effect(RunnerLock, makeAdvisory(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerLease = (options?: LeaseOptions): Layer.Layer<RunnerLock, InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(RunnerLock, makeLease(options))
