/**
 * Emmett (`@event-driven-io/emmett-postgresql`), the main TypeScript event
 * store on PostgreSQL, in a database of its own (its tables have fixed names
 * in the default schema). Appends go through `appendToStream` with an exact
 * expected version, stream reads through `readStream`; the global log is read
 * with `readMessagesBatch`, the query under Emmett's consumers, without their
 * polling. Live subscriptions are a reactor of `postgreSQLEventStoreConsumer`,
 * the projection a `postgreSQLProjection` run by the same consumer's projector
 * (each batch in one transaction with its checkpoint), both polling at the
 * store's interval instead of Emmett's default 50 ms.
 */
import { dumbo, sql } from "@event-driven-io/dumbo"
import type { Event } from "@event-driven-io/emmett"
import {
  getPostgreSQLEventStore,
  postgreSQLEventStoreConsumer,
  postgreSQLProjection,
  readMessagesBatch,
  type ReadMessagesBatchResult
} from "@event-driven-io/emmett-postgresql"
import pg from "pg"
import * as Database from "../database.js"
import { installedVersion } from "../versions.js"
import type { ContenderFactory, LogTail, Session } from "./Contender.js"

/** The smaller catch-up Emmett runs instead of the configured one (see `scaleDown`). */
const projectionEventsCap = 5_000

