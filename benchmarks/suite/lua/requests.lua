-- wrk script of the benchmark suite (benchmarks/suite/wrk.py writes its input and reads its output).
--
-- Usage: wrk -s requests.lua <url> -- <requests file>
-- The requests file has one request per line, four tab-separated fields: method, path (with its
-- query), headers as "Name: value" joined by "|" (may be empty), body (may be empty). Each wrk
-- thread sends them in turn, from its own offset. A header value "{unique}" is replaced by a value
-- never sent before in this run (run id from WRK_RUN_ID, thread number, counter): POST /orders
-- needs a fresh Idempotency-Key per request.
-- At the end one line "WRK_JSON {...}" holds the counts and latency percentiles in microseconds.

local thread_count = 0

function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
end

local requests = {}
local counter = 0
local run_id = os.getenv("WRK_RUN_ID") or tostring(os.time())

local function parse(line)
  local method, path, header_text, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  if method == nil then
    error("malformed request line: " .. line)
  end
  local headers, unique = {}, {}
  for pair in header_text:gmatch("[^|]+") do
    local name, value = pair:match("^([^:]+):%s*(.*)$")
    if value == "{unique}" then
      table.insert(unique, name)
    else
      headers[name] = value
    end
  end
  if body == "" then
    body = nil
  end
  return {method = method, path = path, headers = headers, unique = unique, body = body}
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      table.insert(requests, parse(line))
    end
  end
  if #requests == 0 then
    error("no requests in " .. args[1])
  end
  -- Threads start at different places of the list.
  counter = (thread_number or 0) * 7919
end

function request()
  counter = counter + 1
  local r = requests[(counter % #requests) + 1]
  local headers = r.headers
  if #r.unique > 0 then
    headers = {}
    for name, value in pairs(r.headers) do
      headers[name] = value
    end
    for _, name in ipairs(r.unique) do
      headers[name] = string.format("%s-%d-%d", run_id, thread_number or 0, counter)
    end
  end
  return wrk.format(r.method, r.path, headers, r.body)
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end
