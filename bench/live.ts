/**
 * The live-subscription workloads: writers append at a fixed pace while a
 * subscriber follows the log, in the same process or in a process of its own
 * (follower.ts), and each event's latency is its delivery time minus the time
 * its append returned, both read from the machine's shared clock (clock.ts).
 */
import { type ChildProcess, fork } from "node:child_process"
import { randomUUID } from "node:crypto"
import { estimateSkew, now } from "./clock.js"
import type { Config } from "./config.js"
import type { Session } from "./contenders/Contender.js"
import { sampleEvent } from "./events.js"
import { type Requester, requester } from "./ipc.js"
import { measure, toMetrics } from "./measure.js"
import {
  type ContenderId,
  type FollowerReply,
  type FollowerRequest,
  isFollowerReply,
  type Metrics,
  type Workload
} from "./protocol.js"

/**
 * How long the subscriber gets to deliver the last events once the appends
 * have stopped: far beyond any poll interval or back-off; what has not arrived
 * by then is counted as undelivered.
 */
const deliveryTimeoutMs = 10_000

/** A subscriber that notes when each event reached it. */
interface Follower {
  /** The delivery time of each of `eventIds` once all have arrived; null for those that had not after `timeoutMs`. */
  readonly delivered: (eventIds: ReadonlyArray<string>, timeoutMs: number) => Promise<ReadonlyArray<number | null>>
  readonly stop: () => Promise<void>
  /** The subscriber's clock minus this process's. */
  readonly clockSkewMs: number
  /** The subscriber's process when it is another one: its CPU is the client's too. */
  readonly pid: number | undefined
}

/** Delivery times by event id, and the wait for a set of them. */
export const makeDeliveries = () => {
  const times = new Map<string, number>()
  let waiter: { readonly ids: ReadonlySet<string>; remaining: number; readonly done: () => void } | undefined
  return {
    record: (eventId: string): void => {
      if (times.has(eventId)) return
      times.set(eventId, now())
      if (waiter !== undefined && waiter.ids.has(eventId) && --waiter.remaining === 0) waiter.done()
    },
    delivered: (eventIds: ReadonlyArray<string>, timeoutMs: number): Promise<ReadonlyArray<number | null>> =>
      new Promise((resolve) => {
        const result = () => eventIds.map((id) => times.get(id) ?? null)
        const remaining = eventIds.filter((id) => !times.has(id)).length
        if (remaining === 0) return resolve(result())
        const finish = () => {
          clearTimeout(timer)
          waiter = undefined
          resolve(result())
        }
        const timer = setTimeout(finish, timeoutMs)
        waiter = { ids: new Set(eventIds), remaining, done: finish }
      })
  }
}

/** The subscriber in this process, on the appenders' own session: appends wake it directly where the contender can. */
const followHere = async (session: Session): Promise<Follower> => {
  const deliveries = makeDeliveries()
  const following = await session.follow(deliveries.record)
  return { delivered: deliveries.delivered, stop: following.stop, clockSkewMs: 0, pid: undefined }
}

/** The follower process of one contender: started at its first use, reused for every run, ended by `dispose`. */
export interface FollowerProcess {
  readonly follow: (config: Config) => Promise<Follower>
  readonly dispose: () => void
}

const followerPath = new URL("./follower.ts", import.meta.url).pathname

const expectReply = <T extends FollowerReply["type"]>(
  reply: FollowerReply,
  type: T
): Extract<FollowerReply, { type: T }> => {
  if (reply.type === type) return reply as Extract<FollowerReply, { type: T }>
  throw new Error(`Follower: ${reply.type === "failed" ? reply.message : `unexpected ${reply.type}`}`)
}

