/**
 * Requests and replies over a child process's IPC channel, matched by
 * `requestId`: the runner talks to its workers this way, and a worker to its
 * follower process.
 */
import type { ChildProcess } from "node:child_process"

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never

export type Requester<Req extends { readonly requestId: number }, Rep> = (
  request: DistributiveOmit<Req, "requestId">
) => Promise<Rep>

/** Sends requests to `child`; a reply that fails `isReply` is ignored, and the child's exit fails what is pending. */
export const requester = <Req extends { readonly requestId: number }, Rep extends { readonly requestId: number }>(
  child: ChildProcess,
  isReply: (message: unknown) => message is Rep,
  name: string
): Requester<Req, Rep> => {
  const pending = new Map<number, { resolve: (reply: Rep) => void; reject: (error: Error) => void }>()
  let nextId = 1
  child.on("message", (message: unknown) => {
    if (!isReply(message)) return
    pending.get(message.requestId)?.resolve(message)
    pending.delete(message.requestId)
  })
  child.on("exit", (code, signal) => {
    for (const { reject } of pending.values()) reject(new Error(`The ${name} process exited (${signal ?? code})`))
    pending.clear()
  })
  return (request) =>
    new Promise((resolve, reject) => {
      const requestId = nextId++
      pending.set(requestId, { resolve, reject })
      child.send({ ...request, requestId })
    })
}

/**
 * Answers the requests that reach this process from its parent with `handle`;
 * a failure becomes the reply `failed`.
 */
export const serve = <Req extends { readonly requestId: number }, Rep>(
  isRequest: (message: unknown) => message is Req,
  handle: (request: Req) => Promise<Rep>,
  failed: (requestId: number, message: string) => Rep
): void => {
  const send = (reply: Rep) => process.send?.(reply)
  process.on("message", (message: unknown) => {
    if (!isRequest(message)) return
    handle(message).then(
      send,
      (error: unknown) =>
        send(failed(message.requestId, error instanceof Error ? error.stack ?? error.message : String(error)))
    )
  })
}
