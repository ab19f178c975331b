// DEV-TIME ONLY: prove a bundled TF.js export loads in stock TF.js (node, pure-JS CPU backend)
// and predicts what Keras predicts. Not used by the tests.
//
//   cd /tmp/tfjs && npm install @tensorflow/tfjs@4.22.0
//   NODE_PATH=/tmp/tfjs/node_modules node resources/check_tfjs_load.mjs \
//       resources/<name>/tfjs/model.json /tmp/<name>_check.json
//
// The second file is JSON {"x": nested array, "shape": [...], "expected": nested array, "y": [...]}
// written by Python from sample.npz and the Keras predictions. Prints the largest absolute
// difference and, for classifiers, the accuracy on y.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(join(process.cwd(), "noop.js"));
const tf = require("@tensorflow/tfjs");

const [modelPath, dataPath] = process.argv.slice(2);
const modelJson = JSON.parse(readFileSync(modelPath, "utf8"));
const specs = [];
const buffers = [];
for (const group of modelJson.weightsManifest) {
  specs.push(...group.weights);
  for (const p of group.paths) buffers.push(readFileSync(join(dirname(modelPath), p)));
}
const all = Buffer.concat(buffers);
const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);

const model = await tf.loadLayersModel(
  tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: specs, weightData }),
);
const data = JSON.parse(readFileSync(dataPath, "utf8"));
const x = tf.tensor(data.x.flat(Infinity), data.shape, "float32");
const got = await model.predict(x).array();
let maxDiff = 0;
got.flat(Infinity).forEach((v, i) => {
  maxDiff = Math.max(maxDiff, Math.abs(v - data.expected.flat(Infinity)[i]));
});
const report = { model: modelPath, backend: tf.getBackend(), n: data.shape[0], maxAbsDiff: maxDiff };
if (data.y && got[0].length > 1) {
  const hits = got.filter((row, i) => row.indexOf(Math.max(...row)) === data.y[i]).length;
  report.accuracy = hits / got.length;
}
console.log(JSON.stringify(report));
