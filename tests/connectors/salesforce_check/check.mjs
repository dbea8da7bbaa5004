// Compile-check the sources of a Salesforce package, offline, in one node process.
//
//   node check.mjs <directory holding node_modules>  < {"path": "source", ...}
//
// Apex (.cls, .trigger) goes through prettier-plugin-apex, whose parser is Salesforce's
// own Apex compiler front end (jorje; the native build when the platform has one, else
// the Java one). Lightning web component files (lwc/<name>/<name>.js or .html) go
// through @lwc/compiler, which compiles the JavaScript and the template as the platform
// does. Prints {"path": ["problem", ...], ...} with an entry for every file given.
import { createRequire } from "node:module";
import path from "node:path";

const [modules] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "package.json"));
const prettierModule = await import(require.resolve("prettier"));
const prettier = prettierModule.default ?? prettierModule;
const apexPlugin = await import(require.resolve("prettier-plugin-apex"));
const { transformSync } = await import(require.resolve("@lwc/compiler"));

let input = "";
for await (const chunk of process.stdin) {
  input += chunk;
}
const sources = JSON.parse(input);

async function checkApex(source) {
  await prettier.format(source, {
    parser: "apex",
    plugins: [apexPlugin.default ?? apexPlugin],
    apexStandaloneParser: "native",
  });
  return [];
}

function checkComponent(file, source) {
  const parts = file.split("/");
  const name = parts.at(-2);
  if (parts.at(-3) !== "lwc" || path.basename(file, path.extname(file)) !== name) {
    return [`not a component file (lwc/<name>/<name>.js or .html)`];
  }
  const result = transformSync(source, file, { namespace: "c", name });
  return (result.warnings ?? []).map((w) => `warning: ${w.message}`);
}

async function check(file, source) {
  try {
    if (file.endsWith(".cls") || file.endsWith(".trigger")) {
      return await checkApex(source);
    }
    if (file.endsWith(".js") || file.endsWith(".html")) {
      return checkComponent(file, source);
    }
    return [`no check for ${path.extname(file) || "this file"}`];
  } catch (error) {
    return [String(error?.message ?? error)];
  }
}

const files = Object.keys(sources);
const results = await Promise.all(files.map((file) => check(file, sources[file])));
process.stdout.write(JSON.stringify(Object.fromEntries(files.map((f, i) => [f, results[i]]))));
