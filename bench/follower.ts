/**
 * The subscriber of the live workloads that run it in a process of its own:
 * `tsx bench/follower.ts <contender> <namespace>`, forked by a worker
 * (live.ts). It follows the contender's log on a session of its own and
 * reports when each event reached it, by the clock the worker reads too.
 */
import { now } from "./clock.js"
import type { Following, Session } from "./contenders/Contender.js"
import { factories, isContenderId } from "./contenders/index.js"
import { serve } from "./ipc.js"
import { makeDeliveries } from "./live.js"
import { type FollowerReply, type FollowerRequest, isFollowerRequest } from "./protocol.js"

const [id, namespace] = process.argv.slice(2)
if (id === undefined || !isContenderId(id) || namespace === undefined) {
  throw new Error(`usage: follower.ts <${Object.keys(factories).join("|")}> <schema or database name>`)
}

/** Both pools' connections: the store's sequence poller beside its reads. */
const poolSize = 2

let current: {
  readonly session: Session
  readonly following: Following
  readonly deliveries: ReturnType<typeof makeDeliveries>
} | undefined

const stop = async () => {
  const open = current
  current = undefined
  try {
    await open?.following.stop()
  } finally {
    await open?.session.close()
  }
}

const handle = async (request: FollowerRequest): Promise<FollowerReply> => {
  switch (request.type) {
    case "follow": {
      await stop()
      const session = await factories[id](namespace, request.config).open(poolSize)
      const deliveries = makeDeliveries()
      current = { session, deliveries, following: await session.follow(deliveries.record) }
      return { type: "following", requestId: request.requestId }
    }
    case "await": {
      if (current === undefined) throw new Error("await before follow")
      const times = await current.deliveries.delivered(request.eventIds, request.timeoutMs)
      return { type: "delivered", requestId: request.requestId, times }
    }
    case "stop":
      await stop()
      return { type: "stopped", requestId: request.requestId }
    case "clock":
      return { type: "clock", requestId: request.requestId, now: now() }
  }
}

serve(isFollowerRequest, handle, (requestId, message): FollowerReply => ({ type: "failed", requestId, message }))

// Ctrl-C reaches the whole process group: the runner handles it.
process.on("SIGINT", () => {})

process.on("disconnect", () => {
  stop().finally(() => process.exit(0))
})
