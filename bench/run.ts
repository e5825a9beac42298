/**
 * The benchmark runner: `npm run bench` (the full comparison) or
 * `npm run bench:quick`. Options, after `--`:
 *
 *   --quick                 the quick configuration
 *   --runs=N                measured runs per figure
 *   --contenders=store,floor   only these contenders (store, store-batch, emmett, floor, floor-batched; candidate
 *                           with --candidate; store-batch runs the projection workload only)
 *   --candidate=<dir>       also run this store from a copy of the repository in <dir> (its src/ and
 *                           migrations/): a change to src/ measured side by side with the store as it is
 *   --workloads=append-1-c8,read-all   only these workloads (ids in bench/plan.ts)
 *   --cpu-prof              write V8 CPU profiles per contender to bench/results/profiles/<contender>/
 *                           (one per thread; the largest is the main thread: see bench/profile.ts)
 *
 * Each contender runs in a worker process of its own, in a fresh schema or
 * database that is dropped at the end. For every workload each contender
 * first runs once unrecorded (warm-up), then the measured runs follow,
 * contenders taking turns in a rotating order. The live workloads append at
 * half the store's maximal rate, taken from this run's append workloads (or a
 * calibration run when those are not selected). Benchmarks assert no timings.
 *
 * The results go to bench/results/<time>.json; a complete run (no option but
 * --quick) also to latest(-quick).json and latest(-quick).md. See
 * docs/benchmarks.md.
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process"
import * as fs from "node:fs"
import { parseArgs } from "node:util"
import { type Config, configs } from "./config.js"
import * as Database from "./database.js"
import { type Requester, requester } from "./ipc.js"
import { machineInfo } from "./machine.js"
import { plan, type PlannedWorkload, withPace } from "./plan.js"
import {
  candidateVariable,
  type ContenderId,
  type ContenderInfo,
  isReply,
  type Metrics,
  type Reply,
  type Request,
  type Workload
} from "./protocol.js"
import {
  type BenchResults,
  contenderOrder,
  type ContenderOutcome,
  renderMarkdownReport,
  renderTerminal,
  summarize,
  type WorkloadResult
} from "./report.js"
import { median } from "./stats.js"

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    contenders: { type: "string" },
    workloads: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    candidate: { type: "string" }
  }
})

const fail = (message: string): never => {
  console.error(message)
  process.exit(2)
}

const baseConfig = configs[args.quick ? "quick" : "full"]
const runs = args.runs === undefined ? baseConfig.runs : Number(args.runs)
if (!Number.isSafeInteger(runs) || runs < 1) fail(`--runs must be a positive integer, not ${args.runs}`)
const config: Config = { ...baseConfig, runs }

const isContenderId = (id: string): id is ContenderId => (contenderOrder as ReadonlyArray<string>).includes(id)
const selectedContenders = (args.contenders?.split(",") ?? contenderOrder).filter((id) => {
  if (!isContenderId(id)) return fail(`Unknown contender "${id}": use ${contenderOrder.join(", ")}`)
  if (id === "candidate" && args.candidate === undefined) {
    if (args.contenders !== undefined) fail("The candidate needs --candidate=<dir>")
    return false
  }
  return true
}) as ReadonlyArray<ContenderId>
if (args.candidate !== undefined && !selectedContenders.includes("candidate")) {
  fail("--candidate given, but --contenders leaves the candidate out")
}

const workloadIds = plan(config).map((planned) => planned.workload.id)
const selectedWorkloads = args.workloads?.split(",")
for (const id of selectedWorkloads ?? []) {
  if (!workloadIds.includes(id)) fail(`Unknown workload "${id}": use ${workloadIds.join(", ")}`)
}

const resultsDirectory = new URL("./results/", import.meta.url)
const workerPath = new URL("./worker.ts", import.meta.url).pathname

/** Contenders that the issue names but that do not run here, and why. */
const notRun: Record<string, string> = {
  "@codeforbreakfast/eventsourcing-store-postgres": "its only published version (0.6.14) depends on " +
    "\"@codeforbreakfast/eventsourcing-store\": \"workspace:*\", which npm cannot install (EUNSUPPORTEDPROTOCOL); it also " +
    "pins @effect/sql-pg 0.49 and wants @effect/platform ^0.90–0.93, a second Effect platform beside our 0.97"
}

// --- workers -------------------------------------------------------------------

interface Worker {
  readonly id: ContenderId
  readonly namespace: string
  readonly request: Requester<Request, Reply>
  readonly process: ChildProcess
}

const spawnWorker = (id: ContenderId): Worker => {
  const namespace = `bench_${id.replaceAll("-", "_")}_${Date.now().toString(36)}${
    Math.floor(Math.random() * 1e6).toString(36)
  }`
  const profile = args["cpu-prof"]
    ? ["--cpu-prof", `--cpu-prof-dir=${new URL(`./profiles/${id}/`, resultsDirectory).pathname}`]
    : []
  const child = fork(workerPath, [id, namespace], {
    execArgv: ["--import", "tsx", "--expose-gc", ...profile],
    env: args.candidate === undefined ? process.env : { ...process.env, [candidateVariable]: args.candidate }
  })
  return { id, namespace, process: child, request: requester<Request, Reply>(child, isReply, `${id} worker`) }
}

