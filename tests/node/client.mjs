#!/usr/bin/env node
// Send one actors task from Node.js and print its result record, following docs/protocol.md
// alone (no actors code is used): publish the task message to `actors.task.<task name>`,
// then wait for the key `<task id>` in the KV bucket `actors_results`.
//
//   node client.mjs [--url URL] [--content-type json|msgpack] [--id ID] [--timeout SECONDS]
//                   [--queue QUEUE] [--priority 0-9] TASK [ARGS_JSON [KWARGS_JSON]]
//
// With --queue or --priority the message goes to `actors.queue.<queue>.<band>.<task name>`
// (docs/protocol.md, "Queues and priorities").
//
// TASK, ARGS_JSON and KWARGS_JSON may also come from ACTORS_TASK, ACTORS_ARGS and
// ACTORS_KWARGS, the URL from NATS_URL. On success the decoded result record is printed as
// one line of JSON on stdout and the exit code is 0 (also for a FAILURE record: the record is
// the answer). Exit code 2: no finished record before the timeout; 1: bad usage or error.

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";

import { decode, encode } from "@msgpack/msgpack";
import { connect, headers } from "nats";

// Constants from docs/protocol.md.
const PROTOCOL_VERSION = 1;
const TASK_PREFIX = "actors.task.";
const RESULTS_BUCKET = "actors_results";
const CONTENT_TYPES = { json: "application/json", msgpack: "application/msgpack" };
const READY_STATES = new Set(["SUCCESS", "FAILURE", "REVOKED"]);
const TASK_NAME = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;
const TASK_ID = /^[A-Za-z0-9_\-=]{1,128}$/;
const QUEUE_PREFIX = "actors.queue.";
const DEFAULT_QUEUE = "default";
const QUEUE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The band of a priority: 0-2 low, 3-6 (or none) normal, 7-9 high. */
function band(priority) {
  if (priority === undefined) return "normal";
  return priority <= 2 ? "low" : priority >= 7 ? "high" : "normal";
}

class UsageError extends Error {}

function parseCommandLine(argv, env) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string", default: env.NATS_URL ?? "nats://127.0.0.1:4222" },
      "content-type": { type: "string", default: "json" },
      id: { type: "string", default: randomUUID() },
      timeout: { type: "string", default: "30" },
      queue: { type: "string" },
      priority: { type: "string" },
    },
  });
  const [task = env.ACTORS_TASK, args = env.ACTORS_ARGS ?? "[]", kwargs = env.ACTORS_KWARGS ?? "{}"] =
    positionals;
  if (!task || !TASK_NAME.test(task)) {
    throw new UsageError(`task name ${JSON.stringify(task)} is missing or invalid`);
  }
  if (!TASK_ID.test(values.id)) {
    throw new UsageError(`task id ${JSON.stringify(values.id)} is invalid`);
  }
  const contentType = CONTENT_TYPES[values["content-type"]];
  if (!contentType) {
    throw new UsageError(`--content-type must be json or msgpack, not ${values["content-type"]}`);
  }
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) {
    throw new UsageError(`--timeout must be a positive number of seconds`);
  }
  if (values.queue !== undefined && !QUEUE_NAME.test(values.queue)) {
    throw new UsageError(`--queue ${JSON.stringify(values.queue)} is not a queue name`);
  }
  const priority = values.priority === undefined ? undefined : Number(values.priority);
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= 9)) {
    throw new UsageError(`--priority must be an integer from 0 to 9`);
  }
  return {
    queue: values.queue,
    priority,
    url: values.url,
    task,
    id: values.id,
    args: parseJson(args, "ARGS_JSON", Array.isArray),
    kwargs: parseJson(kwargs, "KWARGS_JSON", (v) => v !== null && typeof v === "object" && !Array.isArray(v)),
    contentType,
    timeoutMs: timeout * 1000,
  };
}

function parseJson(text, what, isRightKind) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} is not JSON: ${error.message}`);
  }
  if (!isRightKind(value)) {
    throw new UsageError(`${what} has the wrong kind of JSON value: ${text}`);
  }
  return value;
}

/** The task message body and its NATS headers (docs/protocol.md, "Task messages"). */
function taskMessage({ id, task, args, kwargs, contentType, queue, priority }) {
  const message = { v: PROTOCOL_VERSION, id, task, args, kwargs };
  const named = queue !== undefined && queue !== DEFAULT_QUEUE;
  if (named) message.queue = queue;
  if (priority !== undefined) message.priority = priority;
  const body =
    contentType === CONTENT_TYPES.json
      ? new TextEncoder().encode(JSON.stringify(message))
      : encode(message);
  const hdrs = headers();
  hdrs.set("Nats-Msg-Id", id);
  hdrs.set("Content-Type", contentType);
  const subject =
    named || band(priority) !== "normal"
      ? `${QUEUE_PREFIX}${queue ?? DEFAULT_QUEUE}.${band(priority)}.${task}`
      : TASK_PREFIX + task;
  return { subject, body, hdrs };
}

/** Wait for a finished result record under `id`; null when `timeoutMs` passes first. */
async function waitForResult(watch, timeoutMs) {
  const timer = setTimeout(() => watch.stop(), timeoutMs);
  try {
    for await (const entry of watch) {
      if (entry.operation !== "PUT") continue; // DEL/PURGE: no record (PENDING)
      const record = decode(entry.value); // result records are always msgpack
      if (READY_STATES.has(record.status)) return record;
      process.stderr.write(`task ${entry.key} is ${record.status}\n`);
    }
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** JSON for printing: bytes as base64, big integers as strings. */
function toJson(value) {
  return JSON.stringify(value, (_key, v) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
    if (typeof v === "bigint") return v.toString();
    return v;
  });
}

async function main() {
  const options = parseCommandLine(process.argv.slice(2), process.env);
  const nc = await connect({ servers: options.url, name: "actors-node-client" });
  try {
    const js = nc.jetstream();
    const results = await js.views.kv(RESULTS_BUCKET, { bindOnly: true });
    // Watch before publishing: the watch yields the current value first, then updates, so a
    // record stored at any time after this line cannot be missed.
    const watch = await results.watch({ key: options.id });
    const { subject, body, hdrs } = taskMessage(options);
    const ack = await js.publish(subject, body, { headers: hdrs });
    process.stderr.write(
      `sent task ${options.id} to ${subject} (stream ${ack.stream} seq ${ack.seq}` +
        `${ack.duplicate ? ", duplicate" : ""})\n`,
    );
    const record = await waitForResult(watch, options.timeoutMs);
    if (record === null) {
      process.stderr.write(
        `no finished result for task ${options.id} after ${options.timeoutMs / 1000}s; ` +
          `is a worker serving ${options.task} running?\n`,
      );
      return 2;
    }
    process.stdout.write(toJson(record) + "\n");
    return 0;
  } finally {
    await nc.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`${error instanceof UsageError ? "usage" : "error"}: ${error.message}\n`);
    process.exit(1);
  },
);
