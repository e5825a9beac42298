/**
 * One contender's process: `tsx bench/worker.ts <contender> <namespace>`,
 * forked by run.ts. It prepares and seeds the contender's schema or database,
 * runs the workloads it is asked for, one at a time, and drops everything on
 * `dispose` or when the runner goes away. Live workloads with the subscriber
 * in another process start that process (follower.ts) at their first run.
 */
import type { Config } from "./config.js"
import type { Contender, Session } from "./contenders/Contender.js"
import { factories, isContenderId } from "./contenders/index.js"
import { serve } from "./ipc.js"
import * as Live from "./live.js"
import { isRequest, type Reply, type Request } from "./protocol.js"
import * as Workloads from "./workloads.js"

const [id, namespace] = process.argv.slice(2)
if (id === undefined || !isContenderId(id) || namespace === undefined) {
  throw new Error(`usage: worker.ts <${Object.keys(factories).join("|")}> <schema or database name>`)
}
const state = Workloads.makeState(Live.followerProcess(id, namespace))

/** Made on `prepare`, which brings the run's settings. */
let contender: Contender | undefined
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
  state.followers.dispose()
  await closeSession()
  if (prepared) {
    prepared = false
    await contender?.dispose()
  }
}

const handle = async (request: Request): Promise<Reply> => {
  switch (request.type) {
    case "prepare": {
      config = request.config
      contender = factories[id](namespace, config)
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
      if (contender === undefined || config === undefined) throw new Error("run before prepare")
      const reason = contender.cannotRun(request.workload)
      if (reason !== undefined) return { type: "skipped", requestId: request.requestId, reason }
      const scaled = contender.scaleDown(request.workload)
      const workload = scaled?.workload ?? request.workload
      current = await contender.open(Workloads.poolSize(workload))
      try {
        const metrics = await Workloads.run(contender, current, workload, request.tag, config, state)
        return { type: "result", requestId: request.requestId, metrics, scaledDown: scaled?.reason }
      } finally {
        await closeSession()
      }
    }
    case "dispose":
      await dispose()
      return { type: "disposed", requestId: request.requestId }
  }
}

serve(isRequest, handle, (requestId, message): Reply => ({ type: "failed", requestId, message }))

// Ctrl-C reaches the whole process group: the runner handles it and disconnects.
process.on("SIGINT", () => {})

// The runner went away (finished, crashed or interrupted): leave nothing behind.
process.on("disconnect", () => {
  dispose().finally(() => process.exit(0))
})
