/**
 * The floor: plain node-postgres writing and reading the store's own table
 * shape (the same migration, in a schema of its own) with no safety checks at
 * all — no expected-version check, no duplicate-id check, no validation, no
 * settled horizon. One statement per append that upserts the stream row and
 * inserts the events, like the store's; the same keyset pages for reads. What
 * is left is what PostgreSQL and the driver cost on this machine.
 *
 * Its live subscription is the naive loop: every poll interval (or at once
 * after an append of this process) read the rows above the last position
 * seen. Without a horizon it would skip an event whose append commits after a
 * later position's; it stops at the first hole instead, which is only sound
 * because no append in the benchmark fails (a rolled-back append would leave a
 * hole for ever). Its projection is the hand-written loop: read a page, then
 * one transaction with an upsert per event and the checkpoint's update.
 *
 * The batched floor is the same with its appends gathered: whatever queued
 * while the previous append statement was in flight goes as one statement (one
 * upsert of every stream row, one multi-row insert of every event), still with
 * no check. It is what hand-written code that batches can reach, the limit for
 * group commit.
 */
import pg from "pg"
import { makeEventId } from "../../src/EventData.js"
import { databaseUrl } from "../config.js"
import * as Database from "../database.js"
import * as ReadModel from "../readModel.js"
import { installedVersion } from "../versions.js"
import type { BenchEvent, ContenderFactory, Following, Session } from "./Contender.js"

interface EventRow {
  readonly position: string
  readonly event_id: string
  readonly stream_id: string
  readonly stream_version: string
  readonly event_type: string
  readonly schema_version: number
  readonly data: unknown
  readonly metadata: unknown
  readonly recorded_at: Date
}

const columns = "position, event_id, stream_id, stream_version, event_type, schema_version, data, metadata, recorded_at"

/** Resolves after `ms`, or at once when woken; a wake-up that comes while nobody sleeps is kept for the next sleep. */
const makeAlarm = (ms: number) => {
  let pending = false
  let ring: (() => void) | undefined
  return {
    wake: () => {
      pending = true
      ring?.()
    },
    sleep: () =>
      new Promise<void>((resolve) => {
        if (pending) {
          pending = false
          return resolve()
        }
        const timer = setTimeout(() => {
          ring = undefined
          resolve()
        }, ms)
        ring = () => {
          clearTimeout(timer)
          ring = undefined
          pending = false
          resolve()
        }
      })
  }
}

interface QueuedAppend {
  readonly streamId: string
  readonly category: string
  readonly version: number
  readonly events: ReadonlyArray<BenchEvent>
  readonly done: (error?: unknown) => void
}

const categoryOf = (streamId: string) => {
  const dash = streamId.indexOf("-")
  return dash < 0 ? streamId : streamId.slice(0, dash)
}

