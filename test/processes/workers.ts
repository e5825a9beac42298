/**
 * Projection workers as child processes (see `projection-worker.ts`): started
 * as scoped resources (SIGKILLed and awaited when the scope closes), watched
 * through the lines they print, and SIGKILLed on demand.
 *
 * The worker runs in the spawned Node process itself (`node --import tsx`),
 * not under the `tsx` command, which would run it in a grandchild that a
 * SIGKILL of its parent leaves running.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import type { LockKind } from "./readModel.js"

const projectRoot = fileURLToPath(new URL("../..", import.meta.url))
const workerScript = fileURLToPath(new URL("./projection-worker.ts", import.meta.url))

/** What a worker last said about its runner; `STARTING` until it said anything. */
export type WorkerState = "STARTING" | "STANDBY" | "ACTIVE" | "RESTARTING" | "FAILED"

const stateLine = /^(STANDBY|ACTIVE|RESTARTING|FAILED) (\d+)/
const handleLine = /^HANDLE (\d+)$/

/** Every worker not yet known to have exited, for `killAll`. */
const running = new Set<ChildProcess>()

/** SIGKILLs every worker still running: the safety net for a test that did not get to close its scope. */
export const killAll = (): void => {
  for (const child of running) child.kill("SIGKILL")
}

export class Worker {
  state: WorkerState = "STARTING"
  /** How many times it became active. */
  activations = 0
  /** The position of the last event it started to handle. */
  lastHandled: bigint | undefined = undefined
  /** Whether the test killed it. */
  killed = false
  exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined = undefined
  /** Lines that broke the protocol (a wrong pid, for instance). */
  readonly protocolErrors: Array<string> = []
  private stderr = ""
  private readonly lines: Array<string> = []
  private readonly listeners = new Set<() => void>()

  constructor(readonly name: string, private readonly child: ChildProcess) {
    running.add(child)
    const { stderr, stdout } = child
    if (stdout === null || stderr === null) throw new Error(`worker ${name}: spawn it with stdout and stderr piped`)
    readline.createInterface({ input: stdout }).on("line", (line) => this.onLine(line))
    stderr.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000)
    })
    child.on("exit", (code, signal) => {
      running.delete(child)
      this.exit = { code, signal }
      this.notify()
    })
    child.on("error", (error) => {
      this.stderr += `\n${error.message}`
      if (child.pid === undefined) {
        running.delete(child)
        this.exit = { code: null, signal: null }
        this.notify()
      }
    })
  }

  get pid(): number {
    return this.child.pid ?? -1
  }

  get alive(): boolean {
    return this.exit === undefined
  }

  private onLine(line: string): void {
    const handled = handleLine.exec(line)?.[1]
    if (handled !== undefined) {
      this.lastHandled = BigInt(handled)
      return
    }
    this.lines.push(line)
    if (this.lines.length > 40) this.lines.shift()
    const state = stateLine.exec(line)
    if (state) {
      if (Number(state[2]) !== this.pid) this.protocolErrors.push(`${this.name} printed another pid: ${line}`)
      this.state = state[1] as WorkerState
      if (this.state === "ACTIVE") this.activations++
      this.notify()
    }
  }

  private notify(): void {
    for (const listener of this.listeners) listener()
  }

  /** What the worker said last, for failure messages. */
  describe(): string {
    const exit = this.exit ? ` exited (code ${this.exit.code}, signal ${this.exit.signal})` : ""
    return `worker ${this.name} (pid ${this.pid}, ${this.state}${exit})\n` +
      `output (without HANDLE lines):\n  ${this.lines.join("\n  ")}\nstderr:\n${this.stderr}`
  }

  /**
   * Waits until the worker is in `state`, at most `timeout`; fails if it exits
   * first or the time runs out.
   */
  awaitState(state: WorkerState, timeout: Duration.DurationInput): Effect.Effect<void, Error> {
    return Effect.async<void, Error>((resume) => {
      const check = () => {
        if (this.state === state) {
          this.listeners.delete(check)
          resume(Effect.void)
        } else if (!this.alive) {
          this.listeners.delete(check)
          resume(Effect.fail(new Error(`${this.name} exited before it was ${state}: ${this.describe()}`)))
        }
      }
      this.listeners.add(check)
      check()
      return Effect.sync(() => this.listeners.delete(check))
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new Error(`${this.name} was not ${state} within ${Duration.format(timeout)}: ${this.describe()}`)
      })
    )
  }

  /** SIGKILL, and wait until the process is gone. */
  readonly kill: Effect.Effect<void> = Effect.async<void>((resume) => {
    const gone = () => {
      if (!this.alive) {
        this.listeners.delete(gone)
        resume(Effect.void)
      }
    }
    this.listeners.add(gone)
    if (this.alive) {
      this.killed = true
      this.child.kill("SIGKILL")
    }
    gone()
    return Effect.sync(() => this.listeners.delete(gone))
  })
}

/**
 * Starts a worker for the scope: SIGKILLed (if still running) when the scope
 * closes. `millisPerEvent` slows its handler down.
 */
export const start = (options: {
  readonly name: string
  readonly schema: string
  readonly lock: LockKind
  readonly databaseUrl: string
  readonly millisPerEvent: number
}) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new Worker(
        options.name,
        spawn(
          process.execPath,
          [
            "--import",
            "tsx",
            "--conditions=effect-event-store/source",
            workerScript,
            options.schema,
            options.lock,
            options.name,
            String(options.millisPerEvent)
          ],
          {
            cwd: projectRoot,
            env: { ...process.env, DATABASE_URL: options.databaseUrl },
            stdio: ["pipe", "pipe", "pipe"]
          }
        )
      )
    ),
    (worker) => worker.kill
  )