export const followerProcess = (contender: ContenderId, namespace: string): FollowerProcess => {
  let child: { readonly process: ChildProcess; readonly request: Requester<FollowerRequest, FollowerReply> } | undefined
  const start = () => {
    // The worker's own flags: tsx, and --cpu-prof when profiling.
    const spawned = fork(followerPath, [contender, namespace], { execArgv: process.execArgv })
    return {
      process: spawned,
      request: requester<FollowerRequest, FollowerReply>(spawned, isFollowerReply, `${contender} follower`)
    }
  }
  return {
    follow: async (config) => {
      const { process: follower, request } = child ??= start()
      expectReply(await request({ type: "follow", config }), "following")
      const clockSkewMs = await estimateSkew(async () => expectReply(await request({ type: "clock" }), "clock").now)
      return {
        delivered: async (eventIds, timeoutMs) =>
          expectReply(await request({ type: "await", eventIds, timeoutMs }), "delivered").times,
        stop: async () => void expectReply(await request({ type: "stop" }), "stopped"),
        clockSkewMs,
        pid: follower.pid
      }
    },
    dispose: () => {
      if (child?.process.connected === true) child.process.disconnect()
      child = undefined
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * `workload.writers` writers, each on a stream of its own with the exact
 * expected version, share a schedule of `appendsPerSecond` appends of one
 * event each for `workload.seconds`; a writer that falls behind the schedule
 * appends at once. Every writer first appends once and the subscriber must
 * deliver those before the clock starts: the pools are open and the
 * subscription is live.
 */
export const run = async (
  session: Session,
  workload: Extract<Workload, { kind: "live" }>,
  tag: string,
  config: Config,
  followers: FollowerProcess
): Promise<Metrics> => {
  const rate = workload.appendsPerSecond
  if (rate === undefined || !(rate > 0)) throw new Error(`${workload.id}: no pace for the appends`)
  const follower = workload.placement === "same-process" ? await followHere(session) : await followers.follow(config)
  try {
    const writers = Array.from(
      { length: workload.writers },
      (_, writer) => ({ streamId: `Live-${tag}-${writer}`, version: 0 })
    )
    const appendOne = async (writer: { readonly streamId: string; version: number }) => {
      const event = { ...sampleEvent, id: randomUUID() }
      await session.append(writer.streamId, [event], writer.version)
      const committedAt = now()
      writer.version++
      return { eventId: event.id, committedAt }
    }
    const primed = await Promise.all(writers.map(appendOne))
    const primedAt = await follower.delivered(primed.map((append) => append.eventId), deliveryTimeoutMs)
    if (primedAt.includes(null)) throw new Error(`${workload.id}: the subscriber did not deliver the first appends`)

    const appends: Array<{ readonly eventId: string; readonly committedAt: number }> = []
    let appendSeconds = 0
    const measured = await measure(async () => {
      const interval = 1000 / rate
      const started = performance.now()
      const end = started + workload.seconds * 1000
      let slot = 0
      await Promise.all(writers.map(async (writer) => {
        for (;;) {
          const due = started + slot++ * interval
          if (due >= end) return
          const wait = due - performance.now()
          if (wait > 0) await sleep(wait)
          appends.push(await appendOne(writer))
        }
      }))
      appendSeconds = (performance.now() - started) / 1000
      return follower.delivered(appends.map((append) => append.eventId), deliveryTimeoutMs)
    }, follower.pid === undefined ? [] : [follower.pid])

    const latencies = appends.flatMap((append, i) => {
      const deliveredAt = measured.value[i]
      return deliveredAt === null || deliveredAt === undefined ? [] : [deliveredAt - append.committedAt]
    })
    return toMetrics(measured, {
      operations: appends.length,
      events: appends.length,
      latencies,
      seconds: appendSeconds,
      live: {
        targetPerSecond: rate,
        clockSkewMs: follower.clockSkewMs,
        undelivered: appends.length - latencies.length,
        subscriberCpuUsPerOp: follower.pid === undefined
          ? null
          : (measured.helperCpuMs * 1000) / Math.max(appends.length, 1)
      }
    })
  } finally {
    await follower.stop()
  }
}
