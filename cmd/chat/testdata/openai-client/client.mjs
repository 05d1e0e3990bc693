// A real OpenAI client against chat serve: a multimodal request streamed
// with usage, the same request whole, and a bad one. Prints one JSON object.
// Usage: node client.mjs BASE_URL IMAGE_DATA_URI
import OpenAI from "openai";

const [baseURL, image] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 120_000 });
const messages = [
  {
    role: "user",
    content: [
      { type: "text", text: "What is in the picture?" },
      { type: "image_url", image_url: { url: image } },
    ],
  },
];
const out = {};

const stream = await client.chat.completions.create({
  model: "tiny",
  messages,
  max_tokens: 5,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
  hiprune: { keep: 20 },
});
let content = "";
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.choices.length > 0) {
    content += chunk.choices[0].delta.content ?? "";
    if (chunk.choices[0].finish_reason) out.stream_finish = chunk.choices[0].finish_reason;
  }
  if (chunk.usage) out.stream_usage = chunk.usage;
}
out.stream_content = content;
out.stream_chunks = chunks;

const whole = await client.chat.completions.create({
  model: "tiny",
  messages,
  max_tokens: 5,
  temperature: 0,
  hiprune: { keep: 20 },
});
out.content = whole.choices[0].message.content;
out.usage = whole.usage;
out.timings = whole.timings;

try {
  await client.chat.completions.create({ model: "tiny", messages: [{ role: "wizard", content: "hi" }] });
  out.error = "none";
} catch (e) {
  out.error = { status: e.status, param: e.param, code: e.code, type: e.type, message: e.message };
}

const models = await client.models.list();
out.models = models.data.map((m) => m.id);
console.log(JSON.stringify(out));
