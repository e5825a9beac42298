/**
 * Administration of the benchmark's PostgreSQL objects with plain node-postgres:
 * fresh schemas and databases, the store's table shape for the floor, bulk
 * loads, and checkpoints between workloads.
 */
import * as fs from "node:fs"
import pg from "pg"
import { databaseUrl } from "./config.js"
import type { LogTail } from "./contenders/Contender.js"
import { sampleEvent } from "./events.js"

/** The application name of every contender's connections: how their backends are found for CPU accounting. */
export const applicationName = "effect-event-store bench"

/** Runs `f` on one short-lived connection to `url`. */
export const withClient = async <A>(f: (client: pg.Client) => Promise<A>, url = databaseUrl): Promise<A> => {
  const client = new pg.Client({ connectionString: url, application_name: `${applicationName} admin` })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/** The URL of another database on the same server. */
export const databaseUrlFor = (database: string): string => {
  const url = new URL(databaseUrl)
  url.pathname = `/${database}`
  return url.toString()
}

const identifier = /^[a-z_][a-z0-9_]{0,62}$/

/** `name` if it is a plain lower-case SQL identifier; throws otherwise. */
export const checked = (name: string): string => {
  if (!identifier.test(name)) throw new Error(`Not a plain identifier: ${name}`)
  return name
}

export const dropSchema = (schema: string): Promise<void> =>
  withClient(async (client) => {
    await client.query(`DROP SCHEMA IF EXISTS ${checked(schema)} CASCADE`)
  })

export const createDatabase = (database: string): Promise<void> =>
  withClient(async (client) => {
    await client.query(`CREATE DATABASE ${checked(database)}`)
  })

export const dropDatabase = (database: string): Promise<void> =>
  withClient(async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${checked(database)} WITH (FORCE)`)
  })

const migrationsDirectory = new URL("../migrations/", import.meta.url)

/**
 * Creates `schema` with the store's own tables: every migration file, in
 * order, run by hand (as docs/backends.md describes). The floor writes the
 * same table shape, indexes and triggers included.
 */
export const createStoreSchema = (schema: string): Promise<void> =>
  withClient(async (client) => {
    const files = fs.readdirSync(migrationsDirectory).filter((file) => /^\d{4}_\w+\.sql$/.test(file)).sort()
    await client.query(`CREATE SCHEMA ${checked(schema)}; SET search_path TO ${schema}`)
    for (const file of files) {
      await client.query(fs.readFileSync(new URL(file, migrationsDirectory), "utf8"))
    }
  })

const bulkChunk = 100_000
const eventsPerBulkStream = 100

/**
 * Appends `events` events in streams of 100 (`Bulk-1`, `Bulk-2`, …) to the
 * store's tables in `schema` with `INSERT … SELECT`, in chunks of 100,000:
 * the same rows appends would write, in a fraction of the time. Positions come
 * from the table's own default, as for an append.
 */
export const bulkLoad = (schema: string, events: number): Promise<void> =>
  withClient(async (client) => {
    const s = checked(schema)
    const data = JSON.stringify(sampleEvent.data)
    const metadata = JSON.stringify(sampleEvent.metadata)
    for (let first = 0; first < events; first += bulkChunk) {
      const last = Math.min(first + bulkChunk, events) - 1
      await client.query(
        `INSERT INTO ${s}.streams (stream_id, category, version)
         SELECT 'Bulk-' || s, 'Bulk', ${eventsPerBulkStream}
         FROM generate_series($1::bigint / ${eventsPerBulkStream}, $2::bigint / ${eventsPerBulkStream}) s
         ON CONFLICT (stream_id) DO NOTHING`,
        [first, last]
      )
      await client.query(
        `INSERT INTO ${s}.events (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata)
         SELECT lpad(to_hex(g), 32, '0')::uuid, 'Bulk-' || (g / ${eventsPerBulkStream}), g % ${eventsPerBulkStream} + 1,
                'Bulk', $3, 1, $4::jsonb, $5::jsonb
         FROM generate_series($1::bigint, $2::bigint) g
         ORDER BY g`,
        [first, last, sampleEvent.type, data, metadata]
      )
    }
    await client.query(`VACUUM ANALYZE ${s}.events`)
    await client.query(`VACUUM ANALYZE ${s}.streams`)
  })

/**
 * Where the last `events` events of the store-shaped log in `schema` lie (the
 * store's and the floor's): the position before them and the head. No
 * appends run while this is read.
 */
export const logTail = (schema: string, events: number): Promise<LogTail> =>
  withClient(async (client) => {
    const s = checked(schema)
    const { rows } = await client.query<{ readonly head: string; readonly after: string | null }>(
      `SELECT (SELECT coalesce(max(position), 0) FROM ${s}.events)::text AS head,
              (SELECT position FROM ${s}.events ORDER BY position DESC OFFSET $1 LIMIT 1)::text AS after`,
      [events]
    )
    const row = rows[0]
    if (row?.after === null || row?.after === undefined) {
      throw new Error(`The log in ${schema} holds fewer than ${events + 1} events`)
    }
    return { after: BigInt(row.after), head: BigInt(row.head), events }
  })

/** Writes dirty pages out now, so that no checkpoint started by an earlier workload lands in the next one. */
export const checkpoint = (): Promise<void> =>
  withClient(async (client) => {
    await client.query("CHECKPOINT")
  })

export interface ServerInfo {
  readonly version: string
  readonly settings: Readonly<Record<string, string>>
}

const reportedSettings = [
  "shared_buffers",
  "synchronous_commit",
  "fsync",
  "wal_level",
  "max_connections",
  "work_mem",
  "effective_cache_size",
  "max_wal_size",
  "checkpoint_timeout",
  "wal_buffers",
  "commit_delay",
  "jit"
]

export const serverInfo = (): Promise<ServerInfo> =>
  withClient(async (client) => {
    const version = await client.query<{ server_version: string }>("SHOW server_version")
    const settings = await client.query<{ name: string; setting: string }>(
      `SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name = ANY($1) ORDER BY name`,
      [reportedSettings]
    )
    return {
      version: version.rows[0]?.server_version ?? "unknown",
      settings: Object.fromEntries(settings.rows.map((row) => [row.name, row.setting]))
    }
  })

/** The process ids of the PostgreSQL backends serving the contenders' pools right now. */
export const contenderBackends = (): Promise<ReadonlyArray<number>> =>
  withClient(async (client) => {
    const { rows } = await client.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
      [applicationName]
    )
    return rows.map((row) => row.pid)
  })
