/**
 * One contender's process: `tsx bench/worker.ts <contender> <namespace>`,
 * forked by run.ts. It prepares and seeds the contender's schema or database,
 * runs the workloads it is asked for, one at a time, and drops everything on
 * `dispose` or when the runner goes away.
 */
import type { Config } from "./config.js"
import type { Contender, ContenderFactory, Session } from "./contenders/Contender.js"
import * as Emmett from "./contenders/emmett.js"
import * as Floor from "./contenders/floor.js"
import * as Store from "./contenders/store.js"
import { type ContenderId, isRequest, type Reply, type Request } from "./protocol.js"
import * as Workloads from "./workloads.js"

const factories: Record<ContenderId, ContenderFactory> = {
  store: Store.make,
  candidate: Store.makeCandidate,
  emmett: Emmett.make,
  floor: Floor.make
}

const [id, namespace] = process.argv.slice(2)
if (id === undefined || !(id in factories) || namespace === undefined) {
  throw new Error(`usage: worker.ts <${Object.keys(factories).join("|")}> <schema or database name>`)
}
const contender: Contender = factories[id as ContenderId](namespace)
const state = Workloads.makeState()
let config: Config | undefined
let prepared = false

/**
 * The session of the run in progress, closed when the run ends: only one
 * contender holds connections at a time (three pools of 32 would exhaust
 * max_connections).
 */
let current: Session | undefined

const closeSession = async () => {
  const open = current
  current = undefined
  await open?.close()
}

const dispose = async () => {
  await closeSession()
  if (prepared) {
    prepared = false
    await contender.dispose()
  }
}

const handle = async (request: Request): Promise<Reply> => {
  switch (request.type) {
    case "prepare": {
      config = request.config
      const started = performance.now()
      await contender.prepare()
      prepared = true
      await Workloads.seed(contender, config, state)
      return {
        type: "prepared",
        requestId: request.requestId,
        info: contender.info,
        seedSeconds: (performance.now() - started) / 1000
      }
    }
    case "run": {
      if (config === undefined) throw new Error("run before prepare")
      const reason = contender.cannotRun(request.workload)
      if (reason !== undefined) return { type: "skipped", requestId: request.requestId, reason }
      current = await contender.open(Workloads.poolSize(request.workload))
      try {
        const metrics = await Workloads.run(current, request.workload, request.tag, config, state)
        return { type: "result", requestId: request.requestId, metrics }
      } finally {
        await closeSession()
      }
    }
    case "dispose":
      await dispose()
      return { type: "disposed", requestId: request.requestId }
  }
}

const send = (reply: Reply) => process.send?.(reply)

process.on("message", (message: unknown) => {
  if (!isRequest(message)) return
  handle(message).then(send, (error: unknown) =>
    send({
      type: "failed",
      requestId: message.requestId,
      message: error instanceof Error ? error.stack ?? error.message : String(error)
    }))
})

// Ctrl-C reaches the whole process group: the runner handles it and disconnects.
process.on("SIGINT", () => {})

// The runner went away (finished, crashed or interrupted): leave nothing behind.
process.on("disconnect", () => {
  dispose().finally(() => process.exit(0))
})
