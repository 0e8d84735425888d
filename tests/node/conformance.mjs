#!/usr/bin/env node
// Run the conformance fixtures (tests/conformance/*.json, format in its README) from Node.js
// against whatever worker serves the `conformance.*` tasks on the NATS at --url.
//
//   node conformance.mjs --url URL [--runs-file PATH] FIXTURE.json...
//
// Cases run one after another. Each prints one line of JSON on stdout:
// {"case": "<file stem>:<name>", "ok": true} or {"case": ..., "ok": false, "problem": "..."}.
// Exit code 0: every case passed; 1: some failed; 2: bad usage or no connection.
// --runs-file names the file where `conformance.record` appends its tag per run (the worker's
// ACTORS_CONFORMANCE_RUNS); without it, cases that count runs fail.

import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { isDeepStrictEqual, parseArgs } from "node:util";

import { decode } from "@msgpack/msgpack";
import { connect, headers } from "nats";

import { DEAD_STREAM, READY_STATES, RESULTS_BUCKET, derivedId, encodeBody, toJson } from "./protocol.mjs";

const DEFAULT_TIMEOUT_S = 10;

class Mismatch extends Error {}

/** Replace each `{uuid5:<seed>}`, innermost first, by the id derived from the seed. */
function expand(text) {
  const pattern = /\{uuid5:([^{}]*)\}/g;
  while (pattern.test(text)) text = text.replace(pattern, (_m, seed) => derivedId(seed));
  return text;
}

/** The bytes one `publish` entry stands for. */
function bodyBytes(entry) {
  let data;
  if ("body_base64" in entry) data = new Uint8Array(Buffer.from(entry.body_base64, "base64"));
  else if ("body_text" in entry) data = new TextEncoder().encode(entry.body_text);
  else data = encodeBody(entry.body, entry.headers?.["Content-Type"]);
  return "truncate" in entry ? data.subarray(0, entry.truncate) : data;
}

/** What is stored on some subjects, as it arrives (ordered consumers from the start). */
class Observer {
  constructor(js, timeoutS) {
    this.js = js;
    this.timeoutMs = timeoutS * 1000;
    this.latest = new Map(); // subject -> last message
    this.dead = new Map(); // Actors-Dead-Sequence -> dead letter
    this.waiters = new Set();
    this.readers = [];
  }

  async follow(stream, subject) {
    const consumer = await this.js.consumers.get(stream, { filterSubjects: [subject] });
    const messages = await consumer.consume();
    this.readers.push(messages);
    (async () => {
      for await (const m of messages) {
        if (stream === DEAD_STREAM) this.dead.set(Number(m.headers?.get("Actors-Dead-Sequence")), m);
        else this.latest.set(m.subject, m);
        for (const wake of this.waiters) wake();
      }
    })();
  }

  startClock() {
    this.deadline = Date.now() + this.timeoutMs;
  }

  /** Resolve with found() once it is not undefined; Mismatch after the case's timeout. */
  waitFor(found, describe) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = found();
        if (value === undefined) return false;
        finish();
        resolve(value);
        return true;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Mismatch(`no ${describe()} within the case's ${this.timeoutMs / 1000}s`));
      }, Math.max(0, this.deadline - Date.now()));
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  record(id) {
    const m = this.latest.get(`$KV.${RESULTS_BUCKET}.${id}`);
    const operation = m?.headers?.get("KV-Operation");
    if (!m || operation === "DEL" || operation === "PURGE") return undefined;
    return decode(m.data);
  }

  value(subject) {
    return this.latest.get(subject)?.data;
  }

  stop() {
    for (const messages of this.readers) messages.stop();
  }
}

function checkRecord(record, expected, id) {
  const problems = [];
  if (record.status !== expected.status) problems.push(`status ${record.status}, expected ${expected.status}`);
  if ("result" in expected && !isDeepStrictEqual(record.result, expected.result)) {
    problems.push(`result ${toJson(record.result)}, expected ${toJson(expected.result)}`);
  }
  const error = record.error ?? {};
  if ("error_type" in expected && error.type !== expected.error_type) {
    problems.push(`error type ${error.type}, expected ${expected.error_type}`);
  }
  const needle = expected.error_message;
  if (needle !== undefined && !String(error.message ?? "").toLowerCase().includes(needle.toLowerCase())) {
    problems.push(`error message ${JSON.stringify(error.message)} lacks ${JSON.stringify(needle)}`);
  }
  for (const [name, value] of Object.entries(expected.fields ?? {})) {
    if (!isDeepStrictEqual(record[name], value)) problems.push(`field ${name} is ${toJson(record[name])}, expected ${toJson(value)}`);
  }
  if (problems.length) throw new Mismatch(`record ${id}: ${problems.join("; ")} (record: ${toJson(record)})`);
}

function checkDead(m, expected, [subject, body]) {
  const problems = [];
  if (m.subject !== expected.subject) problems.push(`on ${m.subject}, expected ${expected.subject}`);
  const reason = m.headers?.get("Actors-Dead-Reason") ?? "";
  if (expected.reason && !reason.toLowerCase().includes(expected.reason.toLowerCase())) {
    problems.push(`reason ${JSON.stringify(reason)} lacks ${JSON.stringify(expected.reason)}`);
  }
  if (m.headers?.get("Actors-Dead-Subject") !== subject) {
    problems.push(`Actors-Dead-Subject ${m.headers?.get("Actors-Dead-Subject")}`);
  }
  if (!m.headers?.has("Actors-Dead-Truncated") && !Buffer.from(m.data).equals(Buffer.from(body))) {
    problems.push("body differs from the message published");
  }
  if (problems.length) throw new Mismatch(`dead letter of publish ${expected.publish}: ${problems.join("; ")}`);
}