export const make: ContenderFactory = (database, config) => {
  const url = Database.databaseUrlFor(database)
  // Emmett's default page (100 messages); the store's poll interval instead of Emmett's 50 ms. Whenever a
  // page comes back short, Emmett's puller doubles its wait (up to 1 s); a full page resets it to this.
  const pulling = { pullingFrequencyInMs: config.pollIntervalMs }

  const open = async (poolSize: number): Promise<Session> => {
    const pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      idleTimeoutMillis: 0,
      application_name: Database.applicationName
    })
    const store = getPostgreSQLEventStore(url, { connectionOptions: { pool } })
    await store.schema.migrate()
    const executor = dumbo({ connectionString: url, pool })
    const head = async () => {
      const { rows } = await pool.query<{ readonly head: string }>(
        "SELECT coalesce(max(global_position), 0)::text AS head FROM emt_messages"
      )
      return BigInt(rows[0]?.head ?? "0")
    }

    const follow: Session["follow"] = async (onEvent) => {
      const consumer = postgreSQLEventStoreConsumer({ connectionString: url, pool: executor, pulling })
      consumer.reactor({
        processorId: `bench-live-${Date.now().toString(36)}`,
        // Emmett's own "END" starts from the oldest message in 0.42 (its query sorts ascending).
        startFrom: { lastCheckpoint: await head() },
        eachMessage: async (message) => {
          onEvent(message.metadata.messageId)
        }
      })
      const running = consumer.start()
      return {
        stop: async () => {
          await consumer.stop()
          await running
        }
      }
    }

    const readModel: Session["readModel"] = async ({ batchSize, name, tail }) => {
      const table = Database.checked(name)
      await pool.query(
        `CREATE TABLE ${table} (stream_id text PRIMARY KEY, events bigint NOT NULL, last_position bigint NOT NULL)`
      )
      const projection = postgreSQLProjection<Event>({
        name,
        canHandle: ["OrderLineAdded"],
        // Emmett's projections write SQL with the values inlined (pg-format's %L).
        handle: async (events, context) => {
          for (const event of events) {
            await context.execute.command(sql(
              `INSERT INTO ${table} AS t (stream_id, events, last_position) VALUES (%L, 1, %L)
               ON CONFLICT (stream_id) DO UPDATE SET events = t.events + 1, last_position = EXCLUDED.last_position`,
              event.metadata.streamName,
              event.metadata.globalPosition.toString()
            ))
          }
        }
      })
      return {
        catchUp: async () => {
          const consumer = postgreSQLEventStoreConsumer({
            connectionString: url,
            pool: executor,
            pulling: { ...pulling, batchSize },
            // Ends once a page comes back short: the consumer has reached the head.
            stopWhen: { noMessagesLeft: true }
          })
          consumer.projector({ projection, startFrom: { lastCheckpoint: tail.after } })
          await consumer.start()
        },
        appliedEvents: async () =>
          Number(
            (await pool.query<{ readonly events: string }>(
              `SELECT coalesce(sum(events), 0)::text AS events FROM ${table}`
            )).rows[0]?.events
          ),
        drop: async () => {
          await pool.query(`DROP TABLE IF EXISTS ${table}`)
        }
      }
    }

    return {
      append: async (streamId, events, expectedVersion) => {
        await store.appendToStream(
          streamId,
          events.map((event) => ({
            type: event.type,
            data: event.data,
            metadata: event.id === undefined ? event.metadata : { ...event.metadata, messageId: event.id }
          })),
          { expectedStreamVersion: BigInt(expectedVersion) }
        )
      },
      readStream: async (streamId) => {
        const { events } = await store.readStream(streamId)
        return events.length
      },
      readAll: async (limit, pageSize, onPage) => {
        let count = 0
        let after: bigint | undefined = undefined
        while (count < limit) {
          const batchSize = Math.min(pageSize, limit - count)
          const page: ReadMessagesBatchResult<Event> = await readMessagesBatch(
            executor.execute,
            after === undefined ? { from: 0n, batchSize } : { after, batchSize }
          )
          count += page.messages.length
          onPage(page.messages.length)
          if (!page.areMessagesLeft) break
          after = page.currentGlobalPosition
        }
        return count
      },
      follow,
      readModel,
      close: () => pool.end()
    }
  }

  const logTail = (events: number): Promise<LogTail> =>
    Database.withClient(async (client) => {
      const { rows } = await client.query<{ readonly head: string; readonly after: string | null }>(
        `SELECT (SELECT coalesce(max(global_position), 0) FROM emt_messages)::text AS head,
                (SELECT global_position FROM emt_messages ORDER BY global_position DESC OFFSET $1 LIMIT 1)::text AS after`,
        [events]
      )
      const row = rows[0]
      if (row?.after === null || row?.after === undefined) {
        throw new Error(`Emmett's log holds fewer than ${events + 1} events`)
      }
      return { after: BigInt(row.after), head: BigInt(row.head), events }
    }, url)

  return {
    info: {
      id: "emmett",
      label: "Emmett",
      version: `@event-driven-io/emmett-postgresql ${installedVersion("@event-driven-io/emmett-postgresql")}`,
      description: "Emmett's PostgreSQL event store over its own node-postgres pool, in a database of its own"
    },
    prepare: () => Database.createDatabase(database),
    open,
    bulkLoad: undefined,
    logTail,
    cannotRun: (workload) => {
      if (workload.kind === "readAll" && workload.sampleMemory) {
        return "Emmett's messages table has no index on the global position, so every page of a global read scans and " +
          "sorts the whole table: reading the log takes time in the square of its length (minutes for a million " +
          "events here); its rate on a smaller log is in the global-read row"
      }
      if (workload.kind === "live" && workload.placement === "same-process") {
        return "Emmett's consumers have no wake-up within the process: they poll the same way wherever the appends " +
          "come from, so the other-process row applies"
      }
      return undefined
    },
    scaleDown: (workload) =>
      workload.kind === "projection" && workload.events > projectionEventsCap
        ? {
          workload: { ...workload, events: projectionEventsCap },
          reason: `the last ${projectionEventsCap.toLocaleString("en")} events only: every page Emmett's consumer ` +
            "reads scans and sorts its whole messages table (no index on the global position), so its rate depends " +
            "on the size of the table, not on how many events it catches up over, and the full catch-up would take minutes per run"
        }
        : undefined,
    dispose: () => Database.dropDatabase(database)
  }
}