const expect = <T extends Reply["type"]>(reply: Reply, type: T, what: string): Extract<Reply, { type: T }> => {
  if (reply.type === type) return reply as Extract<Reply, { type: T }>
  throw new Error(`${what}: ${reply.type === "failed" ? reply.message : `unexpected ${reply.type}`}`)
}

/** Stops every worker (which drops its schema or database), then drops whatever a crashed one left. */
const shutdown = async (workers: ReadonlyArray<Worker>) => {
  await Promise.all(workers.map(async (worker) => {
    if (worker.process.connected) {
      await Promise.race([
        worker.request({ type: "dispose" }).catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 30_000).unref())
      ])
      worker.process.disconnect()
    }
  }))
  for (const worker of workers) {
    await (worker.id === "emmett" ? Database.dropDatabase(worker.namespace) : Database.dropSchema(worker.namespace))
      .catch((error: unknown) => console.error(`Could not drop ${worker.namespace}: ${String(error)}`))
  }
}

// --- the run -------------------------------------------------------------------

/** The unrecorded warm-up: a shorter version of the workload. */
const warmupOf = (workload: Workload): Workload => {
  switch (workload.kind) {
    case "append":
      return { ...workload, seconds: config.warmupSeconds }
    case "readStream":
      return { ...workload, repeats: 1 }
    case "readAll":
      return { ...workload, events: Math.min(workload.events, config.readAllEvents) }
    case "live":
      return { ...workload, seconds: config.warmupSeconds }
    case "projection":
      return { ...workload, events: Math.min(workload.events, config.projectionEvents / 10) }
  }
}

const runsOf = (workload: Workload): number => {
  switch (workload.kind) {
    case "readAll":
      return workload.sampleMemory ? config.memoryRuns : config.runs
    case "projection":
      return config.projectionRuns
    default:
      return config.runs
  }
}

const headline = (metrics: Metrics, planned: PlannedWorkload): string => {
  if (planned.workload.kind === "live") {
    return `p50 ${metrics.p50Ms?.toFixed(1)} ms, p99 ${metrics.p99Ms?.toFixed(1)} ms at ${
      Math.round(metrics.operationsPerSecond)
    } appends/s`
  }
  const spec = planned.figures[0]
  const value = spec?.figure === "operationsPerSecond" ? metrics.operationsPerSecond : metrics.eventsPerSecond
  return `${Math.round(value).toLocaleString("en")} ${spec?.label ?? ""}`
}

/** The workloads whose rate the live workloads' pace is half of: single events, a stream per writer. */
const setsPace = (workload: Workload): workload is Extract<Workload, { kind: "append" }> =>
  workload.kind === "append" && workload.eventsPerAppend === 1 && workload.target === "own"

/**
 * Half the store's maximal append rate: the highest median of its single-event
 * append workloads in this run or, when none of them ran, of a calibration
 * run of the one with the most writers.
 */
const livePace = async (workers: ReadonlyArray<Worker>, done: ReadonlyArray<WorkloadResult>): Promise<number> => {
  const pacer = workers.find((worker) => worker.id === "store") ?? workers[0]
  if (pacer === undefined) throw new Error("No contender to take the pace from")
  const rates = done.filter(({ planned }) => setsPace(planned.workload))
    .map(({ outcomes }) => median(outcomes[pacer.id]?.runs.map((run) => run.operationsPerSecond) ?? []))
    .filter((rate): rate is number => rate !== null)
  if (rates.length > 0) return Math.max(...rates) / 2
  const [calibration] = plan(config).map(({ workload }) => workload).filter(setsPace)
    .sort((a, b) => b.concurrency - a.concurrency)
  if (calibration === undefined) throw new Error("No append workload to take the pace from")
  const reply = await pacer.request({ type: "run", workload: calibration, tag: "pace" })
  const { metrics } = expect(reply, "result", `${pacer.id}, calibration of the live workloads' pace`)
  console.log(`  pace: ${pacer.id} ${Math.round(metrics.operationsPerSecond)} appends/s in ${calibration.id}`)
  return metrics.operationsPerSecond / 2
}

const runWorkload = async (workers: ReadonlyArray<Worker>, planned: PlannedWorkload): Promise<WorkloadResult> => {
  const { workload } = planned
  const outcomes: Partial<Record<ContenderId, ContenderOutcome>> = {}
  await Database.checkpoint()
  for (const worker of workers) {
    const reply = await worker.request({ type: "run", workload: warmupOf(workload), tag: `${workload.id}-w` })
    if (reply.type === "skipped") {
      outcomes[worker.id] = { runs: [], skipped: reply.reason, scaledDown: undefined }
    } else {
      const { scaledDown } = expect(reply, "result", `${worker.id}, warm-up of ${workload.id}`)
      outcomes[worker.id] = { runs: [], skipped: undefined, scaledDown }
    }
  }
  const runs = runsOf(workload)
  for (let run = 0; run < runs; run++) {
    // Rotate who goes first, so that no contender always runs right after the same other one.
    const order = workers.map((_, i) => workers[(i + run) % workers.length] as Worker)
    const line: Array<string> = []
    for (const worker of order) {
      const outcome = outcomes[worker.id]
      if (outcome === undefined || outcome.skipped !== undefined) continue
      const reply = await worker.request({ type: "run", workload, tag: `${workload.id}-r${run}` })
      const { metrics } = expect(reply, "result", `${worker.id}, ${workload.id} run ${run + 1}`)
      outcome.runs.push(metrics)
      line.push(`${worker.id} ${headline(metrics, planned)}`)
    }
    console.log(`  ${planned.label} · run ${run + 1}/${runs} · ${line.join(" · ")}`)
  }
  return { planned, outcomes }
}

