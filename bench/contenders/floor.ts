/**
 * The floor: plain node-postgres writing and reading the store's own table
 * shape (the same migration, in a schema of its own) with no safety checks at
 * all — no expected-version check, no duplicate-id check, no validation, no
 * settled horizon. One statement per append that upserts the stream row and
 * inserts the events, like the store's; the same keyset pages for reads. What
 * is left is what PostgreSQL and the driver cost on this machine.
 */
import pg from "pg"
import { makeEventId } from "../../src/Validation.js"
import { databaseUrl } from "../config.js"
import * as Database from "../database.js"
import { installedVersion } from "../versions.js"
import type { ContenderFactory, Session } from "./Contender.js"

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

export const make: ContenderFactory = (schema) => {
  const appendText = `
    WITH stream AS (
      INSERT INTO ${schema}.streams (stream_id, category, version) VALUES ($1, $2, $3)
      ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = statement_timestamp()
    )
    INSERT INTO ${schema}.events (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata)
    SELECT e.id, $1, $4::bigint + e.n, $2, e.type, 1, e.data, e.metadata
    FROM unnest($5::uuid[], $6::text[], $7::jsonb[], $8::jsonb[]) WITH ORDINALITY AS e(id, type, data, metadata, n)
    RETURNING position`
  const streamPageText = `SELECT ${columns} FROM ${schema}.events
    WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3`
  const logPageText = `SELECT ${columns} FROM ${schema}.events
    WHERE position >= $1 ORDER BY position LIMIT $2`

  const open = async (poolSize: number): Promise<Session> => {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize, idleTimeoutMillis: 0, application_name: Database.applicationName })
    return {
      append: async (streamId, events, expectedVersion) => {
        const dash = streamId.indexOf("-")
        await pool.query(appendText, [
          streamId,
          dash < 0 ? streamId : streamId.slice(0, dash),
          expectedVersion + events.length,
          expectedVersion,
          events.map(() => makeEventId()),
          events.map((event) => event.type),
          events.map((event) => JSON.stringify(event.data)),
          events.map((event) => JSON.stringify(event.metadata))
        ])
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
      close: () => pool.end()
    }
  }

  return {
    info: {
      id: "floor",
      label: "pg floor",
      version: `pg ${installedVersion("pg")}`,
      description: "plain node-postgres on the store's table shape, no checks: the physical limit"
    },
    prepare: () => Database.createStoreSchema(schema),
    open,
    bulkLoad: (events) => Database.bulkLoad(schema, events),
    cannotRun: () => undefined,
    dispose: () => Database.dropSchema(schema)
  }
}
