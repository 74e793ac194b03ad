-- wrk script for bench/run.py: POST unique Telegram updates to a webhook.
--
-- Each request carries a fresh update_id (BENCH_BASE + per-thread offset + counter), a text
-- with the marker "mk<update_id>" (so every Slack post can be matched to its webhook), the
-- X-Telegram-Bot-Api-Secret-Token header, and a chat id spread over BENCH_CHATS chats
-- (1000 + update_id % chats), so many conversations run in parallel.
--
-- done() prints one line "BENCH_RESULT k=v ..." that bench/measure.py parses: how many
-- requests were generated (completed + still in flight when wrk stopped), completed, the
-- error counters and wrk's own latency percentiles (time to the 200, in microseconds).

local base = tonumber(os.getenv("BENCH_BASE") or "1000000")
local chats = tonumber(os.getenv("BENCH_CHATS") or "100")
local secret = os.getenv("BENCH_SECRET") or ""
local path = os.getenv("BENCH_PATH") or "/webhooks/telegram"
local date = os.time()

local headers = {
  ["Content-Type"] = "application/json",
  ["X-Telegram-Bot-Api-Secret-Token"] = secret,
}
local template = '{"update_id":%d,"message":{"message_id":%d,'
  .. '"from":{"id":%d,"is_bot":false,"first_name":"Ann","language_code":"en"},'
  .. '"chat":{"id":%d,"first_name":"Ann","type":"private"},'
  .. '"date":%d,"text":"bench mk%d"}}'

-- per-thread state (each wrk thread has its own Lua state)
generated = 0
offset = 0

request = function()
  local id = base + offset + generated
  generated = generated + 1
  local chat = 1000 + id % chats
  local body = string.format(template, id, id, chat, chat, date, id)
  return wrk.format("POST", path, headers, body)
end

-- main-state hooks
local threads = {}
local spread = 100000000

function setup(thread)
  thread:set("offset", #threads * spread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local generated_total = 0
  local ranges = {}
  for i, thread in ipairs(threads) do
    local n = thread:get("generated")
    generated_total = generated_total + n
    table.insert(ranges, string.format("%d:%d", base + (i - 1) * spread, n))
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT generated=%d requests=%d duration_us=%d status=%d connect=%d read=%d"
      .. " write=%d timeout=%d p50_us=%d p99_us=%d ranges=%s\n",
    generated_total, summary.requests, summary.duration, e.status, e.connect, e.read,
    e.write, e.timeout, latency:percentile(50), latency:percentile(99),
    table.concat(ranges, ",")))
end