/**
 * Writes the timestamped JSON; a complete comparison (no --contenders,
 * --workloads, --runs or --candidate) also becomes latest(-quick).json and .md.
 */
const write = (results: BenchResults) => {
  fs.mkdirSync(resultsDirectory, { recursive: true })
  const json = JSON.stringify(summarize(results), null, 2) + "\n"
  const stamp = results.startedAt.replaceAll(":", "-").replace(/\.\d+Z$/, "Z")
  const complete = args.contenders === undefined && args.workloads === undefined && args.runs === undefined &&
    args.candidate === undefined
  const suffix = `${config.mode === "quick" ? "-quick" : ""}${complete ? "" : "-partial"}`
  const written = [`${stamp}${suffix}.json`]
  fs.writeFileSync(new URL(`${stamp}${suffix}.json`, resultsDirectory), json)
  if (complete) {
    fs.writeFileSync(new URL(`latest${suffix}.json`, resultsDirectory), json)
    fs.writeFileSync(new URL(`latest${suffix}.md`, resultsDirectory), renderMarkdownReport(results))
    written.push(`latest${suffix}.json`, `latest${suffix}.md`)
  }
  return written.map((file) => `bench/results/${file}`)
}

/** The commit measured, and whether src/ or migrations/ had changes on top of it. */
const sourceRevision = (): string => {
  try {
    const git = (...gitArgs: Array<string>) => execFileSync("git", gitArgs, { encoding: "utf8" }).trim()
    const dirty = git("status", "--porcelain", "--", "src", "migrations") !== ""
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? " with uncommitted changes in src/ or migrations/" : ""}`
  } catch {
    return "unknown (not a git checkout)"
  }
}

/** Set on Ctrl-C: the run is being torn down, and its in-flight failures are expected. */
let interrupted = false

const main = async () => {
  const startedAt = new Date()
  const revision = sourceRevision()
  const machine = machineInfo()
  const postgres = await Database.serverInfo()
  console.log(
    `effect-event-store benchmarks (${config.mode}): ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`
  )
  console.log(`The store at ${revision}`)
  console.log(
    `PostgreSQL ${postgres.version}: ${Object.entries(postgres.settings).map(([k, v]) => `${k}=${v}`).join(", ")}`
  )
  for (const [name, reason] of Object.entries(notRun)) console.log(`Not run: ${name}: ${reason}`)

  const workers = selectedContenders.map(spawnWorker)
  process.once("SIGINT", () => {
    interrupted = true
    console.error("\nInterrupted: dropping the benchmark schemas and databases…")
    shutdown(workers).finally(() => process.exit(130))
  })
  try {
    const contenders: Array<ContenderInfo & { readonly seedSeconds: number }> = []
    for (const worker of workers) {
      const reply = expect(await worker.request({ type: "prepare", config }), "prepared", `${worker.id}, prepare`)
      contenders.push({ ...reply.info, seedSeconds: reply.seedSeconds })
      console.log(
        `${reply.info.label} (${reply.info.version}): prepared and seeded in ${reply.seedSeconds.toFixed(1)} s`
      )
    }
    const workloads: Array<WorkloadResult> = []
    let pace: number | undefined
    for (const planned of plan(config)) {
      if (selectedWorkloads !== undefined && !selectedWorkloads.includes(planned.workload.id)) continue
      if (planned.workload.kind === "live") {
        pace ??= await livePace(workers, workloads)
        workloads.push(await runWorkload(workers, withPace(planned, pace)))
      } else {
        workloads.push(await runWorkload(workers, planned))
      }
    }
    const results: BenchResults = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      revision,
      command: `${
        process.env.npm_lifecycle_event === undefined
          ? "tsx bench/run.ts"
          : `npm run ${process.env.npm_lifecycle_event}`
      } ` +
        `(arguments: ${process.argv.slice(2).join(" ") || "none"})`,
      config,
      machine,
      postgres,
      contenders,
      notRun,
      workloads
    }
    console.log(`\n${renderTerminal(results)}\n`)
    const files = write(results)
    const minutes = (Date.now() - startedAt.getTime()) / 60_000
    console.log(`Wrote ${files.join(", ")} in ${minutes.toFixed(1)} min.`)
  } finally {
    if (!interrupted) await shutdown(workers)
  }
}

main().catch((error: unknown) => {
  if (interrupted) return
  console.error(error instanceof Error ? error.stack ?? error.message : error)
  process.exitCode = 1
})
