/**
 * This store: `PostgresEventStore.layer({ schema })` over `PgClient.layer`
 * with a pool sized to the workload's concurrency, called the way an Effect
 * application calls it, one `runPromise` per operation.
 *
 * The same adapter runs a *candidate*: a copy of `src/` with a change to
 * measure (`--candidate=<dir>`, the directory holding that copy's `src/` and
 * `migrations/`), side by side with the store as it is.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import type { EventData } from "../../src/EventData.js"
import { databaseUrl } from "../config.js"
import * as Database from "../database.js"
import { candidateVariable } from "../protocol.js"
import { installedVersion, projectVersion } from "../versions.js"
import type { BenchEvent, ContenderFactory, Session } from "./Contender.js"

type StoreModules = readonly [typeof import("../../src/EventStore.js"), typeof import("../../src/postgres/index.js")]

const loadModules = async (root: URL): Promise<StoreModules> => {
  const eventStore: typeof import("../../src/EventStore.js") = await import(new URL("src/EventStore.ts", root).href)
  const postgres: typeof import("../../src/postgres/index.js") = await import(new URL("src/postgres/index.ts", root).href)
  return [eventStore, postgres]
}

const toEventData = (event: BenchEvent): EventData => ({
  eventType: event.type,
  data: event.data,
  metadata: event.metadata
})

const countChunks = <E>(stream: Stream.Stream<unknown, E>, onPage: (events: number) => void) =>
  Stream.runFold(Stream.chunks(stream), 0, (count, chunk) => {
    onPage(chunk.length)
    return count + chunk.length
  })

const makeFrom = (root: URL, info: { readonly id: "store" | "candidate"; readonly label: string; readonly description: string }): ContenderFactory =>
(schema) => {
  let modules: Promise<StoreModules> | undefined

  const open = async (poolSize: number): Promise<Session> => {
    const [{ EventStore }, { PostgresEventStore }] = await (modules ??= loadModules(root))
    const runtime = ManagedRuntime.make(
      PostgresEventStore.layer({ schema }).pipe(
        Layer.provide(PgClient.layer({
          url: Redacted.make(databaseUrl),
          maxConnections: poolSize,
          // Pools stay open between the runs of a workload, while the other contenders run.
          idleTimeout: "1 hour",
          applicationName: Database.applicationName
        }))
      )
    )
    const store = await runtime.runPromise(EventStore)
    return {
      append: (streamId, events, expectedVersion) =>
        runtime.runPromise(Effect.asVoid(store.append(streamId, events.map(toEventData), {
          expectedVersion: expectedVersion === 0 ? "no_stream" : expectedVersion
        }))),
      readStream: (streamId, pageSize) =>
        runtime.runPromise(countChunks(store.readStream(streamId, { batchSize: pageSize }), () => {})),
      readAll: (limit, pageSize, onPage) =>
        runtime.runPromise(countChunks(store.readAll({ limit, batchSize: pageSize }), onPage)),
      close: () => runtime.dispose()
    }
  }

  return {
    info: {
      ...info,
      version: `${projectVersion()} (effect ${installedVersion("effect")}, @effect/sql-pg ${installedVersion("@effect/sql-pg")})`
    },
    // The layer migrates its own schema when it starts.
    prepare: async () => {
      const session = await open(1)
      await session.close()
    },
    open,
    bulkLoad: (events) => Database.bulkLoad(schema, events),
    cannotRun: () => undefined,
    dispose: () => Database.dropSchema(schema)
  }
}

/** The store in this working tree. */
export const make: ContenderFactory = makeFrom(new URL("../../", import.meta.url), {
  id: "store",
  label: "this store",
  description: "effect-event-store: PostgresEventStore.layer over PgClient.layer (@effect/sql-pg, node-postgres)"
})

/** The store from the copy in `$BENCH_CANDIDATE` (a directory with `src/` and `migrations/`). */
export const makeCandidate: ContenderFactory = (schema) => {
  const directory = process.env[candidateVariable]
  if (directory === undefined) throw new Error(`Set ${candidateVariable} (run.ts --candidate=<dir>) to run the candidate`)
  const root = pathToFileURL(path.resolve(directory) + path.sep)
  return makeFrom(root, {
    id: "candidate",
    label: "candidate",
    description: `this store built from ${directory}`
  })(schema)
}
