/**
 * Summarises a V8 CPU profile written by `npm run bench -- --cpu-prof`:
 * self time by package (or project folder) and the hottest functions.
 *
 *   npx tsx bench/profile.ts bench/results/profiles/store.cpuprofile [top]
 */
import * as fs from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
    readonly columnNumber: number
  }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples?: ReadonlyArray<number>
  readonly timeDeltas?: ReadonlyArray<number>
}

const [file, topArgument] = process.argv.slice(2)
if (file === undefined) throw new Error("usage: profile.ts <file.cpuprofile> [top]")
const top = Number(topArgument ?? 25)
const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile

// Self time per node: each sample is charged the time delta that follows it.
const selfMicros = new Map<number, number>()
const samples = profile.samples ?? []
const deltas = profile.timeDeltas ?? []
samples.forEach((id, index) => {
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (deltas[index + 1] ?? 0))
})

/** `effect`, `@effect/sql`, `pg`, `src/postgres`, `node:internal` … */
const area = (url: string, functionName: string): string => {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)"
  const modules = url.lastIndexOf("node_modules/")
  if (modules >= 0) {
    const [scope = "", name = ""] = url.slice(modules + "node_modules/".length).split("/")
    return scope.startsWith("@") ? `${scope}/${name}` : scope
  }
  if (url.startsWith("node:")) return url.split("/").slice(0, 2).join("/")
  const project = url.match(/\/(src|bench)\/(.*)$/)
  if (project !== null) return `${project[1]}/${(project[2] ?? "").split("/").slice(0, -1).join("/") || "."}`
  return url
}

const nameOf = ({ callFrame: { columnNumber, functionName, lineNumber, url } }: ProfileNode) =>
  `${functionName || "(anonymous)"}  ${
    url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench)\//, "$1/")
  }:${lineNumber + 1}:${columnNumber + 1}`

const parents = new Map<number, ProfileNode>()
for (const node of profile.nodes) {
  for (const child of node.children ?? []) parents.set(child, node)
}

const total = [...selfMicros.values()].reduce((sum, micros) => sum + micros, 0)
const byArea = new Map<string, number>()
const byFunction = new Map<string, number>()
// Total (inclusive) time: every function on a sample's stack is charged once.
const inclusive = new Map<string, number>()
for (const node of profile.nodes) {
  const micros = selfMicros.get(node.id) ?? 0
  if (micros === 0) continue
  const where = area(node.callFrame.url, node.callFrame.functionName)
  byArea.set(where, (byArea.get(where) ?? 0) + micros)
  byFunction.set(nameOf(node), (byFunction.get(nameOf(node)) ?? 0) + micros)
  const seen = new Set<string>()
  for (let frame: ProfileNode | undefined = node; frame !== undefined; frame = parents.get(frame.id)) {
    const name = nameOf(frame)
    if (seen.has(name)) continue
    seen.add(name)
    inclusive.set(name, (inclusive.get(name) ?? 0) + micros)
  }
}

const print = (title: string, entries: Map<string, number>, count: number) => {
  console.log(`\n${title}`)
  for (const [name, micros] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    console.log(
      `${((100 * micros) / total).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}`
    )
  }
}

console.log(`${file}: ${(total / 1e6).toFixed(1)} s of samples`)
print("Self time by package or folder", byArea, 20)
print("Hottest functions (self time)", byFunction, top)
print(
  "Functions by total time (self and callees), in the project and its SQL/driver packages",
  new Map(
    [...inclusive].filter(([name]) => /\b(src|bench)\/|@effect\/sql|pg\/lib|pg-pool|emmett|dumbo/.test(name))
  ),
  top
)
