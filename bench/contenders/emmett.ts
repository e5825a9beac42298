/**
 * Emmett (`@event-driven-io/emmett-postgresql`), the main TypeScript event
 * store on PostgreSQL, in a database of its own (its tables have fixed names
 * in the default schema). Appends go through `appendToStream` with an exact
 * expected version, stream reads through `readStream`; the global log is read
 * with `readMessagesBatch`, the query under Emmett's consumers, without their
 * polling.
 */
import { dumbo } from "@event-driven-io/dumbo"
import type { Event } from "@event-driven-io/emmett"
import { getPostgreSQLEventStore, type ReadMessagesBatchResult, readMessagesBatch } from "@event-driven-io/emmett-postgresql"
import pg from "pg"
import * as Database from "../database.js"
import { installedVersion } from "../versions.js"
import type { ContenderFactory, Session } from "./Contender.js"

export const make: ContenderFactory = (database) => {
  const url = Database.databaseUrlFor(database)

  const open = async (poolSize: number): Promise<Session> => {
    const pool = new pg.Pool({ connectionString: url, max: poolSize, idleTimeoutMillis: 0, application_name: Database.applicationName })
    const store = getPostgreSQLEventStore(url, { connectionOptions: { pool } })
    await store.schema.migrate()
    const executor = dumbo({ connectionString: url, pool })
    return {
      append: async (streamId, events, expectedVersion) => {
        await store.appendToStream(
          streamId,
          events.map((event) => ({ type: event.type, data: event.data, metadata: event.metadata })),
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
      close: () => pool.end()
    }
  }

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
    cannotRun: (workload) =>
      workload.kind === "readAll" && workload.sampleMemory
        ? "Emmett's messages table has no index on the global position, so every page of a global read scans and " +
          "sorts the whole table: reading the log takes time in the square of its length (minutes for a million " +
          "events here); its rate on a smaller log is in the global-read row"
        : undefined,
    dispose: () => Database.dropDatabase(database)
  }
}
