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
import type { InvalidInput } from "../Errors.js"
import { LockLost, RunnerLock } from "../RunnerLock.js"
import * as Migrations from "./Migrations.js"
import { storeError } from "./SqlErrors.js"

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


/**
 * A session-level advisory lock, taken on a connection reserved for it. If the
 * process dies, PostgreSQL ends the session and frees the lock, and a standby
 * takes over within `retryInterval`. The holder checks the lock on its
 * connection every `checkInterval`: a lost connection stops the runner.
 *
 * Needs session state: not behind a transaction-mode pooler (use `lease`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeAdvisory = (options?: RunnerLockOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* Migrations.schemaOf(options)
    const retry = Schedule.spaced(options?.retryInterval ?? Duration.seconds(1))
    const check = Schedule.spaced(options?.checkInterval ?? Duration.seconds(1))

    const acquire = (name: string) =>
      Effect.gen(function*() {
        const key = `effect-event-store/${schema}/projection/${name}`
        const connection = yield* sql.reserve.pipe(Effect.mapError(storeError(`Could not reserve a connection for "${name}"`)))
        yield* connection.execute("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [key], undefined).pipe(
          Effect.map(([row]) => (row as { readonly locked?: unknown } | undefined)?.locked === true),
          Effect.mapError(storeError(`Could not try the runner lock of "${name}"`)),
          Effect.repeat({ schedule: retry, until: (locked) => locked })
        )
        yield* Effect.addFinalizer(() =>
          connection.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key], undefined).pipe(Effect.ignore)
        )
        const held = connection.execute(
          "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted) AS held",
          [],
          undefined
        ).pipe(Effect.map(([row]) => (row as { readonly held?: unknown } | undefined)?.held === true))
        return held.pipe(
          Effect.mapError((cause) => new LockLost({ name, reason: `its connection failed: ${cause.message}` })),
          Effect.repeat({ schedule: check, while: (stillHeld) => stillHeld }),
          Effect.zipRight(new LockLost({ name, reason: "the advisory lock is no longer held" }))
        )
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
export const makeLease = (options?: LeaseOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* Migrations.schemaOf(options)
    const leases = sql(`${schema}.projection_leases`)
    const ttl = Duration.decode(options?.ttl ?? Duration.seconds(10))
    const seconds = Duration.toMillis(ttl) / 1000
    const retry = Schedule.spaced(options?.retryInterval ?? Duration.seconds(1))

    const acquire = (name: string) =>
      Effect.gen(function*() {
        const owner = `${os.hostname()}/${process.pid}/${crypto.randomUUID()}`
        yield* sql`INSERT INTO ${leases} AS l (name, owner, expires_at)
            VALUES (${name}, ${owner}, clock_timestamp() + make_interval(secs => ${seconds}))
            ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
              WHERE l.expires_at < clock_timestamp() OR l.owner = EXCLUDED.owner
            RETURNING owner`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(storeError(`Could not claim the lease of "${name}"`)),
          Effect.repeat({ schedule: retry, until: (claimed) => claimed })
        )
        yield* Effect.addFinalizer(() => sql`DELETE FROM ${leases} WHERE name = ${name} AND owner = ${owner}`.pipe(Effect.ignore))
        const renew = sql`UPDATE ${leases} SET expires_at = clock_timestamp() + make_interval(secs => ${seconds})
            WHERE name = ${name} AND owner = ${owner} RETURNING owner`.pipe(Effect.map((rows) => rows.length > 0))
        return renew.pipe(
          Effect.mapError((cause) => new LockLost({ name, reason: `the lease could not be renewed: ${cause.message}` })),
          Effect.repeat({ schedule: Schedule.spaced(Duration.millis(Duration.toMillis(ttl) / 3)), while: (renewed) => renewed }),
          Effect.zipRight(new LockLost({ name, reason: "the lease was taken over" }))
        )
      })

    return RunnerLock.of({ acquire })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerAdvisory = (options?: RunnerLockOptions): Layer.Layer<RunnerLock, InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(RunnerLock, makeAdvisory(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerLease = (options?: LeaseOptions): Layer.Layer<RunnerLock, InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(RunnerLock, makeLease(options))
