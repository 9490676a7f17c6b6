-- wrk script of bench/graphql_reads.py: requests spread over many callers and sessions.
--
--     wrk -t1 -c32 -d10s --latency -s bench/graphql_reads.lua http://127.0.0.1:PORT -- REQUESTS
--
-- REQUESTS is a file written by graphql_reads.py, one request a line, four fields
-- separated by tabs: METHOD, PATH, AUTHORIZATION (the header's value, may be empty),
-- BODY (JSON, may be empty; a POST body is sent as application/json). Every request
-- picks one line at random, so the load is spread over the file's callers and sessions
-- rather than one hot row. done() prints one line starting with "RESULT " holding the
-- run's numbers as JSON, which graphql_reads.py reads (latencies in microseconds).

local requests = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_number", next_thread)
end

function init(args)
  local path = args[1]
  if path == nil then
    error("graphql_reads.lua: give the requests file after --")
  end
  for line in io.lines(path) do
    local method, target, auth, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if method ~= nil then
      local headers = {}
      if auth ~= "" then
        headers["Authorization"] = auth
      end
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      requests[#requests + 1] = wrk.format(method, target, headers, body)
    end
  end
  if #requests == 0 then
    error("graphql_reads.lua: no request in " .. path)
  end
  math.randomseed(os.time() * 1000 + (thread_number or 0))
end

function request()
  return requests[math.random(#requests)]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    "RESULT {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, "
      .. "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, "
      .. "\"status_errors\": %d, \"timeouts\": %d, "
      .. "\"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"mean_us\": %.1f, \"max_us\": %d}\n",
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max
  ))
end