const makeWith = (batched: boolean): ContenderFactory => (schema, config) => {
  const appendText = `
    WITH stream AS (
      INSERT INTO ${schema}.streams (stream_id, category, version) VALUES ($1, $2, $3)
      ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = statement_timestamp()
    )
    INSERT INTO ${schema}.events (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata)
    SELECT e.id, $1, $4::bigint + e.n, $2, e.type, 1, e.data, e.metadata
    FROM unnest($5::uuid[], $6::text[], $7::jsonb[], $8::jsonb[]) WITH ORDINALITY AS e(id, type, data, metadata, n)
    RETURNING position`
  // Every append of a batch: the stream rows (one per stream, at its highest
  // version), then all the events in the order they queued.
  const batchText = `
    WITH e AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::jsonb[], $7::jsonb[])
        WITH ORDINALITY AS e(stream_id, category, stream_version, id, type, data, metadata, n)
    ), stream AS (
      INSERT INTO ${schema}.streams (stream_id, category, version)
      SELECT stream_id, min(category), max(stream_version) FROM e GROUP BY stream_id
      ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = statement_timestamp()
    )
    INSERT INTO ${schema}.events (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata)
    SELECT e.id, e.stream_id, e.stream_version, e.category, e.type, 1, e.data, e.metadata FROM e ORDER BY e.n
    RETURNING position`
  const streamPageText = `SELECT ${columns} FROM ${schema}.events
    WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3`
  const logPageText = `SELECT ${columns} FROM ${schema}.events
    WHERE position >= $1 ORDER BY position LIMIT $2`
  const rangeText = `SELECT ${columns} FROM ${schema}.events
    WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3`
  const headText = `SELECT coalesce(max(position), 0)::text AS head FROM ${schema}.events`
  const checkpointText =
    `UPDATE ${schema}.checkpoints SET position = $2, updated_at = statement_timestamp() WHERE name = $1`

  const open = async (poolSize: number): Promise<Session> => {
    const pool = new pg.Pool({
      connectionString: databaseUrl,
      max: poolSize,
      idleTimeoutMillis: 0,
      application_name: Database.applicationName
    })
    // The followers of this session, woken after each append of this process.
    const followers = new Set<() => void>()

    const follow = async (onEvent: (eventId: string) => void): Promise<Following> => {
      const { rows: [start] } = await pool.query<{ readonly head: string }>(headText)
      let cursor = BigInt(start?.head ?? "0")
      const alarm = makeAlarm(config.pollIntervalMs)
      followers.add(alarm.wake)
      let stopped = false
      const loop = (async () => {
        while (!stopped) {
          for (;;) {
            const { rows } = await pool.query<EventRow>(logPageText, [(cursor + 1n).toString(), config.pageSize])
            let delivered = 0
            for (const row of rows) {
              const position = BigInt(row.position)
              if (position !== cursor + 1n) break
              cursor = position
              delivered++
              onEvent(row.event_id)
            }
            if (rows.length < config.pageSize || delivered < rows.length) break
          }
          await alarm.sleep()
        }
      })()
      return {
        stop: async () => {
          stopped = true
          followers.delete(alarm.wake)
          alarm.wake()
          await loop
        }
      }
    }

    const readModel: Session["readModel"] = async ({ batchSize, name, tail }) => {
      const table = `${schema}.${Database.checked(name)}`
      await pool.query(ReadModel.createTableText(table))
      await pool.query(`INSERT INTO ${schema}.checkpoints (name, position) VALUES ($1, $2)`, [
        name,
        tail.after.toString()
      ])
      const upsertText = ReadModel.upsertText(table)
      return {
        catchUp: async () => {
          const client = await pool.connect()
          try {
            for (let cursor = tail.after; cursor < tail.head;) {
              const { rows } = await client.query<EventRow>(rangeText, [
                cursor.toString(),
                tail.head.toString(),
                batchSize
              ])
              const last = rows[rows.length - 1]
              if (last === undefined) throw new Error(`No events after ${cursor}, below the head ${tail.head}`)
              await client.query("BEGIN")
              for (const row of rows) await client.query(upsertText, [row.stream_id, row.position])
              await client.query(checkpointText, [name, last.position])
              await client.query("COMMIT")
              cursor = BigInt(last.position)
            }
          } finally {
            client.release()
          }
        },
        appliedEvents: async () =>
          Number((await pool.query<{ readonly events: string }>(ReadModel.appliedEventsText(table))).rows[0]?.events),
        drop: async () => {
          await pool.query(ReadModel.dropTableText(table))
          await pool.query(`DELETE FROM ${schema}.checkpoints WHERE name = $1`, [name])
        }
      }
    }

    // The batched floor's appends: one statement in flight at a time; what
    // queues meanwhile goes in the next one.
    let queue: Array<QueuedAppend> = []
    let inFlight = false
    const sendQueued = (): void => {
      if (inFlight || queue.length === 0) return
      inFlight = true
      const batch = queue
      queue = []
      const rows = batch.flatMap((append) =>
        append.events.map((event, i) => ({ append, event, version: append.version + i + 1 }))
      )
      pool.query(batchText, [
        rows.map((row) => row.append.streamId),
        rows.map((row) => row.append.category),
        rows.map((row) => row.version),
        rows.map((row) => row.event.id ?? makeEventId()),
        rows.map((row) => row.event.type),
        rows.map((row) => JSON.stringify(row.event.data)),
        rows.map((row) => JSON.stringify(row.event.metadata))
      ]).then(
        () => batch.forEach((append) => append.done()),
        (error: unknown) => batch.forEach((append) => append.done(error))
      ).finally(() => {
        inFlight = false
        for (const wake of followers) wake()
        sendQueued()
      })
    }
    const appendBatched = (streamId: string, events: ReadonlyArray<BenchEvent>, expectedVersion: number) =>
      new Promise<void>((resolve, reject) => {
        queue.push({
          streamId,
          category: categoryOf(streamId),
          version: expectedVersion,
          events,
          done: (error) => error === undefined ? resolve() : reject(error)
        })
        sendQueued()
      })

    return {
      append: batched ? appendBatched : async (streamId, events, expectedVersion) => {
        await pool.query(appendText, [
          streamId,
          categoryOf(streamId),
          expectedVersion + events.length,
          expectedVersion,
          events.map((event) => event.id ?? makeEventId()),
          events.map((event) => event.type),
          events.map((event) => JSON.stringify(event.data)),
          events.map((event) => JSON.stringify(event.metadata))
        ])
        for (const wake of followers) wake()
      },
      readStream: async (streamId, pageSize) => {
        let count = 0
        for (let from = 1;;) {
          const { rows } = await pool.query<EventRow>(streamPageText, [streamId, from, pageSize])
          count += rows.length
          const last = rows[rows.length - 1]
          if (last === undefined || rows.length < pageSize) return count
          from = Number(last.stream_version) + 1
        }
      },
      readAll: async (limit, pageSize, onPage) => {
        let count = 0
        for (let from = 0n; count < limit;) {
          const size = Math.min(pageSize, limit - count)
          const { rows } = await pool.query<EventRow>(logPageText, [from.toString(), size])
          count += rows.length
          onPage(rows.length)
          const last = rows[rows.length - 1]
          if (last === undefined || rows.length < size) break
          from = BigInt(last.position) + 1n
        }
        return count
      },
      follow,
      readModel,
      close: () => pool.end()
    }
  }

  return {
    info: batched
      ? {
        id: "floor-batched",
        label: "pg floor, batched",
        version: `pg ${installedVersion("pg")}`,
        description:
          "the pg floor with concurrent appends gathered into one statement while one is in flight: the limit for batching"
      }
      : {
        id: "floor",
        label: "pg floor",
        version: `pg ${installedVersion("pg")}`,
        description: "plain node-postgres on the store's table shape, no checks: the physical limit"
      },
    prepare: () => Database.createStoreSchema(schema),
    open,
    bulkLoad: (events) => Database.bulkLoad(schema, events),
    logTail: (events) => Database.logTail(schema, events),
    cannotRun: () => undefined,
    scaleDown: () => undefined,
    dispose: () => Database.dropSchema(schema)
  }
}

/** The pg floor: one statement per append. */
export const make: ContenderFactory = makeWith(false)

/** The pg floor with its concurrent appends batched. */
export const makeBatched: ContenderFactory = makeWith(true)
