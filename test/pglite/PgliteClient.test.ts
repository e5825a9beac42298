import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as PgliteClient from "../../src/pglite/PgliteClient.js"
import { patience, startupTimeout } from "../support/wait.js"

const labels = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ readonly label: string }>`SELECT label FROM ${sql(table)} ORDER BY id`,
      (rows) => rows.map((row) => row.label)
    ))

const createLog = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`CREATE TABLE ${sql(table)} (id serial PRIMARY KEY, label text NOT NULL UNIQUE)`
  )

const log = (table: string, label: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO ${sql(table)} ${sql.insert({ label })}`)

const awaitListening = (channel: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly channel: string }>`SELECT pg_listening_channels() AS channel`.pipe(
        Effect.filterOrFail((rows) => rows.some((row) => row.channel === channel)),
        Effect.retry(Schedule.spaced("5 millis")),
        Effect.timeout(patience)
      )
  )

class Boom extends Error {}

layer(PgliteClient.layer(), { timeout: startupTimeout, excludeTestServices: true })("PgliteClient", (it) => {
  describe("statements", () => {
    it.effect("compiles SQL as @effect/sql-pg does", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [text, params] = sql`SELECT * FROM ${sql("people")} WHERE ${sql.in("id", [1, 2])} AND name = ${"a"}`
          .compile()
        expect(text).toBe(`SELECT * FROM "people" WHERE "id" IN ($1,$2) AND name = $3`)
        expect(params).toEqual([1, 2, "a"])
      }))

    it.effect("round-trips rows through parameters", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, born date)`
        yield* sql`INSERT INTO people ${sql.insert([{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }])}`
        const rows = yield* sql<{ readonly id: number; readonly name: string }>`
          SELECT id, name FROM people WHERE name = ${"Grace"} OR id = ${1} ORDER BY id
        `
        expect(rows).toEqual([{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }])
      }))

    it.effect("returns int8 as a string, without losing precision", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        expect(yield* sql`SELECT 9007199254740993::int8 AS n`).toEqual([{ n: "9007199254740993" }])
        expect(yield* sql`SELECT ${"9007199254740993"}::int8 AS n, ARRAY[1, 2]::int8[] AS ns`).toEqual([
          { n: "9007199254740993", ns: ["1", "2"] }
        ])
      }))

    it.effect("returns json and jsonb parsed, timestamptz as a Date", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql`
          SELECT ${JSON.stringify({ a: [1, "x"] })}::jsonb AS doc,
                 '{"b":null}'::json AS plain,
                 '2024-01-02T03:04:05.678Z'::timestamptz AS at
        `
        expect(rows).toEqual([{
          doc: { a: [1, "x"] },
          plain: { b: null },
          at: new Date("2024-01-02T03:04:05.678Z")
        }])
      }))

    it.effect("returns values as arrays", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        expect(yield* sql`SELECT 1 AS a, 'x' AS b`.values).toEqual([[1, "x"]])
        expect(yield* sql`SELECT ${2}::int AS a, 'y' AS b`.values).toEqual([[2, "y"]])
      }))

    it.effect("runs a statement without parameters as a script of several statements", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`
          CREATE TABLE script_a (id int);
          CREATE TABLE script_b (id int);
          INSERT INTO script_a VALUES (1);
        `).unprepared
        expect(yield* sql`SELECT id FROM script_a`).toEqual([{ id: 1 }])
        expect(yield* sql`SELECT count(*)::int AS n FROM script_b`).toEqual([{ n: 0 }])
      }))

    it.effect("fails with a SqlError carrying the SQLSTATE and constraint", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE unique_keys (key text CONSTRAINT unique_keys_key UNIQUE)`
        yield* sql`INSERT INTO unique_keys VALUES (${"k"})`
        const error = yield* Effect.flip(sql`INSERT INTO unique_keys VALUES (${"k"})`)
        expect(error).toBeInstanceOf(SqlError)
        expect(error.cause).toMatchObject({ code: "23505", constraint: "unique_keys_key" })
        const syntax = yield* Effect.flip(sql`SELEC 1`)
        expect(syntax.cause).toMatchObject({ code: "42601" })
      }))

    it.effect("streams rows without holding the connection while they are consumed", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const doubled = yield* sql<{ readonly n: number }>`SELECT generate_series(1, 3) AS n`.stream.pipe(
          Stream.mapEffect((row) => sql<{ readonly m: number }>`SELECT ${row.n}::int * 2 AS m`),
          Stream.map((rows) => rows.map((row) => row.m)),
          Stream.runCollect,
          Effect.timeout(patience)
        )
        expect(Array.from(doubled).flat()).toEqual([2, 4, 6])
      }))
  })

  describe("the event loop", () => {
    it.effect("a run of statements leaves it free: a timer set before the run fires before the run ends", () =>
      Effect.gen(function*() {
        yield* createLog("event_loop_log")
        // PGlite answers on the microtask queue; without a turn of the event loop
        // between statements, no timer or I/O callback could run until the end.
        let fired = false
        const timer = setTimeout(() => {
          fired = true
        }, 0)
        for (let i = 0; i < 200; i++) yield* log("event_loop_log", `entry-${i}`)
        clearTimeout(timer)
        expect(fired).toBe(true)
      }))
  })

  describe("transactions", () => {
    it.effect("commit on success and roll back on failure", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createLog("tx_log")
        yield* sql.withTransaction(Effect.zipRight(log("tx_log", "a"), log("tx_log", "b")))
        const error = yield* sql.withTransaction(
          Effect.zipRight(log("tx_log", "c"), Effect.fail(new Boom()))
        ).pipe(Effect.flip)
        expect(error).toBeInstanceOf(Boom)
        expect(yield* labels("tx_log")).toEqual(["a", "b"])
      }))

    it.effect("a failing nested transaction rolls back to its savepoint only", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createLog("savepoint_log")
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* log("savepoint_log", "outer")
          const inner = yield* sql.withTransaction(
            Effect.zipRight(log("savepoint_log", "inner"), Effect.fail(new Boom()))
          ).pipe(Effect.exit)
          expect(Exit.isFailure(inner)).toBe(true)
          yield* log("savepoint_log", "after")
        }))
        expect(yield* labels("savepoint_log")).toEqual(["outer", "after"])
      }))

    it.effect("a statement from another fiber waits until an open transaction commits", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createLog("commit_order_log")
        const opened = yield* Deferred.make<void>()
        const transaction = yield* sql.withTransaction(Effect.gen(function*() {
          yield* log("commit_order_log", "tx-1")
          yield* Deferred.succeed(opened, undefined)
          yield* Effect.sleep("50 millis")
          yield* log("commit_order_log", "tx-2")
        })).pipe(Effect.fork)
        yield* Deferred.await(opened)
        yield* log("commit_order_log", "plain")
        yield* Fiber.join(transaction)
        expect(yield* labels("commit_order_log")).toEqual(["tx-1", "tx-2", "plain"])
      }))

    it.effect("a statement from another fiber does not land in a transaction that rolls back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createLog("rollback_isolation_log")
        const opened = yield* Deferred.make<void>()
        const transaction = yield* sql.withTransaction(Effect.gen(function*() {
          yield* log("rollback_isolation_log", "tx-1")
          yield* Deferred.succeed(opened, undefined)
          yield* Effect.sleep("50 millis")
          yield* log("rollback_isolation_log", "tx-2")
          return yield* Effect.fail(new Boom())
        })).pipe(Effect.fork)
        yield* Deferred.await(opened)
        yield* log("rollback_isolation_log", "plain")
        const exit = yield* Fiber.await(transaction)
        expect(Exit.isFailure(exit)).toBe(true)
        expect(yield* labels("rollback_isolation_log")).toEqual(["plain"])
      }))

    it.effect("a statement interrupted while waiting for the connection gives it back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createLog("interrupted_log")
        const opened = yield* Deferred.make<void>()
        const finish = yield* Deferred.make<void>()
        const transaction = yield* sql.withTransaction(
          Effect.zipRight(Deferred.succeed(opened, undefined), Deferred.await(finish))
        ).pipe(Effect.fork)
        yield* Deferred.await(opened)
        const waiting = yield* Effect.fork(log("interrupted_log", "interrupted"))
        yield* Effect.sleep("20 millis")
        yield* Fiber.interrupt(waiting)
        yield* Deferred.succeed(finish, undefined)
        yield* Fiber.join(transaction)
        yield* log("interrupted_log", "next").pipe(Effect.timeout(patience))
        expect(yield* labels("interrupted_log")).toEqual(["next"])
      }))

    it.effect("an interrupted transaction rolls back and frees the connection", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createLog("interrupted_tx_log")
        const inserted = yield* Deferred.make<void>()
        const transaction = yield* sql.withTransaction(
          log("interrupted_tx_log", "tx").pipe(
            Effect.zipRight(Deferred.succeed(inserted, undefined)),
            Effect.zipRight(Effect.never)
          )
        ).pipe(Effect.fork)
        yield* Deferred.await(inserted)
        yield* Fiber.interrupt(transaction)
        yield* log("interrupted_tx_log", "next").pipe(Effect.timeout(patience))
        expect(yield* labels("interrupted_tx_log")).toEqual(["next"])
      }))
  })

  describe("listen", () => {
    it.scoped("receives the payloads sent to its channel, and stops listening when it ends", () =>
      Effect.gen(function*() {
        const client = yield* PgliteClient.PgliteClient
        const received = yield* Queue.unbounded<string>()
        const listener = yield* client.listen("Mixed_Case").pipe(
          Stream.runForEach((payload) => Queue.offer(received, payload)),
          Effect.fork
        )
        yield* awaitListening("Mixed_Case")
        yield* client`SELECT pg_notify(${"Mixed_Case"}, ${"hello"})`
        yield* client`SELECT pg_notify(${"mixed_case"}, ${"other channel"})`
        yield* client`SELECT pg_notify(${"Mixed_Case"}, ${""})`
        expect(yield* Queue.take(received).pipe(Effect.timeout(patience))).toBe("hello")
        expect(yield* Queue.take(received).pipe(Effect.timeout(patience))).toBe("")
        yield* Fiber.interrupt(listener)
        const channels = yield* client<{ readonly channel: string }>`SELECT pg_listening_channels() AS channel`
        expect(channels).toEqual([])
      }))

    it.scoped("delivers a notification sent in a transaction after the commit, and never after a rollback", () =>
      Effect.gen(function*() {
        const client = yield* PgliteClient.PgliteClient
        const received = yield* Queue.unbounded<string>()
        yield* client.listen("appended").pipe(
          Stream.runForEach((payload) => Queue.offer(received, payload)),
          Effect.forkScoped
        )
        yield* awaitListening("appended")
        const notify = (payload: string) => client`SELECT pg_notify(${"appended"}, ${payload})`
        yield* client.withTransaction(Effect.zipRight(notify("rolled back"), Effect.fail(new Boom()))).pipe(
          Effect.ignore
        )
        yield* client.withTransaction(Effect.gen(function*() {
          yield* notify("committed")
          yield* Effect.sleep("20 millis")
          expect(yield* Queue.size(received)).toBe(0)
        }))
        expect(yield* Queue.take(received).pipe(Effect.timeout(patience))).toBe("committed")
        yield* Effect.sleep("20 millis")
        expect(yield* Queue.size(received)).toBe(0)
      }))

    it.effect("refuses a channel name it could not match back", () =>
      Effect.gen(function*() {
        const client = yield* PgliteClient.PgliteClient
        const error = yield* client.listen("a\"b").pipe(Stream.runDrain, Effect.flip)
        expect(error).toBeInstanceOf(SqlError)
      }))
  })
})

describe("PgliteClient with a data directory", () => {
  it.scoped("keeps its data across close and reopen", () =>
    Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "pglite-client-"))),
        (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
      )
      const withDatabase = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        Effect.provide(effect, PgliteClient.layer({ dataDir }))

      yield* withDatabase(Effect.zipRight(createLog("persisted_log"), log("persisted_log", "kept")))
      expect(yield* withDatabase(labels("persisted_log"))).toEqual(["kept"])
    }), 2 * startupTimeout)
})