async function runCase(nc, testCase, runsFile) {
  const js = nc.jetstream();
  const expect = testCase.expect;
  const observer = new Observer(js, testCase.timeout ?? DEFAULT_TIMEOUT_S);
  try {
    await observer.follow(`KV_${RESULTS_BUCKET}`, `$KV.${RESULTS_BUCKET}.>`);
    await observer.follow(DEAD_STREAM, "actors.dead.>");
    for (const kv of expect.kv ?? []) await observer.follow(`KV_${kv.bucket}`, `$KV.${kv.bucket}.${expand(kv.key)}`);
    for (const c of expect.counters ?? []) await observer.follow(c.stream, expand(c.subject));

    const published = [];
    const sequences = [];
    for (const entry of testCase.publish) {
      const body = bodyBytes(entry);
      const h = headers();
      for (const [name, value] of Object.entries(entry.headers ?? {})) h.set(name, value);
      const ack = await js.publish(entry.subject, body, { headers: h });
      published.push([entry.subject, body]);
      sequences.push(ack.seq);
    }
    observer.startClock();

    for (const expected of expect.records ?? []) {
      if (expected.absent) continue;
      const id = expand(expected.id);
      const record = await observer.waitFor(
        () => {
          // a final record, or the custom state (PROGRESS, ...) expected
          const r = observer.record(id);
          const custom = !READY_STATES.has(expected.status) && r?.status === expected.status;
          return r && (READY_STATES.has(r.status) || custom) ? r : undefined;
        },
        () => `finished record for ${id} (latest: ${toJson(observer.record(id))})`,
      );
      checkRecord(record, expected, id);
    }
    for (const expected of expect.dead_letters ?? []) {
      const seq = sequences[expected.publish];
      const m = await observer.waitFor(
        () => observer.dead.get(seq),
        () => `dead letter of publish ${expected.publish} (sequence ${seq})`,
      );
      checkDead(m, expected, published[expected.publish]);
    }
    for (const kv of expect.kv ?? []) {
      const subject = `$KV.${kv.bucket}.${expand(kv.key)}`;
      const matches = (data) =>
        "text" in kv ? new TextDecoder().decode(data) === kv.text : isDeepStrictEqual(decode(data), kv.msgpack);
      await observer.waitFor(
        () => (observer.value(subject) && matches(observer.value(subject)) ? true : undefined),
        () => `${subject} = ${toJson(kv.text ?? kv.msgpack)} (latest: ${toJson(observer.value(subject))})`,
      );
    }
    for (const c of expect.counters ?? []) {
      const subject = expand(c.subject);
      const total = () => {
        const data = observer.value(subject);
        return data ? String(JSON.parse(new TextDecoder().decode(data)).val) : undefined;
      };
      await observer.waitFor(
        () => (total() === c.val ? true : undefined),
        () => `counter ${subject} val ${c.val} (latest: ${total()})`,
      );
    }

    for (const expected of expect.records ?? []) {
      const id = expand(expected.id);
      if (expected.absent && observer.record(id) !== undefined) {
        throw new Mismatch(`record ${id} exists: ${toJson(observer.record(id))}`);
      }
    }
    if ("dead_letters" in expect) {
      const wanted = new Set(expect.dead_letters.map((d) => sequences[d.publish]));
      const extra = sequences.filter((seq) => observer.dead.has(seq) && !wanted.has(seq));
      if (extra.length) {
        const reasons = extra.map((seq) => observer.dead.get(seq).headers?.get("Actors-Dead-Reason"));
        throw new Mismatch(`unexpected dead letters (sequences ${extra}): ${toJson(reasons)}`);
      }
    }
    if (expect.runs) {
      if (!runsFile) throw new Mismatch("this case counts runs: pass --runs-file");
      const lines = existsSync(runsFile) ? readFileSync(runsFile, "utf8").split("\n") : [];
      for (const [tag, count] of Object.entries(expect.runs)) {
        const ran = lines.filter((line) => line === tag).length;
        if (ran !== count) throw new Mismatch(`conformance.record ran ${ran} times for ${tag}, expected ${count}`);
      }
    }
  } finally {
    observer.stop();
  }
}

async function main() {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      url: { type: "string", default: process.env.NATS_URL ?? "nats://127.0.0.1:4222" },
      "runs-file": { type: "string" },
    },
  });
  if (positionals.length === 0) {
    process.stderr.write("usage: node conformance.mjs --url URL [--runs-file PATH] FIXTURE.json...\n");
    return 2;
  }
  const nc = await connect({ servers: values.url, name: "actors-node-conformance" });
  let failed = 0;
  try {
    for (const file of positionals) {
      const stem = basename(file, ".json");
      for (const testCase of JSON.parse(readFileSync(file, "utf8")).cases) {
        const line = { case: `${stem}:${testCase.name}`, ok: true };
        try {
          await runCase(nc, testCase, values["runs-file"]);
        } catch (error) {
          failed += 1;
          line.ok = false;
          line.problem = error instanceof Mismatch ? error.message : `error: ${error.stack ?? error}`;
        }
        process.stdout.write(JSON.stringify(line) + "\n");
      }
    }
  } finally {
    await nc.close();
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`error: ${error.stack ?? error}\n`);
    process.exit(2);
  },
);
