/**
 * A TCP proxy in front of PostgreSQL that can hold back the server's answer to
 * a statement: once a client sends a message containing `marker`, everything
 * the server sends back on that connection is kept until `release`. So a test
 * can interrupt a client while its statement has run on the server but its
 * result has not arrived, deterministically.
 */
import { Effect } from "effect"
import * as net from "node:net"

export interface HoldingProxy {
  /** The port to connect to instead of the server's. */
  readonly port: number
  /** Succeeds once the server has answered a statement with the marker (and the answer is held). */
  readonly held: Effect.Effect<void>
  /** Sends what was held, and stops holding. */
  readonly release: Effect.Effect<void>
}

export const make = (target: { readonly host: string; readonly port: number }, marker: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly proxy: HoldingProxy; readonly close: () => void }>((resume) => {
      const sockets = new Set<net.Socket>()
      const releases: Array<() => void> = []
      let signalHeld: () => void = () => {}
      const held = new Promise<void>((resolve) => {
        signalHeld = resolve
      })
      let released = false
      const server = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host)
        sockets.add(client).add(upstream)
        let holding = false
        const kept: Array<Buffer> = []
        releases.push(() => {
          holding = false
          for (const chunk of kept.splice(0)) client.write(chunk)
        })
        client.on("data", (chunk) => {
          if (!released && chunk.includes(marker)) holding = true
          upstream.write(chunk)
        })
        upstream.on("data", (chunk) => {
          if (holding) {
            kept.push(chunk)
            signalHeld()
          } else {
            client.write(chunk)
          }
        })
        const end = () => {
          client.destroy()
          upstream.destroy()
        }
        client.on("close", end).on("error", end)
        upstream.on("close", end).on("error", end)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({
          proxy: {
            port,
            held: Effect.promise(() => held),
            release: Effect.sync(() => {
              released = true
              for (const release of releases) release()
            })
          },
          close: () => {
            for (const socket of sockets) socket.destroy()
            server.close()
          }
        }))
      })
    }),
    ({ close }) => Effect.sync(close)
  ).pipe(Effect.map(({ proxy }) => proxy))
